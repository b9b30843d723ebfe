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


def _build(cls, raw: Any, prefix: str, origins: dict, src: str):
    if not isinstance(raw, dict):
        raise RecipeError(f"{_where(prefix.rstrip('.'), origins, src)}: expected a section (mapping), got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        path = prefix + str(key)
        if key not in names:
            close = difflib.get_close_matches(path, all_keys(), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise RecipeError(f"{_where(path, origins, src)}: unknown key `{path}`{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, path + ".", origins, src)
        else:
            kwargs[key] = _coerce(value, tp, path, origins, src)
    return cls(**kwargs)


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


def _check(r: Recipe, origins: dict, src: str) -> None:
    """Cross-field rules that a type alone cannot express."""

    def fail(key: str, msg: str):
        raise RecipeError(f"{_where(key, origins, src)}: {msg}")

    for key, value in (("loss.beta", r.loss.beta), ("loss.beta_chosen", r.loss.beta_chosen),
                       ("loss.beta_rejected", r.loss.beta_rejected)):
        if value is not None and value <= 0:
            fail(key, f"must be > 0, got {value}")
    flex = any(b is not None and b != r.loss.beta for b in (r.loss.beta_chosen, r.loss.beta_rejected))
    if r.loss.variant != "dpo" and (flex or r.loss.sft_weight):  # resolved betas equal to beta are fine
        fail("loss.variant", f"flex-β and loss.sft_weight belong to the dpo variant, not `{r.loss.variant}`")
    if not 0 <= r.loss.label_smoothing < 0.5:
        fail("loss.label_smoothing", f"must be in [0, 0.5), got {r.loss.label_smoothing}")
    for key, value in (("loss.sft_weight", r.loss.sft_weight), ("loss.center_weight", r.loss.center_weight),
                       ("loss.offset_scale", r.loss.offset_scale), ("loss.desirable_weight", r.loss.desirable_weight),
                       ("loss.undesirable_weight", r.loss.undesirable_weight),
                       ("optim.weight_decay", r.optim.weight_decay), ("optim.warmup_steps", r.optim.warmup_steps),
                       ("train.max_steps", r.train.max_steps), ("train.save_every", r.train.save_every),
                       ("train.max_tokens_per_batch", r.train.max_tokens_per_batch),
                       ("eval.every", r.eval.every), ("log.grad_split_every", r.log.grad_split_every)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    for key, value in (("optim.lr", r.optim.lr), ("train.micro_batch_size", r.train.micro_batch_size),
                       ("train.grad_accum", r.train.grad_accum), ("train.epochs", r.train.epochs),
                       ("log.every", r.log.every), ("data.max_length", r.data.max_length),
                       ("eval.max_prompts", r.eval.max_prompts), ("eval.max_new_tokens", r.eval.max_new_tokens)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    if not 0 < r.data.max_prompt_length < r.data.max_length:
        fail("data.max_prompt_length", f"must be in (0, data.max_length={r.data.max_length}), "
                                       f"got {r.data.max_prompt_length}")
    if not r.data.chat_roles or not all(isinstance(role, str) and role for role in r.data.chat_roles):
        fail("data.chat_roles", f"expected a non-empty list of role names, got {r.data.chat_roles!r}")
    if r.data.infer_prompt and not r.data.assistant_marker:
        fail("data.assistant_marker", "must not be empty while data.infer_prompt is on")
    if r.lora.rank < 0 or r.lora.alpha <= 0 or not 0 <= r.lora.dropout < 1:
        fail("lora", f"expected rank >= 0, alpha > 0 and dropout in [0, 1), got {vars(r.lora)}")
    if r.lora.rank and not (r.lora.target_modules and all(isinstance(m, str) and m for m in r.lora.target_modules)):
        fail("lora.target_modules", f"expected a non-empty list of module names, got {r.lora.target_modules!r}")
    if r.lora.rank and r.model.kind == "toy_mlp":
        fail("lora.rank", "LoRA needs a transformers model, not model.kind: toy_mlp")
    p = r.ppo
    for key, value in (("ppo.rollout_batch_size", p.rollout_batch_size), ("ppo.epochs", p.epochs),
                       ("ppo.temperature", p.temperature), ("ppo.max_new_tokens", p.max_new_tokens),
                       ("ppo.clip", p.clip), ("ppo.value_clip", p.value_clip), ("ppo.kl_horizon", p.kl_horizon),
                       ("ppo.gamma", p.gamma)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    for key, value in (("ppo.kl_coef", p.kl_coef), ("ppo.missing_eos_penalty", p.missing_eos_penalty)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    if p.gamma > 1:
        fail("ppo.gamma", f"must be in (0, 1], got {p.gamma}")
    if not 0 <= p.lam <= 1:
        fail("ppo.lam", f"must be in [0, 1], got {p.lam}")
    if p.kl_target is not None and p.kl_target <= 0:
        fail("ppo.kl_target", f"must be > 0 (or null for a fixed β), got {p.kl_target}")
    if p.critic_lr is not None and p.critic_lr <= 0:
        fail("ppo.critic_lr", f"must be > 0, got {p.critic_lr}")
    if p.critic_init == "reward" and p.reward.kind != "rm":
        fail("ppo.critic_init", f"`reward` needs ppo.reward.kind: rm (got {p.reward.kind}); use policy or auto")
    g = r.grpo
    for key, value in (("grpo.group_size", g.group_size - 1), ("grpo.rollout_prompts", g.rollout_prompts),
                       ("grpo.epochs", g.epochs), ("grpo.temperature", g.temperature), ("grpo.top_p", g.top_p),
                       ("grpo.max_new_tokens", g.max_new_tokens), ("grpo.clip_low", g.clip_low),
                       ("grpo.clip_high", g.clip_high)):
        if value <= 0:
            fail(key, "must be > 1 (a group compares responses)" if key == "grpo.group_size" else f"must be > 0, got {value}")
    if g.clip_low >= 1 or g.kl_coef < 0 or g.missing_eos_penalty < 0 or g.top_p > 1 or g.sft_weight < 0:
        fail("grpo", "expected clip_low < 1, kl_coef >= 0, missing_eos_penalty >= 0, top_p <= 1 and sft_weight >= 0")
    if len(r.optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in r.optim.betas):
        fail("optim.betas", f"expected two numbers in [0, 1), got {list(r.optim.betas)}")
    if r.deepspeed.config and not Path(r.deepspeed.config).is_file():
        fail("deepspeed.config", f"no such DeepSpeed JSON: {r.deepspeed.config}")
    if r.generate.temperature == 0 and r.generate.n != 1:
        fail("generate.n", "greedy decoding (generate.temperature: 0) gives one candidate; set generate.n: 1")
    for key, value in (("generate.n", r.generate.n), ("generate.batch_size", r.generate.batch_size),
                       ("generate.max_new_tokens", r.generate.max_new_tokens), ("judge.concurrency", r.judge.concurrency),
                       ("judge.batch_size", r.judge.batch_size)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
