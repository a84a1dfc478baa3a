"""Imports flow one way: utils <- data_utils; utils <- gaussian_renderer <- scene <- the CLIs and scripts.

Every .py file of the project is parsed with `ast` (nothing is imported) and each import of a project
module is checked against ALLOWED. A layer is a dotted prefix: a module belongs to the longest layer
that prefixes its name (scene.data, scene.models, scene.training are layers of their own).

A layer may always import itself and its own sublayers; allowing a layer allows its sublayers.
Imports under `if TYPE_CHECKING:` are skipped: they document a type and never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LIBRARY = {"utils", "arguments", "data_utils", "submodules", "gaussian_renderer", "scene"}
ENTRY_POINTS = {"train", "synthesize_fuse", "scripts"}
# layer -> the layers it may import
ALLOWED: dict[str, set[str]] = {
    "utils": set(),
    "arguments": {"utils"},
    "data_utils": {"utils"},
    "submodules": set(),
    "gaussian_renderer": {"utils"},
    "scene": set(),  # the package's __init__: nothing; its three parts below
    "scene.data": {"utils", "data_utils"},
    "scene.models": {"utils", "data_utils", "submodules", "gaussian_renderer", "scene.data"},
    "scene.training": {"utils", "data_utils", "arguments", "submodules", "gaussian_renderer", "scene.data",
                       "scene.models"},
    "train": LIBRARY,
    "synthesize_fuse": LIBRARY,
    "scripts": LIBRARY,
    "tests": LIBRARY | ENTRY_POINTS,
}
# (module, layer it imports) -> why it is allowed for now; each entry must still be needed
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _python_files() -> list[Path]:
    """Top-level .py files, and every .py file under a package or a layer's folder."""
    roots = [p for p in REPO.iterdir() if not p.name.startswith(".")
             and (p.suffix == ".py" or (p.is_dir() and ((p / "__init__.py").is_file() or p.name in ALLOWED)))]
    return sorted(f for r in roots for f in ([r] if r.is_file() else r.rglob("*.py")))


FILES = _python_files()
MODULES = {_module_name(f) for f in FILES}
TOP_LEVEL = {m.split(".")[0] for m in MODULES}


def layer_of(module: str) -> str | None:
    """The longest ALLOWED key that is `module` or a package above it."""
    parts = module.split(".")
    return next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in ALLOWED), None)


def _within(layer: str, other: str) -> bool:
    return layer == other or layer.startswith(other + ".")


def may_import(src: str, dst: str) -> bool:
    return _within(dst, src) or any(_within(dst, ok) for ok in ALLOWED[src])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import that runs, in functions too."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for a in node.names:  # `from scene.data import dataset` imports the module scene.data.dataset
                name = f"{base}.{a.name}" if base else a.name
                found.append((node.lineno, name if name in MODULES else base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def project_imports() -> list[tuple[str, int, str, str]]:
    """(file, line, importing module, imported project module) over the whole project."""
    rows = []
    for f in FILES:
        module = _module_name(f)
        for line, target in imported_modules(ast.parse(f.read_text(), str(f)), module, f.name == "__init__.py"):
            if target.split(".")[0] in TOP_LEVEL:
                rows.append((f.relative_to(REPO).as_posix(), line, module, target))
    return rows


def test_every_python_file_belongs_to_a_layer():
    assert len(FILES) > 100 and {"utils", "scene", "train", "scripts", "tests"} <= TOP_LEVEL
    orphans = sorted(f.relative_to(REPO).as_posix() for f in FILES if layer_of(_module_name(f)) is None)
    assert not orphans, f"add their package to ALLOWED in tests/test_layering.py: {orphans}"


def test_imports_follow_the_layers():
    bad, used = set(), set()
    for path, line, module, target in project_imports():
        src, dst = layer_of(module), layer_of(target)
        if dst is None or may_import(src, dst):
            continue
        key = next(((m, d) for m, d in EXCEPTIONS if _within(module, m) and _within(dst, d)), None)
        if key:
            used.add(key)
        else:
            bad.add(f"{path}:{line}: {module} ({src}) imports {target} ({dst})")
    assert not bad, "imports against the layers (ALLOWED in tests/test_layering.py):\n" + "\n".join(sorted(bad))
    assert used == set(EXCEPTIONS), f"no longer needed, remove from EXCEPTIONS: {set(EXCEPTIONS) - used}"


@pytest.mark.parametrize("source, ok", [
    ("from data_utils.landmarks import LegacyDetector", False),
    ("def f():\n    import scene.data.dataset", False),
    ("from . import sh_utils", True),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scene.models import gaussian_model", True),
    ("import numpy, torch", True),
])
def test_the_check_sees_imports_in_all_their_forms(source, ok):
    """A made-up module utils.x: bad imports are found at module level and in functions."""
    targets = [t for _, t in imported_modules(ast.parse(source), "utils.x", False) if t.split(".")[0] in TOP_LEVEL]
    assert all(may_import("utils", layer_of(t)) for t in targets) == ok, targets


def test_sublayers_of_the_split_package():
    assert layer_of("scene.data.dataset") == "scene.data" and layer_of("scene.training.stages") == "scene.training"
    assert may_import("train", "scene.models") and may_import("scene.training", "scene.data")
    assert not may_import("scene.data", "scene.models") and not may_import("scene.models", "scene.training")
    assert may_import("scene.data", "data_utils") and not may_import("scene.data", "gaussian_renderer")
    assert not may_import("gaussian_renderer", "scene.models")
    [(_, target)] = imported_modules(ast.parse("from ..models import gaussian_model"), "scene.data.x", False)
    assert layer_of(target) == "scene.models" and not may_import("scene.data", layer_of(target))
