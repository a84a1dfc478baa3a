"""The audio-to-mouth model (scene/models/audio_to_mouth.py): it learns a mapping from audio features to the
mouth opening that holds on frames it never saw, closes the mouth in silence, and saves as plain data."""
import numpy as np
import pytest
import torch

from scene.data.mouth_features import mouth_audio_features, speech_activity
from scene.models.audio_to_mouth import (AudioToMouth, FitConfig, fit_audio_to_mouth, load_audio_to_mouth, pearson,
                                         predicted_for, save_audio_to_mouth)

NAMES = ["opening", "jawOpen"]


def synthetic_clip(frames=700, channels=24, seed=0, silence=(), with_phonemes=False):
    """Phoneme-like features [T, C, 16] and mel-like [T, 10, 16] whose 'vowel' classes open the mouth.

    A random phone sequence (each held 2-6 frames) is one-hot in the first channels (class 0 = silence);
    the opening is the classes' openness, smoothed over ~80 ms as lips move, plus noise. Frames in
    `silence` (a slice) are silent with a closed mouth.
    """
    openness = np.random.default_rng(123).uniform(0.1, 1.0, channels)  # the "language": fixed
    openness[0] = 0.0
    rng = np.random.default_rng(seed)
    cls = np.repeat(rng.integers(0, channels, frames), rng.integers(2, 7, frames))[:frames]
    for s in silence:
        cls[s] = 0
    steps = np.zeros((frames, channels, 16), np.float32)
    steps[np.arange(frames), cls, :] = 1.0
    steps += rng.normal(0, 0.05, steps.shape).astype(np.float32)
    loud = (cls != 0).astype(np.float32)
    mel = (loud[:, None, None] * rng.uniform(0.5, 1.5, (1, 10, 1)) + rng.normal(0, 0.2, (frames, 10, 16))).astype(np.float32)
    opening = np.convolve(openness[cls], np.ones(3) / 3, mode="same") + rng.normal(0, 0.03, frames)
    codes = np.stack([opening, 0.8 * opening + rng.normal(0, 0.05, frames)], 1).astype(np.float32)
    feats = mouth_audio_features({"phoneme": steps, "mel": mel})
    return (feats, codes, steps) if with_phonemes else (feats, codes)


FAST = FitConfig(hidden=32, steps=300, eval_every=25, folds=2)


@pytest.fixture(scope="module")
def fitted():
    feats, codes = synthetic_clip()
    train, val = np.arange(600), np.arange(600, 700)
    model, report = fit_audio_to_mouth(feats, codes, NAMES, train, val, FAST)
    return feats, codes, model, report


def test_features_take_each_frames_own_two_steps():
    w = np.arange(3 * 2 * 16, dtype=np.float32).reshape(3, 2, 16)  # [T, C, W]
    x = mouth_audio_features({"a": w, "b": w[:, :1]})
    assert x.shape == (3, 2 * 2 + 2)
    np.testing.assert_array_equal(x[1, :4], [w[1, 0, 8], w[1, 1, 8], w[1, 0, 9], w[1, 1, 9]])
    with pytest.raises(ValueError, match="different frame counts"):
        mouth_audio_features({"a": w, "b": w[:2]})
    with pytest.raises(ValueError, match="16"):
        mouth_audio_features({"a": w[:, :, :5]})


def test_learns_the_mapping_and_generalises_to_held_out_frames(fitted):
    feats, codes, model, report = fitted
    assert report["val_opening_r"] > 0.8, report["per_code"]
    assert report["per_code"]["opening"]["oof_r"] > 0.7  # frames each fold never saw
    pred = model.predict(feats).numpy()
    assert pearson(pred[600:, 0], codes[600:, 0]) > 0.8
    # a new clip of the same 'language' (other phone sequence, other seed): still follows it
    other_feats, other_codes = synthetic_clip(400, seed=5)
    assert pearson(model.predict(other_feats).numpy()[:, 0], other_codes[:, 0]) > 0.7
    # and shuffled audio carries nothing
    shuffled = model.predict(feats[np.random.default_rng(1).permutation(700)]).numpy()
    assert abs(pearson(shuffled[600:, 0], codes[600:, 0])) < 0.3
    assert report["oof_codes"].shape == (600, 2)


