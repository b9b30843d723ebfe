"""The named set-up steps of a training run, in the order the loop calls them: the data, the step count, the
reference, the layout check, the probe. Each takes what it needs and returns its part; none holds state.
"""

from __future__ import annotations

import torch

from prefopt import attention, lora, models, probe
from prefopt.data.batching import cut
from prefopt.data.collate import Collator
from prefopt.data.loader import TokenizedData
from prefopt.engine import build_frozen
from prefopt.errors import UserError
from prefopt.logprobs import sequence_logps, sequence_scores, to_device
from prefopt.objectives import NEEDS_SCORES, Objective
from prefopt.schema import Recipe


def load_data(recipe: Recipe, objective: Objective, tokenizer) -> tuple[TokenizedData, TokenizedData | None]:
    """The train set and the eval set (None without `data.eval`), each tokenized as its objective reads it."""
    data = recipe.data
    if not data.train:
        raise UserError("data.train: required (a JSONL/JSON/Parquet path, a save_to_disk dir or a hub id)")
    train = TokenizedData(data.train, objective.data_kind, tokenizer, data, data.split)
    evaluated = TokenizedData(data.eval, objective.evaluated_as.data_kind, tokenizer, data, data.eval_split) \
        if data.eval else None
    if objective.needs_scores:  # fail before loading a model, naming the set
        for key, dataset in (("data.train", train), ("data.eval", evaluated)):
            first = dataset.head(1) if dataset is not None else []
            if first and "score_chosen" not in first[0]:
                raise UserError(f"{key}: the first pair has no scores; {NEEDS_SCORES}")
    return train, evaluated


def total_steps(recipe: Recipe, train_data: TokenizedData, global_batch: int) -> int:
    """`train.max_steps`, or the epochs over the train set in global batches of `global_batch` rows."""
    train = recipe.train
    if train.max_steps:
        return train.max_steps
    if train_data.streaming:
        raise UserError("train.max_steps: required with data.streaming (the stream has no known length)")
    steps = train.epochs * len(train_data) // global_batch
    if steps < 1:
        raise UserError(f"train.micro_batch_size: one global batch ({global_batch}) needs more rows than "
                        f"{recipe.data.train} has")
    return steps


def reference_of(recipe: Recipe, objective: Objective, policy, world: int):
    """The frozen reference, or None when the objective needs none; a LoRA policy is its own (adapters off, through
    lora.as_reference), so no second copy of the weights exists."""
    if not objective.needs_reference:
        return None
    if lora.enabled(recipe):
        return policy
    return build_frozen(models.load_reference(recipe, policy, world), recipe, world)


def layout_of(recipe: Recipe) -> str:
    """`train.layout` resolved: packed wherever the attention takes sequence bounds (prefopt's variable-length
    attention, flash attention), padded for the toy, remote code and other attention backends."""
    wanted = recipe.train.layout
    if recipe.model.kind == "toy_mlp":
        if wanted in ("packed", "shared_prompt"):
            raise UserError(f"train.layout: {wanted} needs a transformers model, not model.kind: toy_mlp")
        return "padded"
    impl = models.attn_implementation(recipe) or ""
    if wanted == "shared_prompt" and impl != attention.NAME:  # only prefopt's attention gathers a block's keys
        raise UserError(f"train.layout: shared_prompt needs model.attn_implementation: {attention.NAME} (the default), "
                        f"not {impl or 'this model'}'s; use train.layout: packed")
    if wanted != "auto":
        return wanted
    return "packed" if impl == attention.NAME or impl.startswith("flash_attention") else "padded"


def check_packing(recipe: Recipe, objective: Objective, engine, train_data, collator: Collator, device) -> str:
    """Score the first micro-batch in both layouts: packing must not change a single sequence's result; the line
    that says which layout runs.

    Guards against a model whose attention ignores sequence bounds (remote code, an attention backend that
    does not take them), which would silently attend across sequences.
    """
    train = recipe.train
    examples = train_data.head(train.micro_batch_size)
    if not examples or objective.data_kind == "prompt":
        return f"layout: padded rollouts ({objective.name}); packed eval batches"
    examples = cut(examples, collator.computed_tokens, train.micro_batch_size, train.max_tokens_per_batch)[0]
    module, padded = engine.module, Collator(collator.pad_id)
    score = (lambda batch: sequence_scores(module, batch)) if objective.head == "score" else \
        (lambda batch: sequence_logps(module, batch).logps)
    was_training = module.training
    module.eval()
    with torch.no_grad():
        as_padded, as_laid_out = (score(to_device(c(examples), device)).float() for c in (padded, collator))
    module.train(was_training)
    gap, impl = float((as_padded - as_laid_out).abs().max()), models.attn_implementation(recipe) or "default"
    if gap > 1e-3 * (1 + float(as_padded.abs().max())):
        raise UserError(f"train.layout: {collator.layout} sequences score differently from padded ones (max gap "
                        f"{gap:.3g}); this model's attention ({impl}) does not keep packed sequences apart: "
                        "use train.layout: padded")
    shared = ", each pair's prompt computed once" if collator.layout == "shared_prompt" else ""
    return f"layout: {collator.layout} (one row per micro-batch, no padding{shared}; attention: {impl}; " \
           f"checked on the first batch: max gap {gap:.1e})"


def probe_set(recipe: Recipe, tokenizer, source: TokenizedData, reference, policy) -> list[dict]:
    """The dispersion probe's examples: responses sampled from the starting policy for the first prompts of
    `source` (the eval set, else the train set), or the probe file's."""
    prompts = [tokenizer.decode(ex["prompt_ids"], skip_special_tokens=True) for ex in source.head(recipe.eval.probe_size)]
    with lora.as_reference(reference if reference is not None else policy) as model:
        return probe.build_probe(recipe, tokenizer, model, prompts, recipe.train.seed)
