"""Rendering: the backend-agnostic `rasterize` and the face / mouth / fused render functions."""
from gaussian_renderer.rasterize import RasterOutput, rasterize, resolve_backend

__all__ = ["RasterOutput", "rasterize", "resolve_backend"]
