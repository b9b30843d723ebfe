"""Read raw records from the sources users have, each tagged with where it came from (file:line).

JSONL is read line by line by prefopt itself so that a malformed line is reported as `file:7`; every other
format (JSON, Parquet, `save_to_disk` directories, hub ids) goes through `datasets`. Everything is an iterator,
so `streaming: true` never materialises the file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from prefopt.errors import UserError


class BadRows:
    """Bad-row policy: `error` stops at the first bad row with its location; `skip` counts rows per reason."""

    def __init__(self, policy: str = "error", source: str = ""):
        self.policy, self.source = policy, source
        self.counts: Counter[str] = Counter()

    def reject(self, where: str, reason: str, detail: str = "") -> None:
        """Handle one bad row: raise under `error`, count it under `skip`."""
        if self.policy == "error":
            hint = " (set data.on_bad_row: skip to drop such rows and count them)"
            raise UserError(f"{where}: {reason}{': ' + detail if detail else ''}{hint}")
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """E.g. `1 skipped (malformed JSON)` or `3 skipped (2 missing field, 1 malformed JSON)`."""
        if not self.counts:
            return "0 skipped"
        if len(self.counts) == 1:
            return f"{self.total} skipped ({next(iter(self.counts))})"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common())
        return f"{self.total} skipped ({parts})"

    def as_metrics(self, prefix: str = "data/skipped") -> dict[str, float]:
        """Counts as metrics: `data/skipped` plus one `data/skipped/<reason>` per reason."""
        out = {prefix: float(self.total)}
        out.update({f"{prefix}/{reason.replace(' ', '_')}": float(n) for reason, n in self.counts.items()})
        return out


def iter_records(spec: str, bad: BadRows, split: str = "train", streaming: bool = False) -> Iterator[tuple[str, Any]]:
    """Yield (location, record) pairs from a file, a `save_to_disk` directory or a hub dataset id."""
    path = Path(spec)
    if path.is_file() and path.suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(path, bad)
    elif path.is_file() and path.suffix == ".json":
        yield from _iter_json(path, bad)
    elif path.is_file() and path.suffix == ".parquet":
        yield from _iter_datasets(("parquet", {"data_files": str(path), "split": "train"}), spec, streaming)
    elif path.is_dir():
        yield from _iter_disk(path, split, spec)
    elif path.suffix in (".jsonl", ".json", ".parquet") or os.sep in spec and not _looks_like_hub_id(spec):
        raise UserError(f"{spec}: no such data file or directory")
    else:
        yield from _iter_datasets((spec, {"split": split}), spec, streaming)


def _looks_like_hub_id(spec: str) -> bool:
    return spec.count("/") == 1 and not spec.startswith((".", "/"))


def _iter_jsonl(path: Path, bad: BadRows) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue  # blank lines (a trailing newline) are not rows
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.reject(where, "malformed JSON", str(e))


def _iter_json(path: Path, bad: BadRows) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}:{getattr(e, 'lineno', '?')}: malformed JSON ({e}); the whole file is unreadable") from None
    if isinstance(data, dict):  # {"train": [...]} or {"data": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserError(f"{path}: expected a JSON list of records (or one key holding such a list)")
        data = lists[0]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield f"{path}[{i}]", rec


def _iter_disk(path: Path, split: str, spec: str) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise UserError(f"{spec}: a directory, but not one written by datasets' save_to_disk") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise UserError(f"{spec}: no split `{split}` (has {', '.join(ds)}); set data.split / data.eval_split")
        ds = ds[split]
    for i, rec in enumerate(ds):
        yield f"{spec}[{i}]", rec


def _iter_datasets(args: tuple, spec: str, streaming: bool) -> Iterator[tuple[str, Any]]:
    import datasets

    name, kwargs = args
    try:
        ds = datasets.load_dataset(name, streaming=streaming, **kwargs)
    except Exception as e:  # the hub and file loaders raise many types; all are the user's input problem here
        raise UserError(f"{spec}: cannot load dataset ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    for i, rec in enumerate(ds):
        yield f"{spec}[{i}]", rec
