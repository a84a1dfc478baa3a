"""Command-line flags generated from the configuration dataclasses.

Every scalar field of a group becomes `--name` (a field in the group's `short` also gets upstream's
`-x` and `-X`); booleans are store_true flags; the string under the field is the help text. A CLI
picks the fields it uses with `only` / `skip`, so its --help lists nothing it ignores.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import textwrap
from dataclasses import fields
from functools import lru_cache
from typing import Any, Iterable, Mapping, TypeVar

from arguments.groups import from_values

T = TypeVar("T")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@lru_cache(maxsize=None)
def field_help(group: type) -> dict[str, str]:
    """Field docstrings (the string literal under each field) from the class source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(group)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    return {node.target.id: str(nxt.value.value) for node, nxt in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)}


def flag_fields(group: type) -> list:
    """The fields of `group` that are command-line flags: scalars not listed in its `internal`."""
    skip = getattr(group, "internal", ())
    return [f for f in fields(group) if f.name not in skip and _scalar_type(f) is not None]


def _scalar_type(f) -> type | None:
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    return _TYPES.get(name.replace(" | None", "").strip())


def _flag_names(group: type, name: str) -> list[str]:
    names = [f"--{name}"]
    if name in getattr(group, "short", ()):
        names += [f"-{name[0]}", f"-{name[0].upper()}"]
    return names


def _default_text(name: str, default: Any, presets: Mapping[str, Mapping[str, Any]]) -> str:
    parts = [] if default in (None, "", False) else [f"default: {default}"]
    parts += [f"{preset}: {values[name]}" for preset, values in presets.items() if name in values]
    return f" ({'; '.join(parts)})" if parts else ""


def add_group(parser: argparse.ArgumentParser, group: type, only: Iterable[str] | None = None,
              suppress_defaults: bool = False, presets: Mapping[str, Mapping[str, Any]] | None = None,
              title: str | None = None, description: str | None = None, defaults_from: str = ""):
    """Add one flag per flag field of `group` (only those named in `only`, when given).

    suppress_defaults: flags not typed are absent from the parsed namespace (the caller fills them
    from a preset or a saved configuration). presets: {name: {field: value}} shown in the help.
    defaults_from: where untyped values come from, said in the help instead of the dataclass defaults.
    Returns the argparse group (to add a CLI's own flags beside the fields).
    """
    helps = field_help(group)
    chosen = [f for f in flag_fields(group) if only is None or f.name in only]
    arg_group = parser.add_argument_group(title or group.__name__, description or (group.__doc__ or "").strip())
    for f in chosen:
        default = argparse.SUPPRESS if suppress_defaults else f.default
        text = helps.get(f.name, "") + (f" ({defaults_from})" if defaults_from else
                                         _default_text(f.name, f.default, presets or {}))
        text = text.replace("%", "%%")  # argparse formats help with %
        if _scalar_type(f) is bool:
            arg_group.add_argument(*_flag_names(group, f.name), action="store_true", default=default, help=text)
        else:
            arg_group.add_argument(*_flag_names(group, f.name), type=_scalar_type(f), default=default, help=text)
    return arg_group


def extract_group(args: argparse.Namespace, group: type[T]) -> T:
    """Build a `group` dataclass from the parsed flags (fields absent from args keep their default)."""
    return from_values(group, vars(args))
