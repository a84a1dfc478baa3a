"""scripts/profile_train.py profiles a stage as train.py runs it (mouth codes included) on the synthetic subject."""
from __future__ import annotations

from tests.fixtures.make_subject import make_subject
from tests.script_module import load_script


def test_profile_train_fits_the_lips_first_and_writes_its_table(tmp_path, capsys):
    subject = make_subject(tmp_path / "synth", n_frames=20, size=48)  # the lips model needs >= 16 training frames
    out = tmp_path / "profile.md"
    assert load_script("profile_train").main(["-s", str(subject), "--stage", "face", "--resolution", "48",
                                              "--iters", "2", "--backend", "torch", "--out", str(out)]) == 0
    text = out.read_text()
    assert "face stage, 48x48" in text and " it/s " in text and "Top operators by self CPU time" in text
