"""`builtin:` names in recipes: the tiny model and the arithmetic data, built locally on first use.

`model.path: builtin:tiny` builds a tiny HF directory under the cache (in a folder keyed by the generators' source, so
an upgrade never reads what an older version wrote) and returns its path; `data.train:
builtin:arith/pairs/train` writes a JSONL there (`.../train/N/SEED` for N records drawn with another seed,
`.../test/all` for every problem of the split once);
`builtin:arith-base` is the embedded task's SFT model (prefopt/tasks/bases.py), `builtin:smollm2-135m-instruct` a real
pretrained chat model (prefopt/gguf.py, which also turns a `.gguf` file into a cached HF directory). All are then read
by the ordinary code paths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from prefopt import cache
from prefopt.cache import cache_dir
from prefopt.errors import UserError
from prefopt.fsutil import write_atomic

PREFIX = "builtin:"
DATA_SIZES = {"train": 2000, "valid": 200, "test": 200}


# Every recipe key that may name a model or a data set, by section: what `resolved` turns into real paths.
PATH_KEYS = {"model": ("path", "ref_path", "tokenizer"), "data": ("train", "eval"), "eval": ("prompts", "probe"),
             "judge": ("rm_path",)}
REWARD_SECTIONS = ("ppo", "grpo")  # their `reward.path`


def resolved(recipe, sections=None):
    """The recipe with every `builtin:` name and `.gguf` file among its paths replaced by a real path (built on
    first use). A command calls this once, as it starts; everything below it reads plain paths. The run directory
    keeps the recipe as written. `sections` limits it to the ones a command reads (`judge` reads no policy model,
    and building a builtin base for nothing takes minutes)."""
    changes = {}
    for section, keys in PATH_KEYS.items():
        if sections is not None and section not in sections:
            continue
        part = getattr(recipe, section)
        changes[section] = dataclasses.replace(part, **{key: resolve(getattr(part, key)) for key in keys})
    for section in REWARD_SECTIONS:
        if sections is not None and section not in sections:
            continue
        part = getattr(recipe, section)
        changes[section] = dataclasses.replace(part, reward=dataclasses.replace(part.reward,
                                                                                path=resolve(part.reward.path)))
    return dataclasses.replace(recipe, **changes)


def resolve(spec: str | None) -> str | None:
    """Return a real path for a `builtin:` spec or a `.gguf` file (building it if needed); others pass through."""
    if spec and spec.endswith(".gguf"):
        from prefopt import gguf

        return gguf.converted(spec, cache_dir())
    if not spec or not spec.startswith(PREFIX):
        return spec
    name = spec[len(PREFIX):]
    if name == "smollm2-135m-instruct":
        from prefopt import gguf

        return gguf.smollm2(cache_dir())
    if name == "tiny":
        path = source_dir() / "tiny-model"
        if not (path / "config.json").exists():
            from prefopt.tasks import arith
            from prefopt.tiny import build_tiny

            build_tiny(path, arith.corpus())
        return str(path)
    if name == "toy/pairs":
        from prefopt import toy

        return _write_jsonl(source_dir() / "toy-pairs.jsonl", toy.pairs)
    parts = name.split("/")
    if parts[0] in ("arith-base", "arith-weak"):
        from prefopt.tasks import bases

        return bases.resolve(parts[0], parts[1:], cache_dir())
    if 3 <= len(parts) <= 5 and parts[0] in ("arith", "arith-chat") and parts[2] in DATA_SIZES:
        from prefopt.tasks import arith, chat

        if parts[1] not in ("sft", "pairs", "unpaired", "prompts"):
            raise UserError(f"{spec}: unknown arith kind `{parts[1]}` (sft, pairs, unpaired, prompts)")
        every = len(parts) > 3 and parts[3] == "all"  # each problem of the split once (arith.every_problem)
        if not all(p.isdigit() for p in parts[3 + every:]) or (len(parts) > 3 and not every and int(parts[3]) == 0):
            raise UserError(f"{spec}: expected builtin:arith/KIND/SPLIT[/N[/SEED]] with N > 0 or `all`, and "
                            "SEED >= 0")
        count = None if every else int(parts[3]) if len(parts) > 3 else DATA_SIZES[parts[2]]
        seed = int(parts[4]) if len(parts) > 4 else 0
        form = (lambda row: row) if parts[0] == "arith" else chat.to_chat
        rows = lambda: [form(row) for row in arith.records(parts[1], parts[2], count, seed)]
        suffix = "" if len(parts) == 3 else f"-{parts[3]}-s{seed}"
        if parts[0] == "arith-chat":  # its own key: a change to the chat form never meets an older file
            suffix += "-" + hashlib.sha256(Path(chat.__file__).read_bytes()).hexdigest()[:8]
        return _write_jsonl(source_dir() / f"{parts[0]}-{parts[1]}-{parts[2]}{suffix}.jsonl", rows)
    raise UserError(f"{spec}: unknown builtin (available: builtin:tiny, builtin:smollm2-135m-instruct, builtin:toy/pairs, "
                    "builtin:arith[-chat]/{sft,pairs,unpaired,prompts}/{train,valid,test}[/N|all[/SEED]], "
                    "builtin:arith-base[/SEED[/STEPS[/PROBLEMS]]], builtin:arith-weak[/SEED[/STEPS[/PROBLEMS]]])")


def source_dir() -> Path:
    """Where this version of the generators keeps what it built (keyed by their sources: prefopt/cache.py)."""
    from prefopt.tasks import bases

    return cache.source_dir(bases.GENERATORS)


def _write_jsonl(path: Path, rows) -> str:
    """Write rows() to `path` once, atomically (several ranks may race; all write the same bytes)."""
    if not path.exists():
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows()))
    return str(path)
