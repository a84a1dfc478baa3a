"""SubjectData end to end on the synthetic subject: batches agree with the files they come from."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from scene.data import frame_features as ff
from scene.data.dataset import load_subject
from scene.data.subject_files import MissingSubjectFile
from tests.fixtures.make_subject import camera_c2w, face_points, gl_c2w_to_cv_w2c, make_subject
from utils.graphics_utils import project_points


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    return make_subject(tmp_path_factory.mktemp("store") / "synth", n_frames=12, size=64, cx_offset=3.0)


def _copy(subject, tmp_path):
    dst = tmp_path / "synth"
    shutil.copytree(subject, dst, ignore=shutil.ignore_patterns(".cache"))
    return dst


def test_batch_matches_files(subject):
    data = load_subject(subject, "train", progress=False)
    assert data.num_frames == 10 and (data.width, data.height) == (64, 64)
    b = data.batch([2, 7])
    img = cv2.cvtColor(cv2.imread(str(subject / "ori_imgs" / "7.jpg")), cv2.COLOR_BGR2RGB)
    torch.testing.assert_close(b["image"][1], torch.from_numpy(img).float() / 255)
    parsing = cv2.cvtColor(cv2.imread(str(subject / "parsing" / "7.png")), cv2.COLOR_BGR2RGB)
    teeth = np.load(subject / "teeth_mask" / "7.npy")
    truth = ff.masks_from_bits(ff.parsing_bits(parsing, teeth))
    for name in ("face", "face_only", "mouth", "hair", "neck", "cloth", "teeth", "bg"):
        np.testing.assert_array_equal(b["masks"][name][1, ..., 0].numpy() > 0.5, truth[f"{name}_mask"], err_msg=name)
    assert b["masks"]["teeth"][1].sum() > 0 and b["masks"]["mouth"][1].sum() > b["masks"]["teeth"][1].sum()
    assert b["img_id"].tolist() == [2, 7] and b["aud_id"].tolist() == [2, 7]
    assert b["expression"].shape == (2, 52) and b["jaw"].shape == (2, 3)
    assert b["audio_windows"].shape == (2, 8, 191, 16)
    # the box mask is the lips rectangle, and the mouth lies inside it
    r = b["lips_rect"][1].tolist()
    box = b["masks"]["lips_box"][1, ..., 0]
    assert box.sum() == (r[1] - r[0]) * (r[3] - r[2]) and box[r[0]:r[1], r[2]:r[3]].all()
    assert (b["masks"]["mouth"][1, ..., 0] * (1 - box)).sum() == 0


def test_audio_windows_are_the_audio_frames_around_aud_id(subject):
    data = load_subject(subject, "train", progress=False)
    T = data.audio.shape[0]
    for ids in ([0, 1], [5], [9, 3]):
        b = data.batch(ids)
        for win, a in zip(b["audio_windows"], b["aud_id"].tolist()):
            for k, row in enumerate(range(a - 4, a + 4)):  # upstream: frames i-4 .. i+3
                want = data.audio[row] if 0 <= row < T else torch.zeros_like(data.audio[0])
                assert torch.equal(win[k], want), (a, k)
    assert b["audio_windows"][1, 0].abs().sum() == 0 and b["audio_windows"][1, 1].abs().sum() > 0  # frame 3: rows -1, 0 ..


def test_cameras_reproject_the_landmarks(subject):
    """The fixture's 3D face seen through the reader's cameras lands on the .lms (at half resolution too)."""
    for res, scale in ((-1, 1.0), (32, 0.5)):
        data = load_subject(subject, "train", resolution=res, progress=False)
        b = data.batch([4])
        lms = np.loadtxt(subject / "ori_imgs" / "4.lms") * scale
        pts = face_points(0.0, 0.0)[17:36]  # brows and nose: rigid (no mouth or blink motion)
        uv = project_points(torch.from_numpy(pts).float(), b["viewmats"][0], b["Ks"][0])
        np.testing.assert_allclose(uv.numpy(), lms[17:36], atol=2e-3)
        assert np.allclose(b["viewmats"][0].numpy(), gl_c2w_to_cv_w2c(camera_c2w(4)), atol=1e-5)


def test_device_and_disk_storage_give_identical_batches(subject):
    a = load_subject(subject, "train", storage="device", progress=False)
    d = load_subject(subject, "train", storage="disk", progress=False)
    assert a.storage == "device" and d.storage == "disk"
    ba, bd = a.batch([9, 0, 3]), d.batch([9, 0, 3])
    for k in ("image", "background", "viewmats", "audio_windows", "expression", "lips_rect"):
        torch.testing.assert_close(ba[k], bd[k])
    for k in ba["masks"]:
        torch.testing.assert_close(ba["masks"][k], bd["masks"][k])


def test_stats_and_curriculum_arrays(subject):
    data = load_subject(subject, "train", progress=False)
    s = data.stats
    assert s.au25.shape == s.blink.shape == s.mouth_open.shape == s.mouth_pixels.shape == (10,)
    # the synthetic AU25 follows the mouth opening: the most open frames are also the widest au25
    assert np.corrcoef(s.au25, s.mouth_open)[0, 1] > 0.9
    assert np.corrcoef(s.mouth_pixels, s.mouth_open)[0, 1] > 0.8
    assert ((s.blink >= 0) & (s.blink <= 1)).all() and s.blink.max() == 1.0
    lb, ub, cur = data.per_frame["mouth_bound"].T
    assert lb.min() == cur.min() and ub.max() == cur.max()


def test_val_split_and_au_expression(subject):
    val = load_subject(subject, "val", exp_method="au", progress=False)
    assert val.img_ids.tolist() == [10, 11]
    b = val.batch(1)
    assert b["expression"].shape == (1, 6) and b["img_id"].item() == 11


def test_missing_files_give_one_clear_error(subject, tmp_path):
    d = _copy(subject, tmp_path)
    (d / "parsing" / "5.png").unlink()
    with pytest.raises(MissingSubjectFile, match=r"parsing/5\.png.*face parsing"):
        load_subject(d, "train", progress=False)
    (d / "3dmm.pt").unlink()
    with pytest.raises(MissingSubjectFile, match=r"3dmm\.pt.*expression codes"):
        load_subject(d, "train", progress=False)
    (d / "aud_mel.npy").unlink()
    with pytest.raises(MissingSubjectFile, match=r"aud_mel\.npy.*audio features"):
        load_subject(d, "train", audio_extractor="mel", exp_method="au", progress=False)
    with pytest.raises(MissingSubjectFile, match=r"aud_mel\.npy.*audio features"):  # the audio-to-mouth inputs
        load_subject(d, "train", exp_method="au", mouth_features=("phoneme", "mel"), progress=False)
    (d / "ori_imgs" / "0.jpg").unlink()  # no jpg and no <ID>.mp4
    with pytest.raises(MissingSubjectFile, match=r"ori_imgs/0\.jpg.*frame extraction.*mp4"):
        load_subject(d, "train", exp_method="au", progress=False)


def test_audio_features_of_another_extractor_are_refused(subject, tmp_path):
    d = _copy(subject, tmp_path)
    (d / "aud_ph.npy").rename(d / "aud_ps.npy")
    (d / "aud_ph.json").rename(d / "aud_ps.json")  # sidecar still says phoneme
    with pytest.raises(ValueError, match="'phoneme' features but 'pocketsphinx'"):
        load_subject(d, "train", audio_extractor="pocketsphinx", progress=False)


def test_short_audio_is_clamped_by_one_frame_and_refused_beyond(subject, tmp_path):
    from data_utils.audio.features import AudioFeatures, load_features, save_features

    d = _copy(subject, tmp_path)
    feats = load_features(d / "aud_ph.npy")
    for keep, ok in ((11, True), (8, False)):
        save_features(d / "aud_ph.npy", AudioFeatures(array=feats.array[:keep], extractor="phoneme"))
        if ok:
            data = load_subject(d, "val", progress=False)
            assert data.aud_ids.tolist() == [10, 10]
        else:
            with pytest.raises(ValueError, match="aud_ph.npy has 8 audio frames"):
                load_subject(d, "val", progress=False)


def test_au_csv_too_short(subject, tmp_path):
    d = _copy(subject, tmp_path)
    lines = (d / "au.csv").read_text().splitlines()
    (d / "au.csv").write_text("\n".join(lines[:6]) + "\n")
    with pytest.raises(ValueError, match="au.csv has 5 frames"):
        load_subject(d, "train", progress=False)


def test_transforms_without_cx_cy_fall_back_to_centre(subject, tmp_path):
    d = _copy(subject, tmp_path)
    meta = json.loads((d / "transforms_train.json").read_text())
    del meta["cx"], meta["cy"]
    (d / "transforms_train.json").write_text(json.dumps(meta))
    data = load_subject(d, "train", progress=False)
    assert data.cameras.Ks[0, 0, 2] == 32.0 and data.cameras.Ks[0, 1, 2] == 32.0


def test_cli_prints_a_table_and_reports_missing_folder(subject, tmp_path, capsys):
    from scene.data.dataset import main

    assert main([str(subject), "--device", "cpu", "--storage", "device", "disk", "--batches", "5"]) == 0
    out = capsys.readouterr().out
    assert "| device | device | 10 | 64x64 |" in out and "| disk | disk | 10 |" in out
    assert main([str(tmp_path / "nope"), "--device", "cpu"]) == 1
    assert "Subject folder does not exist" in capsys.readouterr().err
