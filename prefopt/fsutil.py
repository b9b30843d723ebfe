"""Atomic file writes: every file a reader may see half-written goes through here."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary sibling, then rename it over `path`: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def replace_dir(out: str | Path, write) -> Path:
    """Fill a temporary sibling of directory `out` with `write(tmp)`, then rename it onto `out`."""
    import shutil

    out = Path(out)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


@contextmanager
def locked(path: str | Path):
    """An exclusive file lock for one builder among ranks and parallel jobs (the others wait, then reuse)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
