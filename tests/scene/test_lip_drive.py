"""What drives the lips: the expression input without the mouth, standardised audio, and the lip check.

The face motion net learns from whatever per-frame signal is easiest. With mouth shapes in its
expression input it learned the lips from them alone (audio contributed nothing, docs/short_schedule.md),
and new audio replays the training video's expressions; with raw phoneme posteriors its audio code
was nearly the same for every frame. These tests pin the fixes.
"""
import numpy as np
import pytest
import torch

from data_utils.expression import BLENDSHAPE_NAMES, EXPRESSION_SHAPES, UPPER_FACE_SHAPES, codes_from_blendshapes
from scene.models.audio_net import AudioNet
from scene.data.frame_features import exp_3dmm
from tests.script_module import load_script


def test_upper_face_shapes_hold_nothing_of_mouth_jaw_cheek_or_nose():
    assert len(UPPER_FACE_SHAPES) == 17
    assert not [n for n in UPPER_FACE_SHAPES if n.startswith(("mouth", "jaw", "cheek", "nose"))]
    assert "browInnerUp" in UPPER_FACE_SHAPES and "eyeSquintLeft" in UPPER_FACE_SHAPES


def test_expression_without_mouth_keeps_brows_eyes_and_eyelids():
    rng = np.random.default_rng(0)
    codes = codes_from_blendshapes(rng.uniform(0.1, 1.0, (5, len(BLENDSHAPE_NAMES))).astype(np.float32))
    full, jaw = exp_3dmm(codes, "blendshapes", keep="all")
    masked, jaw2 = exp_3dmm(codes, "blendshapes")
    np.testing.assert_array_equal(jaw, jaw2)
    kept = [EXPRESSION_SHAPES.index(n) for n in UPPER_FACE_SHAPES] + [50, 51]  # + the two eyelids
    np.testing.assert_array_equal(masked[:, kept], full[:, kept])
    others = np.setdiff1d(np.arange(52), kept)
    assert np.all(masked[:, others] == 0) and np.all(full[:, [EXPRESSION_SHAPES.index("mouthClose")]] > 0)
    # codes whose coefficients mix mouth and upper face (SMIRK, landmark PCA, unknown): eyelids only
    for source, keep in (("pca", "upper_face"), (None, "upper_face"), ("blendshapes", "eyelids")):
        only_lids, _ = exp_3dmm(codes, source, keep=keep)
        assert np.all(only_lids[:, :50] == 0) and np.array_equal(only_lids[:, 50:], full[:, 50:])
    with pytest.raises(ValueError, match="upper_face, eyelids, all"):
        exp_3dmm(codes, "blendshapes", keep="mouth")


def _posteriors(frames=200, channels=40, steps=16, seed=0):
    """Phoneme-posterior-like features: one class per step, mostly the blank (last) class."""
    rng = np.random.default_rng(seed)
    cls = np.where(rng.random((frames, steps)) < 0.7, channels - 1, rng.integers(0, channels - 1, (frames, steps)))
    x = np.zeros((frames, channels, steps), np.float32)
    x[np.arange(frames)[:, None], cls, np.arange(steps)[None]] = 1.0
    return torch.from_numpy(x)


@torch.no_grad()
def test_standardised_audio_code_varies_between_frames():
    torch.manual_seed(0)
    feats = _posteriors()
    net = AudioNet(feats.shape[1], 32)
    raw = net(feats).std(0).mean()
    net.set_input_stats(feats)
    z = (feats - net.input_mean[:, None]) * net.input_scale[:, None]
    assert abs(float(z.mean())) < 1e-4 and float(z.std((0, 2)).max()) == pytest.approx(1.0, abs=0.05)
    assert float(net(feats).std(0).mean()) > 5 * float(raw)  # the code now depends on what is said


def test_audio_stats_travel_with_the_weights_and_old_checkpoints_load_as_identity():
    feats = _posteriors()
    net = AudioNet(feats.shape[1], 32)
    net.set_input_stats(feats)
    state = net.state_dict()
    assert {"input_mean", "input_scale"} <= set(state)
    again = AudioNet(feats.shape[1], 32)
    again.load_state_dict(state)
    torch.testing.assert_close(again(feats), net(feats))
    old = {k: v for k, v in state.items() if not k.startswith("input_")}
    legacy = AudioNet(feats.shape[1], 32)
    legacy.load_state_dict(old)  # a checkpoint from before standardisation
    assert torch.equal(legacy.input_mean, torch.zeros(feats.shape[1])) and torch.equal(legacy.input_scale, torch.ones(feats.shape[1]))


