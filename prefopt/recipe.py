"""Recipes: YAML (safe_load) -> `base:` merge -> `--set` overrides -> typed, validated `Recipe`.

Every error names the file (or the --set flag) and the dotted key path, and unknown keys get a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from prefopt import recipe_checks
from prefopt.errors import UserError
from prefopt.schema import Recipe


class RecipeError(UserError):
    """A recipe problem, located by file and key path."""


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Load a recipe file, merge its bases, apply `a.b=c` overrides and validate everything."""
    path = Path(path)
    origins: dict[str, str] = {}
    raw = _load_with_bases(path, origins, seen=())
    if origins.get("name") != str(path):  # a base's name is never inherited: each recipe file names its own runs
        raw["name"] = _default_name(path)
    for item in overrides:
        key, value = parse_override(item)
        _set_path(raw, key.split("."), value, f"--set {item}")
        origins[key] = f"--set {item}"
    recipe = _build(Recipe, raw, "", origins, str(path))
    _check(recipe, origins, str(path))
    return recipe


def apply_overrides(recipe: Recipe, overrides: list[str] = ()) -> Recipe:
    """A validated copy of an in-memory recipe with `a.b=c` overrides applied (the Python API's `--set`)."""
    raw, origins = recipe_to_dict(recipe), {}
    for item in overrides:
        key, value = parse_override(item)
        _set_path(raw, key.split("."), value, f"--set {item}")
        origins[key] = f"--set {item}"
    built = _build(Recipe, raw, "", origins, "<recipe>")
    _check(built, origins, "<recipe>")
    return built


def _default_name(path: Path) -> str:
    """recipes/tiny/dpo.yaml -> tiny_dpo (the path below `recipes/`); any other file -> its stem."""
    parts = path.resolve().with_suffix("").parts
    if "recipes" in parts:
        return "_".join(parts[len(parts) - parts[::-1].index("recipes"):])
    return path.stem


def parse_override(item: str) -> tuple[str, Any]:
    """Split `a.b=c` and parse c as a YAML scalar (so 0.05 is a float and true a bool)."""
    if "=" not in item:
        raise RecipeError(f"--set {item}: expected KEY=VALUE, e.g. --set loss.beta=0.05")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def recipe_to_dict(recipe: Recipe) -> dict:
    """The fully resolved recipe as plain data (what --dry-run prints and runs save)."""
    out = dataclasses.asdict(recipe)
    out["optim"]["betas"] = list(out["optim"]["betas"])
    return out


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, loadable again by load_recipe."""
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def all_keys(cls=Recipe, prefix: str = "") -> list[str]:
    """Every dotted key path the schema accepts (used for suggestions and docs)."""
    keys = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(tp):
            keys += all_keys(tp, prefix + f.name + ".")
    return keys


# ---------------------------------------------------------------------------------------------------------- loading


def _load_with_bases(path: Path, origins: dict, seen: tuple) -> dict:
    if path.resolve() in seen:
        raise RecipeError(f"{path}: `base:` chain loops back to itself")
    try:
        text = path.read_text()
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe ({e.strerror})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    _record_origins(raw, "", str(path), origins)
    if base is None:
        return raw
    bases = base if isinstance(base, list) else [base]
    merged: dict = {}
    for b in bases:
        merged = _merge(merged, _load_with_bases(path.parent / str(b), origins, seen + (path.resolve(),)))
    return _merge(merged, raw)


def _record_origins(raw: dict, prefix: str, src: str, origins: dict) -> None:
    for k, v in raw.items():
        origins[prefix + str(k)] = src
        if isinstance(v, dict):
            _record_origins(v, prefix + str(k) + ".", src, origins)


def _merge(base: dict, top: dict) -> dict:
    """Merge key by key: mappings recurse, everything else (lists too) is replaced."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _set_path(raw: dict, parts: list[str], value: Any, where: str) -> None:
    node = raw
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise RecipeError(f"{where}: `{p}` is a value, not a section")
        node = child
    node[parts[-1]] = value


# ------------------------------------------------------------------------------------------------------- validation


def _where(key: str, origins: dict, default: str) -> str:
    src = origins.get(key, default)
    return src if src.startswith("--set") else f"{src}: {key}"


def _build(cls, raw: Any, prefix: str, origins: dict, src: str, default=None):
    """`cls` from a recipe section; unset keys keep `default`'s values (a field's own default, such as grpo.reward's
    kind: rule), else the class's."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{_where(prefix.rstrip('.'), origins, src)}: expected a section (mapping), got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        path = prefix + str(key)
        if key not in fields:
            close = difflib.get_close_matches(path, all_keys(), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise RecipeError(f"{_where(path, origins, src)}: unknown key `{path}`{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            factory = fields[key].default_factory
            kwargs[key] = _build(tp, value or {}, path + ".", origins, src,
                                 None if factory is dataclasses.MISSING else factory())
        else:
            kwargs[key] = _coerce(value, tp, path, origins, src)
    return cls(**kwargs) if default is None else dataclasses.replace(default, **kwargs)


def _coerce(value: Any, tp: Any, path: str, origins: dict, src: str) -> Any:
    def bad(expected: str):
        return RecipeError(f"{_where(path, origins, src)}: expected {expected}, got {value!r}")

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:  # Optional[X]
        if value is None:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), path, origins, src)
    if origin is Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `5e-7` (no dot) as a string; it is meant as a number
            try:
                return float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad("a string")
        return str(value)
    if tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        return tp(value)
    return value


def _check(recipe: Recipe, origins: dict, src: str) -> None:
    """Cross-field rules (prefopt/recipe_checks.py); a broken one names the file or --set flag and the key."""

    def fail(key: str, msg: str):
        raise RecipeError(f"{_where(key, origins, src)}: {msg}")

    recipe_checks.check(recipe, fail)
