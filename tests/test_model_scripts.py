"""The scripts that read a trained model (slim_model, lip_motion, bench_synth) on a tiny model with mouth codes."""
from __future__ import annotations

import pytest

import train
from tests.fixtures.make_subject import make_subject
from tests.script_module import load_script


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_scripts")
    subject = make_subject(root / "synth", n_frames=20, size=48)  # the lips model needs >= 16 training frames
    model = root / "model"
    assert train.main(["-s", str(subject), "-m", str(model), "--mouth_iterations", "8", "--face_iterations", "8",
                       "--fuse_iterations", "2", "--init_num", "200", "--face_init_num", "200",
                       "--backend", "torch", "--audio_extractor", "mel", "--direct_audio", "on", "--quiet"]) == 0
    return subject, model  # not the defaults: the scripts must read the model's own settings (cfg_args.json)


def test_slim_model_renders_like_the_full_folder(trained, tmp_path, capsys):
    subject, model = trained
    script = load_script("slim_model")
    assert script.main([str(model), str(tmp_path / "slim")]) == 0
    slim = tmp_path / "slim"
    assert script.main([str(model), str(slim)]) == 1  # an earlier copy stays unless --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert script.main([str(model), str(slim), "--overwrite"]) == 0
    with pytest.raises(SystemExit) as e:
        script.main(["--help"])
    assert e.value.code == 0
    assert (slim / "audio_to_mouth.pt").is_file()  # models with mouth codes need it to render
    assert load_script("lip_motion").main(["-S", str(subject), "-M", str(slim), "--json", str(tmp_path / "l.json")]) == 0
    assert '"mouth_code_gain"' in (tmp_path / "l.json").read_text()


def test_bench_synth_times_every_part(trained, tmp_path):
    subject, model = trained
    out = tmp_path / "bench.md"
    assert load_script("bench_synth").main(["-S", str(subject), "-M", str(model), "--resolution", "48",
                                            "--batch_sizes", "2", "--frames", "2", "--backend", "torch",
                                            "--out", str(out)]) == 0
    row = [line for line in out.read_text().splitlines() if line.startswith("| 2 |")]
    assert len(row) == 1 and row[0].count("|") == 11, row