def test_silence_gives_a_closed_mouth(fitted):
    _, codes, model, _ = fitted
    feats, truth, phonemes = synthetic_clip(300, seed=7, silence=(slice(200, 300),), with_phonemes=True)
    activity = speech_activity(phonemes, non_speech=(0,))  # class 0 is this clip's silence
    assert activity[215:].max() < 0.1 < activity[:190].min()
    pred = model.predict(feats, activity=activity).numpy()[:, 0]  # trailing four seconds of silence
    closed, speaking = np.median(pred[215:300]), np.median(pred[:200])
    assert closed < np.percentile(codes[:, 0], 10), (closed, speaking)
    assert speaking - closed > 0.5 * codes[:, 0].std()
    # fluent speech is not gated: the same predictions with or without the activity
    np.testing.assert_allclose(pred[:190], model.predict(feats).numpy()[:190, 0], rtol=1e-5, atol=1e-6)


def test_speech_activity_holds_over_short_gaps_and_drops_in_pauses():
    T = 120
    ph = np.zeros((T, 191, 16), np.float32)
    ph[:, 190] = 1.0  # CTC blank everywhere
    for t in range(0, 60, 5):  # a phone every 5 frames (200 ms) for 60 frames, then 2.4 s of silence
        ph[t, 190], ph[t, 40] = 0.0, 1.0
    act = speech_activity(ph)
    assert act[:58].min() > 0.1  # the gaps between phones are speech
    assert act[75:].max() < 0.02  # a pause longer than half a second is silence


def test_calibration_gives_predictions_the_real_amplitude(fitted):
    feats, codes, model, report = fitted
    raw = model.predict(feats, calibrated=False).numpy()[600:, 0]
    cal = model.predict(feats).numpy()[600:, 0]
    assert float(model.gain[0]) >= 1.0
    real = codes[600:, 0].std()
    assert abs(cal.std() / real - 1) <= abs(raw.std() / real - 1) + 1e-6


def test_saved_as_plain_data_and_reloads_to_the_same_predictions(fitted, tmp_path):
    feats, _, model, report = fitted
    oof = report.pop("oof_codes")
    path = save_audio_to_mouth(tmp_path / "audio_to_mouth.pt", model, ["phoneme", "mel"], report,
                               np.arange(600), oof)
    torch.load(path, weights_only=True)  # nothing but tensors, lists, numbers and strings
    again, blob = load_audio_to_mouth(path)
    torch.testing.assert_close(again.predict(feats), model.predict(feats))
    assert again.names == NAMES and blob["features"] == ["phoneme", "mel"]
    np.testing.assert_allclose(predicted_for(blob, np.array([3, 1])), oof[[3, 1]])
    assert predicted_for(blob, np.array([650])) is None  # a val frame has no out-of-fold code
    with pytest.raises(FileNotFoundError, match="--stage lips"):
        load_audio_to_mouth(tmp_path / "missing.pt")


def test_per_clip_standardisation_absorbs_a_louder_microphone(fitted):
    feats, codes, model, _ = fitted
    louder = feats * 3.0 + 1.0  # another gain and offset on every channel
    same = model.predict(feats).numpy()[:, 0]
    moved = model.predict(louder).numpy()[:, 0]
    fixed_stats = model.predict(louder, per_clip=False).numpy()[:, 0]
    assert pearson(moved, same) > 0.95
    assert np.abs(moved - same).mean() < np.abs(fixed_stats - same).mean()


def test_too_few_frames_is_a_clear_error():
    feats, codes = synthetic_clip(40)
    with pytest.raises(ValueError, match="at least 8 training frames"):
        fit_audio_to_mouth(feats, codes, NAMES, np.arange(5), np.arange(5, 40), FAST)
    with pytest.raises(ValueError, match=r"\[T, "):
        AudioToMouth(feats.shape[1], NAMES).predict(feats[:, :5])
