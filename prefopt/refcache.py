"""Precomputed reference log-probs: one pass before training, cached on disk, reused by later runs (β sweeps).

The cache key hashes the reference model's files, the data file (size, mtime, path), every setting that changes
tokenization and the version of prefopt's tokenization rules, so a changed input gets a new key; the file also
stores its key and that version, checked on load, so a stale or mismatched cache (one from before a rule change,
e.g. the double EOS of prefopt <= 0.1) is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist

from prefopt import lora
from prefopt.cache import cache_dir as default_cache_dir
from prefopt.data.batching import cut_evenly, shard
from prefopt.data.collate import Collator
from prefopt.data.tokenize import TOKENIZATION_VERSION
from prefopt.logprobs import sequence_logps, to_device
from prefopt.schema import Recipe


def attach(recipe: Recipe, reference, ref_path: str | None, sets: list, collator: Collator, note) -> None:
    """Give every example of each data set its reference log-probs, precomputed or from the cache
    (`train.ref_cache_dir`, by default under the prefopt cache); the live reference is not needed after."""
    where = Path(recipe.train.ref_cache_dir or default_cache_dir() / "ref_logps")
    for data in sets:
        key = cache_key(recipe, ref_path, data.spec)
        with lora.as_reference(reference) as model:
            data.attach_reference(precompute(recipe, model, data, key, where, collator, note))


def _fingerprint(path: str | None) -> list:
    if not path:
        return []
    p = Path(path)
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


def cache_key(recipe: Recipe, ref_path: str | None, data_path: str) -> str:
    """Hash of everything that determines the reference's log-probs for this data."""
    d, m = recipe.data, recipe.model
    blob = {"model": _fingerprint(ref_path) or ref_path, "kind": m.kind, "toy": vars(m.toy) if m.kind == "toy_mlp" else 0,
            "seed": recipe.train.seed if m.kind == "toy_mlp" else 0, "data": _fingerprint(data_path) or data_path,
            "split": d.split, "max_length": d.max_length, "max_prompt_length": d.max_prompt_length,
            "fields": vars(d.fields), "on_bad_row": d.on_bad_row, "tokenizer": _fingerprint(m.tokenizer),
            "infer_prompt": d.infer_prompt, "assistant_marker": d.assistant_marker, "chat_roles": d.chat_roles,
            "tokenization": TOKENIZATION_VERSION, "lora": vars(recipe.lora) if recipe.lora.rank else None}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]


def precompute(recipe: Recipe, ref, data, key: str, cache_dir: Path, collate: Collator, note) -> dict[int, list[float]]:
    """idx -> [ref log π(y_w), ref log π(y_l)], from the cache when its key matches, else computed and saved.

    `collate` is the run's own collator, so the pass computes what training does (packed: no padding). The layouts
    agree to 1e-5 in fp32 (tests/test_logprobs.py), so the cache does not depend on the layout that wrote it."""
    path = cache_dir / f"ref-{key}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        if blob.get("key") == key and blob.get("tokenization") == TOKENIZATION_VERSION:
            note(f"reference log-probs: reusing {path}")
            return {int(i): v for i, v in zip(blob["idx"].tolist(), blob["logps"].tolist())}
        note(f"reference log-probs: {path} does not match this run; rebuilding")
    rank, world = dist.get_rank(), dist.get_world_size()
    out_idx, out_lp = [], []
    items = list(data)
    # Equal slices, so every rank runs as many forwards (ZeRO-3 gathers are collective); the fillers are not kept.
    slices = shard(items, world, "pad", filler={**items[0], "filler": True})
    dev = next(ref.parameters()).device
    t = recipe.train
    with torch.no_grad():
        for chunk in cut_evenly(slices, collate.computed_tokens, t.micro_batch_size, t.max_tokens_per_batch)[rank]:
            b = collate(chunk)
            lp = sequence_logps(ref, to_device(b, dev)).logps.float().cpu()
            keep = torch.tensor([not ex.get("filler") for ex in chunk])
            out_idx.append(b.idx[keep])
            out_lp.append(torch.stack(b.split_rows(lp), dim=1)[keep])
    idx = torch.cat(out_idx) if out_idx else torch.zeros(0, dtype=torch.long)
    lps = torch.cat(out_lp) if out_lp else torch.zeros(0, 2)
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, (idx, lps))
        idx, lps = torch.cat([g[0] for g in gathered]), torch.cat([g[1] for g in gathered])
    if rank == 0:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"key": key, "tokenization": TOKENIZATION_VERSION, "idx": idx, "logps": lps}, tmp)
        os.replace(tmp, path)
        note(f"reference log-probs: computed {len(idx)} pairs -> {path}")
    return {int(i): v for i, v in zip(idx.tolist(), lps.tolist())}
