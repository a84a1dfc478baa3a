"""Tri-plane multi-resolution grid encoder (xy, yz, xz planes) used by the motion networks.

`reference.py` is the pure-PyTorch definition and the CPU path. A fused GPU kernel, if added,
belongs beside it and must match `tri_plane_encode` forward and backward.
"""
from submodules.gridencoder.reference import (
    FACE_GRID,
    MOUTH_GRID,
    PLANE_AXES,
    GridLayout,
    TriPlaneEncoder,
    grid_layout,
    tri_plane_encode,
)

__all__ = ["FACE_GRID", "MOUTH_GRID", "PLANE_AXES", "GridLayout", "TriPlaneEncoder", "grid_layout",
           "tri_plane_encode"]
