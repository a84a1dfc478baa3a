"""scripts/bench_render.py and scripts/gpu_check_rasterizer.py run (tiny sizes, CPU) and write their tables."""
from __future__ import annotations

import importlib.util

import torch

from tests.conftest import REPO


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_render_prints_and_writes_a_table(tmp_path, capsys):
    bench = _load("bench_render")
    out = tmp_path / "bench.md"
    rows = bench.main(["--device", "cpu", "--backends", "torch", "--counts", "300,600", "--resolutions", "32",
                       "--repeats", "1", "--warmup", "0", "--skip", "torch:600:32", "--out", str(out)])
    assert [r["n"] for r in rows] == [300, 600]
    assert rows[0]["visible"] > 0 and rows[0]["fwd_ms"] > 0 and rows[0]["fwd_bwd_ms"] > 0 and rows[0]["peak_mb"] > 0
    assert "skipped" in rows[1]
    table = out.read_text()
    assert table.startswith("| backend | device | Gaussians |")
    assert "| torch | cpu | 300 | 32x32 |" in table and "skipped: --skip" in table
    assert table.strip() in capsys.readouterr().out


def test_gpu_check_runs_its_cpu_part_without_cuda(tmp_path, monkeypatch):
    check = _load("gpu_check_rasterizer")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.md"
    report = check.main(["--out", str(out)])
    assert out.read_text() == report
    assert "CUDA is not available: skipped" in report
    row = next(line for line in report.splitlines() if line.startswith("| torch float32 (CPU)"))
    colour_diff = float(row.split("|")[5])
    assert colour_diff < 1e-5


def test_gpu_check_comparison_table_with_stand_in_gsplat(monkeypatch):
    from tests.gaussian_renderer.test_gsplat_backend import _fake_gsplat

    check = _load("gpu_check_rasterizer")
    _fake_gsplat(monkeypatch)
    lines = check.check_backends([200], 32, torch.device("cpu"))
    assert len(lines) == 4  # header, rule, float32 row, float64 row
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == "200" and cells[-1] == "PASS", line
        assert cells[6] == "100.00%" and float(cells[7]) < 1e-4, line
