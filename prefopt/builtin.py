"""`builtin:` names in recipes: the tiny model and the arithmetic data, built locally on first use.

`model.path: builtin:tiny` builds a tiny HF directory under the cache and returns its path; `data.train:
builtin:arith/pairs/train` writes a JSONL there. Both are then read by the ordinary code paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from prefopt.errors import UserError
from prefopt.fsutil import write_atomic

PREFIX = "builtin:"
DATA_SIZES = {"train": 2000, "test": 200}


def cache_dir() -> Path:
    """Where builtins (and reference-log-prob caches by default) live: $PREFOPT_CACHE or ~/.cache/prefopt."""
    return Path(os.environ.get("PREFOPT_CACHE", Path.home() / ".cache" / "prefopt"))


def resolve(spec: str | None) -> str | None:
    """Return a real path for a `builtin:` spec (building it if needed); other specs pass through."""
    if not spec or not spec.startswith(PREFIX):
        return spec
    name = spec[len(PREFIX):]
    if name == "tiny":
        path = cache_dir() / "tiny-model"
        if not (path / "config.json").exists():
            from prefopt.tiny import build_tiny

            build_tiny(path)
        return str(path)
    if name == "toy/pairs":
        from prefopt import toy

        return _write_jsonl(cache_dir() / "toy-pairs.jsonl", toy.pairs)
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "arith" and parts[2] in DATA_SIZES:
        from prefopt.tasks import arith

        if parts[1] not in ("sft", "pairs", "unpaired", "prompts"):
            raise UserError(f"{spec}: unknown arith kind `{parts[1]}` (sft, pairs, unpaired, prompts)")
        rows = lambda: arith.records(parts[1], parts[2], DATA_SIZES[parts[2]])
        return _write_jsonl(cache_dir() / f"arith-{parts[1]}-{parts[2]}.jsonl", rows)
    raise UserError(f"{spec}: unknown builtin (available: builtin:tiny, builtin:toy/pairs, "
                    "builtin:arith/{sft,pairs,unpaired,prompts}/{train,test})")


def _write_jsonl(path: Path, rows) -> str:
    """Write rows() to `path` once, atomically (several ranks may race; all write the same bytes)."""
    if not path.exists():
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows()))
    return str(path)
