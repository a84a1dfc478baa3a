"""Tri-plane grid encoder: layout, values against a naive loop, bounds, gradients (float64 gradcheck)."""
from __future__ import annotations

import math

import pytest
import torch

from submodules.gridencoder import TriPlaneEncoder, grid_layout

FACE_RESOLUTIONS = [16, 18, 19, 21, 22, 24, 26, 28, 31, 33, 36, 39]


def _naive_encode(enc: TriPlaneEncoder, coords: torch.Tensor) -> torch.Tensor:
    """Per-point, per-plane, per-level Python loop straight from the written-down rules."""
    L, F, bound = enc.num_levels, enc.level_dim, enc.bound
    table = enc.embeddings.detach().double()
    out = torch.zeros(coords.shape[0], 3, L, F, dtype=torch.float64)
    for n, p in enumerate(coords.double().tolist()):
        u = [(c + bound) / (2 * bound) for c in p]
        for plane, (a, b) in enumerate([(0, 1), (1, 2), (0, 2)]):
            ua, ub = u[a], u[b]
            if not (0 <= ua <= 1 and 0 <= ub <= 1):
                continue
            for level in range(L):
                scale = enc.layout.scales[level]
                res = math.ceil(scale) + 1
                size = enc.layout.sizes[level]
                start = enc.layout.offsets[level]
                x, y = ua * scale + 0.5, ub * scale + 0.5
                i0, j0 = math.floor(x), math.floor(y)
                fx, fy = x - i0, y - j0
                for di, dj, w in [(0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                                  (0, 1, (1 - fx) * fy), (1, 1, fx * fy)]:
                    i, j = i0 + di, j0 + dj
                    if (res + 1) ** 2 <= size:
                        idx = i + j * (res + 1)
                    else:  # torch-ngp hash, uint32
                        idx = (i ^ ((j * 2654435761) & 0xFFFFFFFF)) % size
                    out[n, plane, level] += w * table[plane, start + idx]
    return out.reshape(coords.shape[0], -1)


def _points(n: int, spread: float = 0.15, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return ((torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1) * spread).to(dtype)


def _randomise(enc: TriPlaneEncoder, seed: int = 0) -> TriPlaneEncoder:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        enc.embeddings.copy_(torch.randn(enc.embeddings.shape, generator=gen, dtype=torch.float64))
    return enc


def test_face_resolutions_match_upstream():
    enc = TriPlaneEncoder.face()
    assert enc.resolutions == FACE_RESOLUTIONS
    assert enc.output_dim == 36
    # The python-side rule ceil(base * s**l) gives the same list (so table sizes and indexing agree).
    s = 2 ** (math.log2(38.4 / 16) / 11)
    assert [math.ceil(16 * s ** l) for l in range(12)] == FACE_RESOLUTIONS
    # Dense tables: (res + 1)^2 rounded up to 8, no hashing.
    assert list(enc.layout.sizes) == [math.ceil((r + 1) ** 2 / 8) * 8 for r in FACE_RESOLUTIONS]
    assert not any(enc.layout.hashed)


def test_mouth_resolutions_decrease():
    enc = TriPlaneEncoder.mouth()
    s = 2 ** (math.log2(57.6 / 64) / 11)
    assert s < 1
    assert enc.resolutions == [math.ceil(64 * s ** l) for l in range(12)]
    assert enc.resolutions[0] == 64 and enc.resolutions[-1] == 58
    assert all(a >= b for a, b in zip(enc.resolutions, enc.resolutions[1:]))


def test_init_range_and_shapes():
    enc = TriPlaneEncoder.face()
    assert enc.embeddings.abs().max() <= 1e-4
    assert enc.embeddings.std() > 3e-5  # uniform(-1e-4, 1e-4) has std 5.8e-5
    assert enc(torch.zeros(2, 5, 3)).shape == (2, 5, 36)
    assert TriPlaneEncoder.face(level_dim=2)(torch.zeros(4, 3)).shape == (4, 72)


@pytest.mark.parametrize("preset", ["face", "mouth"])
def test_values_match_naive_loop(preset):
    enc = _randomise(getattr(TriPlaneEncoder, preset)()).double()
    coords = torch.cat([_points(40, 0.16, dtype=torch.float64),
                        torch.tensor([[0.15, -0.15, 0.0], [-0.15, -0.15, -0.15], [0.151, 0.0, 0.0]],
                                     dtype=torch.float64)])
    got = enc(coords)
    torch.testing.assert_close(got, _naive_encode(enc, coords), rtol=1e-10, atol=1e-10)


def test_hashed_levels_match_naive_loop():
    enc = _randomise(TriPlaneEncoder(num_levels=3, base_resolution=8, desired_resolution=40,
                                     log2_hashmap_size=8)).double()
    assert enc.layout.hashed == (False, True, True)
    coords = _points(30, dtype=torch.float64)
    torch.testing.assert_close(enc(coords), _naive_encode(enc, coords), rtol=1e-10, atol=1e-10)


def test_out_of_bounds_is_zero_per_plane():
    enc = _randomise(TriPlaneEncoder.face())
    coords = torch.tensor([[0.2, 0.0, 0.0],  # x outside: xy and xz vanish, yz stays
                           [0.0, 0.0, -0.16],  # z outside: yz and xz vanish
                           [0.3, -0.3, 0.3],  # outside everywhere
                           [0.0, 0.0, 0.0]], requires_grad=True)
    out = enc(coords).reshape(4, 3, 12)
    nonzero = out.abs().amax(-1) > 0  # [4, 3] planes xy, yz, xz
    assert nonzero.tolist() == [[False, True, False], [True, False, False],
                                [False, False, False], [True, True, True]]
    out[2].sum().backward()
    assert torch.count_nonzero(enc.embeddings.grad) == 0
    assert torch.count_nonzero(coords.grad) == 0


def test_vertex_sample_reads_table_entry():
    """A point on a grid vertex of level 0 returns that vertex's entry exactly (weight 1)."""
    enc = _randomise(TriPlaneEncoder(num_levels=1, base_resolution=5, desired_resolution=None)).double()
    scale = enc.layout.scales[0]  # 4.0: vertices at u = (k - 0.5) / 4
    u = torch.tensor([(2 - 0.5) / scale, (3 - 0.5) / scale, (1 - 0.5) / scale], dtype=torch.float64)
    out = enc(u * 0.3 - 0.15)
    stride = enc.resolutions[0] + 1
    expect = [enc.embeddings[0, 2 + 3 * stride, 0], enc.embeddings[1, 3 + 1 * stride, 0],
              enc.embeddings[2, 2 + 1 * stride, 0]]
    torch.testing.assert_close(out, torch.stack(expect))


def test_gradcheck_tables_and_inputs_small():
    """Float64 autograd equals central finite differences, for tables and input coordinates."""
    enc = _randomise(TriPlaneEncoder(num_levels=3, level_dim=2, base_resolution=4, desired_resolution=9,
                                     bound=1.0)).double()
    coords = _points(6, 0.9, seed=1, dtype=torch.float64).requires_grad_(True)
    table = enc.embeddings.detach().clone().requires_grad_(True)

    def fn(x, t):
        return torch.func.functional_call(enc, {"embeddings": t}, (x,))

    assert torch.autograd.gradcheck(fn, (coords, table), eps=1e-6, atol=1e-7)


def test_gradcheck_face_preset_fast():
    enc = _randomise(TriPlaneEncoder.face()).double()
    coords = _points(20, 0.14, seed=2, dtype=torch.float64).requires_grad_(True)
    table = enc.embeddings.detach().clone().requires_grad_(True)

    def fn(x, t):
        return torch.func.functional_call(enc, {"embeddings": t}, (x,))

    assert torch.autograd.gradcheck(fn, (coords, table), eps=1e-7, atol=1e-6, fast_mode=True)


def test_table_gradient_is_sum_of_bilinear_weights():
    """d(sum of outputs)/d(table) counts each point's bilinear weight once per corner: total = points x planes x levels."""
    enc = TriPlaneEncoder.face()
    coords = _points(50, 0.14)
    enc(coords).sum().backward()
    torch.testing.assert_close(enc.embeddings.grad.sum(), torch.tensor(50.0 * 3 * 12))
    assert (enc.embeddings.grad >= 0).all()