def _trained(root, n_frames: int, size: int, *schedule: str):
    """(subject, model) of the synthetic subject trained on the CPU with `schedule` (train.py flags)."""
    import train
    from tests.fixtures.make_subject import make_subject

    subject = make_subject(root / "synth", n_frames=n_frames, size=size)
    model = root / "model"
    assert train.main(["-s", str(subject), "-m", str(model), *schedule, "--backend", "torch", "--device", "cpu",
                       "--quiet"]) == 0
    return subject, model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("lips"), 12, 48, "--mouth_iterations", "8", "--face_iterations", "8",
                    "--fuse_iterations", "2", "--init_num", "150", "--face_init_num", "150")


def _lip_motion_module():
    return load_script("lip_motion")


def test_lip_check_scores_zero_when_the_drive_cannot_move_anything(tiny_model):
    from scene.models.fused_renderer import FusedRenderer
    from scene.data.dataset import load_subject

    subject, model = tiny_model
    lip_motion = _lip_motion_module()
    renderer = FusedRenderer.from_checkpoint(model, "cpu", backend="torch")
    data = load_subject(subject, "train", -1, progress=False)
    face, mouth = renderer.face_net, renderer.mouth_net
    with torch.no_grad():  # audio, expression and mouth code reach the offsets only through these blocks (views)
        for block in face.sigma_net.split_first(*face._blocks)[1:]:
            block.zero_()
        for net in (mouth.sigma_net, mouth.jaw_net):
            net.split_first(mouth.in_dim, mouth.audio_dim + mouth.mouth_enc_dim)[1].zero_()
    still = lip_motion.lip_motion(data, renderer, batch_size=5)
    assert still["drive_gain"] == still["audio_gain"] == still["expression_gain"] == still["mouth_code_gain"] == 0.0
    assert still["motion_r"] == pytest.approx(still["motion_r_shuffled"], abs=1e-6)
    assert still["frames"] == data.num_frames and 0 < still["lips_l1"] == still["lips_l1_shuffled"]


