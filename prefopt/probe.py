"""The dispersion probe (Property 3): responses that are not in the training data, scored by the policy.

By default they are sampled from the reference (the starting policy) for held-out prompts before training, so a
rising `3d/unseen_logp` means probability moving onto responses the data never showed. A JSONL file of
{prompt, response} records can be given instead (`eval.probe`); the toy uses its exact unseen responses.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from prefopt import toy
from prefopt.data.collate import Collator
from prefopt.data.sources import BadRows
from prefopt.data.tokenize import LoadStats, encode_prompt, iter_examples, stop_ids
from prefopt.errors import UserError
from prefopt.logprobs import sequence_logps, to_device
from prefopt.sampling import sample
from prefopt.schema import FieldsConfig, Recipe


def build_probe(recipe: Recipe, tokenizer, model, prompts: list, seed: int) -> list[dict]:
    """Tokenized probe examples (prompt_ids, completion_ids) from the file, the toy, or reference samples."""
    e = recipe.eval
    if recipe.model.kind == "toy_mlp":
        rows = toy.unseen_probe()
    elif e.probe:
        path = Path(e.probe)
        if not path.is_file():
            raise UserError(f"eval.probe: no such file {path}")
        rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    else:
        rows = _sample(model, tokenizer, prompts[: e.probe_size], e.probe_max_new_tokens, seed)
    records = ((f"{e.probe or 'probe'}[{i}]", {"prompt": r["prompt"], "completion": r["response"]})
               for i, r in enumerate(rows))
    cfg = dataclasses.replace(recipe.data, fields=FieldsConfig())  # the probe's own {prompt, completion} names
    return list(iter_examples(records, "sft", tokenizer, cfg, BadRows("skip"), LoadStats()))


@torch.no_grad()
def _sample(model, tokenizer, prompts: list, max_new_tokens: int, seed: int) -> list[dict]:
    """One sample per prompt from the model, with a fixed seed (identical on every rank)."""
    if not prompts:
        return []
    out = sample(model, [encode_prompt(p, tokenizer) for p in prompts], pad_id=tokenizer.pad_token_id,
                 stop_ids=stop_ids(tokenizer), max_new_tokens=max_new_tokens, seed=seed)
    texts = tokenizer.batch_decode(out, skip_special_tokens=True)
    return [{"prompt": p, "response": t} for p, t in zip(prompts, texts) if t.strip()]


@torch.no_grad()
def unseen_logp(model, probe: list[dict], pad_id: int, batch_size: int) -> torch.Tensor:
    """Per-token log-prob of the probe responses under `model` (a device tensor; no host sync)."""
    dev = next(model.parameters()).device
    total, count = torch.zeros((), device=dev), 0.0
    collate = Collator(pad_id)
    for i in range(0, len(probe), batch_size):
        b = collate(probe[i:i + batch_size])
        s = sequence_logps(model, to_device(b, dev))
        total = total + s.logps.sum()
        count += float(b.completion_mask[:, 1:].sum())
    return total / max(count, 1.0)
