"""Tokenized data for a run, and the resumable stream of per-rank micro-batches.

The stream is an endless concatenation of epochs (each shuffled with `seed + epoch`), cut into global batches
of `micro * accum * world` examples; rank r takes its contiguous slice of each. Its position, `{epoch, offset}`,
is saved in checkpoints, so a resumed run sees exactly the examples an uninterrupted run would, for streaming
data as well (the stream is re-read and the consumed part skipped).
"""

from __future__ import annotations

import itertools
import random
from typing import Iterator

import torch

from prefopt.data.batching import cut, cut_evenly, shard
from prefopt.data.collate import Collator
from prefopt.data.sources import BadRows, iter_records
from prefopt.data.tokenize import LoadStats, iter_examples
from prefopt.errors import UserError
from prefopt.schema import DataConfig


class TokenizedData:
    """One data source, tokenized: a list in memory, or a re-readable stream when `streaming` is on."""

    def __init__(self, spec: str, kind: str, tokenizer, cfg: DataConfig, split: str):
        """`spec`: a path or hub id (a `builtin:` name is resolved by the caller: prefopt/builtin.py)."""
        self.spec, self.kind, self.tok, self.cfg, self.split = spec, kind, tokenizer, cfg, split
        self.bad, self.stats = BadRows(cfg.on_bad_row), LoadStats()
        self.streaming = cfg.streaming
        self._passes = 0
        self.ref_table: dict | None = None  # idx -> precomputed reference log-probs, attached as rows are read
        self.items = None if self.streaming else list(self._read())
        if self.items is not None and not self.items:
            raise UserError(f"{spec}: no usable rows ({self.bad.summary()})")

    def _read(self) -> Iterator[dict]:
        # Bad rows and truncation are counted on the first pass only, so streaming epochs do not double count.
        first = self._passes == 0
        self._passes += 1
        bad = self.bad if first else BadRows("skip")
        stats = self.stats if first else LoadStats()
        records = iter_records(self.spec, bad, self.split, self.streaming)
        for ex in iter_examples(records, self.kind, self.tok, self.cfg, bad, stats):
            if self.ref_table is not None:
                ex["ref_logps"] = self.ref_table[ex["idx"]]
            yield ex

    def attach_reference(self, table: dict) -> None:
        """Give every example its precomputed reference log-probs (streamed rows get them as they are read)."""
        self.ref_table = table
        for ex in self.items or []:
            ex["ref_logps"] = table[ex["idx"]]

    def __iter__(self) -> Iterator[dict]:
        """One pass in file order."""
        return iter(self.items) if self.items is not None else self._read()

    def head(self, n: int) -> list[dict]:
        """The first `n` examples, not counted: a stream's counts stay those of its training pass."""
        if self.items is not None:
            return self.items[:n]
        quiet = BadRows("skip")
        records = iter_records(self.spec, quiet, self.split, self.streaming)
        return list(itertools.islice(iter_examples(records, self.kind, self.tok, self.cfg, quiet, LoadStats()), n))

    def __len__(self) -> int:
        if self.items is None:
            raise TypeError("streaming data has no length")
        return len(self.items)

    def __bool__(self) -> bool:  # a source is never "empty" in a test of `data or other` (streams have no len)
        return True

    def report(self) -> str:
        """One line for the console: rows kept (by record shape), skipped per reason, truncated, notes."""
        kept = f"{len(self.items)} rows" if self.items is not None else "streaming (counts so far)"
        return f"{self.spec}: {kept}, {self.bad.summary()}; {self.stats.summary()}"

    def as_metrics(self, prefix: str = "data") -> dict[str, float]:
        """Rows kept, skipped per reason and truncated, for metrics.jsonl and W&B (streaming: so far)."""
        return {**self.stats.as_metrics(prefix), **self.bad.as_metrics(f"{prefix}/skipped")}

    def epoch(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[dict]:
        """The examples of one epoch in training order."""
        if self.items is not None:
            if not shuffle:
                return iter(self.items)
            g = torch.Generator().manual_seed(seed + epoch)
            return (self.items[i] for i in torch.randperm(len(self.items), generator=g).tolist())
        return _buffer_shuffle(self._read(), random.Random(seed + epoch), buffer) if shuffle else self._read()


def _buffer_shuffle(it: Iterator[dict], rng: random.Random, size: int) -> Iterator[dict]:
    buf: list[dict] = []
    for ex in it:
        buf.append(ex)
        if len(buf) >= size:
            j = rng.randrange(len(buf))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


class BatchStream:
    """Yields, per optimizer step, this rank's collated micro-batches (`accum` of `micro` examples, or with
    `max_tokens` as many as the token budget needs; prefopt/data/batching.py); `state` is the resume point."""

    def __init__(self, data: TokenizedData, collate: Collator, micro: int, accum: int, world: int, rank: int,
                 seed: int, shuffle: bool = True, buffer: int = 1000, state: dict | None = None, max_tokens: int = 0):
        self.data, self.collate, self.max_tokens = data, collate, max_tokens
        self.micro, self.accum, self.world, self.rank = micro, accum, world, rank
        self.seed, self.shuffle, self.buffer = seed, shuffle, buffer
        self.state = dict(state or {"epoch": 0, "offset": 0})

    @property
    def global_batch(self) -> int:
        return self.micro * self.accum * self.world

    def _examples(self) -> Iterator[tuple[dict, int, int]]:
        epoch, skip = self.state["epoch"], self.state["offset"]
        while True:
            n = 0
            for n, ex in enumerate(self.data.epoch(epoch, self.seed, self.shuffle, self.buffer), 1):
                if n > skip:
                    yield ex, epoch, n
            if n == 0:
                raise UserError(f"{self.data.spec}: no usable rows ({self.data.bad.summary()})")
            epoch, skip = epoch + 1, 0

    def __iter__(self) -> Iterator[list[dict]]:
        stream = self._examples()
        while True:
            batch = []
            for _ in range(self.global_batch):
                ex, epoch, n = next(stream)
                batch.append(ex)
            slices = shard(batch, self.world, "exact")
            self.state = {"epoch": epoch, "offset": n}
            if self.max_tokens:  # every rank cuts every slice, so all agree on the number of forwards
                mine = cut_evenly(slices, self.collate.computed_tokens, self.micro, self.max_tokens)[self.rank]
            else:  # `collate` may be any callable here (PPO's prompt chunks: `list`)
                mine = cut(slices[self.rank], len, self.micro)
            yield [self.collate(examples) for examples in mine]