def test_lip_check_cli_writes_json(tiny_model, tmp_path):
    import json

    subject, model = tiny_model
    out = tmp_path / "lips.json"
    assert _lip_motion_module().main(["-S", str(subject), "-M", str(model), "--device", "cpu", "--backend", "torch",
                                      "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert set(scores) >= {"drive_gain", "audio_gain", "expression_gain", "motion_r", "motion_r_shuffled"}


# ----------------------------------------------------------------------------- audio -> mouth codes -> lips
@pytest.fixture(scope="module")
def speaking_model(tmp_path_factory):
    """A model of the synthetic subject, whose lips open and close with its (synthetic) audio."""
    return _trained(tmp_path_factory.mktemp("speaking"), 60, 64, "--mouth_iterations", "150", "--face_iterations",
                    "1200", "--fuse_iterations", "20", "--init_num", "400", "--face_init_num", "2000")


def _render_with_codes(renderer, data, codes):
    """Fused renders of every training frame driven by `codes` [N, M] (raw), and the lips boxes [N,H,W,1]."""
    from gaussian_renderer.render import Views

    b = data.batch(list(range(data.num_frames)))
    views = Views(b["viewmats"], b["Ks"], data.width, data.height)
    image = renderer.render(views, b["audio_windows"], b["expression"], b["background"],
                            renderer.normalise(torch.as_tensor(codes)))
    return image, b["image"], b["masks"]["lips_box"]


def _lips_motion_r(image, truth, box):
    """Correlation of the lips' frame-to-frame changes: render vs video (each minus its mean over frames)."""
    union = box.amax(0, keepdim=True)
    a = (image - image.mean(0, keepdim=True)) * union
    b = (truth - truth.mean(0, keepdim=True)) * union
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.fixture
def speaking(speaking_model):
    """(renderer, training split with its audio-to-mouth inputs) of the speaking model (fresh: tests edit weights)."""
    from scene.models.fused_renderer import FusedRenderer
    from scene.data.dataset import load_subject

    subject, model = speaking_model
    renderer = FusedRenderer.from_checkpoint(model, "cpu", backend="torch")
    data = load_subject(subject, "train", progress=False, mouth_features=("phoneme", "mel"),
                        mouth_code_names=tuple(renderer.audio_to_mouth.names))
    return renderer, data


def test_mouth_follows_its_audio_better_than_shuffled_audio(speaking):
    renderer, data = speaking
    feats = data.mouth_features[data.aud_ids]
    own = renderer.mouth_codes(feats)
    shuffled = renderer.mouth_codes(feats[np.random.default_rng(0).permutation(len(feats))])
    true_r = _lips_motion_r(*_render_with_codes(renderer, data, own))
    shuffled_r = _lips_motion_r(*_render_with_codes(renderer, data, shuffled))
    assert true_r > 0.25 and true_r > shuffled_r + 0.05, (true_r, shuffled_r)  # the lips move with the audio
    # control: with the mouth-code inputs cut, the two drives render the same (head motion alone correlates)
    with torch.no_grad():
        for net in (renderer.face_net.sigma_net, renderer.mouth_net.sigma_net, renderer.mouth_net.jaw_net):
            net.split_first(*_blocks_of(net, renderer))[-1].zero_()
    cut = [_lips_motion_r(*_render_with_codes(renderer, data, c)) for c in (own, shuffled)]
    assert cut[0] == pytest.approx(cut[1], abs=1e-6)


def _blocks_of(mlp, renderer):
    """Input blocks of a first layer with the mouth-code block last."""
    face, mouth = renderer.face_net, renderer.mouth_net
    if mlp is face.sigma_net:
        return face._blocks
    return (mouth.in_dim, mouth.audio_dim, mouth.mouth_enc_dim)


def test_silence_gives_a_closed_mouth(speaking):
    renderer, data = speaking
    # speech, then as long a silence (the fixture's features are the opening times a fixed spectrum plus
    # noise: silence is the noise floor); the silent half must close the mouth
    speech = data.mouth_features[data.aud_ids]
    silent = np.random.default_rng(1).normal(0, 0.01, speech.shape).astype(np.float32)
    activity = np.r_[np.ones(len(speech)), np.zeros(len(silent))]  # what speech_activity gives real audio
    codes = renderer.mouth_codes(np.concatenate([speech, silent]), activity)[len(speech):]
    opening = data.per_frame["mouth_code_raw"][:, 0]
    closed, wide = int(np.argmin(opening)), int(np.argmax(opening))
    assert float(codes[:, 0].mean()) < np.percentile(opening, 25)  # the predicted opening is a closed one
    image, _, box = _render_with_codes(renderer, data, codes.numpy())
    frames = data.batch([closed, wide])["image"]
    to = lambda k: float((((image - frames[k]).abs() * box).sum((1, 2, 3)) / box.sum((1, 2, 3))).mean())
    assert to(0) < to(1)  # rendered lips look like the most closed frame, not the widest


def test_lip_gain_widens_the_codes_from_the_closed_mouth(speaking_model, tmp_path):
    """--lip_gain 2 doubles every code's distance from the closed mouth (the codes that drove the render)."""
    import synthesize_fuse
    from scene.models.audio_to_mouth import load_audio_to_mouth

    subject, model = speaking_model
    codes = {}
    for gain in (1.0, 2.0):
        out = tmp_path / f"gain{gain}.mp4"
        assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--audio",
                                     str(subject / "aud_ph.npy"), "--lip_gain", str(gain), "--fast", "--quiet",
                                     "--out", str(out), "--backend", "torch"]) == 0
        codes[gain] = np.load(tmp_path / f"gain{gain}_mouth_codes.npy")
    a2m = load_audio_to_mouth(model / "audio_to_mouth.pt")[0]
    centre = a2m.denormalise(a2m.closed_code).numpy()  # a closed mouth stays closed
    np.testing.assert_allclose(codes[2.0] - centre, 2 * (codes[1.0] - centre), rtol=1e-5, atol=1e-6)
    assert np.abs(codes[1.0] - centre).max() > 1e-3  # the codes do move: the check above is not 0 == 0
