"""Where prefopt keeps what it builds once (builtins, bases, converted GGUF models, reference log-probs), and the
key that keeps a changed generator from reading what an older one wrote."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prefopt.data.tokenize import TOKENIZATION_VERSION


def cache_dir() -> Path:
    """Where builtins (and reference-log-prob caches by default) live: $PREFOPT_CACHE or ~/.cache/prefopt."""
    return Path(os.environ.get("PREFOPT_CACHE", Path.home() / ".cache" / "prefopt"))


def generators_key(generators) -> str:
    """Hash of what makes the builtins: the source of each generator module (prefopt/tasks/bases.py's GENERATORS:
    tiny, toy, arith) and the tokenization version."""
    blob = [TOKENIZATION_VERSION, *(Path(module.__file__).read_text() for module in generators)]
    return hashlib.sha256(repr(blob).encode()).hexdigest()[:12]


def source_dir(generators) -> Path:
    """The cache folder for builtins made by this version of their generators: a change to them never meets files
    an older version wrote."""
    return cache_dir() / f"builtin-{generators_key(generators)}"
