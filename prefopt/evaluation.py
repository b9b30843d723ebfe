"""A run's evaluation: the eval set's loss and metrics, the dispersion probe, held-out accuracy, the data counts.

The eval set is scored by the step's own forward (prefopt/steps.py) under the objective's `eval_as`, so PPO and
GRPO runs get DPO's metrics on the same pairs. Every rank evaluates as many examples as the others (ZeRO-3's
gathers are collective), and the sums are reduced once.
"""

from __future__ import annotations

import torch

from prefopt import probe, toy
from prefopt.data.batching import cut_evenly, shard
from prefopt.metrics.preference import Meter
from prefopt.steps import StepContext, add_metrics, forward


class Evaluation:
    """What a run evaluates besides its training loss: the eval set, the probe set and the held-out prompts (each
    may be absent)."""

    def __init__(self, context: StepContext, train_data, eval_data, probe_set: list, heldout):
        self.context, self.train_data, self.eval_data = context, train_data, eval_data
        self.probe_set, self.heldout = probe_set, heldout

    def __call__(self) -> dict[str, float]:
        """Loss and metrics on the eval set (`eval/` prefix), the probe's `3d/unseen_logp`, held-out accuracy."""
        context, meter = self.context, Meter()
        objective, module = context.objective.evaluated_as, context.engine.module
        was_training = module.training
        module.eval()
        if self.eval_data is not None:
            train, items = context.recipe.train, list(self.eval_data)
            if context.recipe.eval.max_batches:  # the same examples in either batching
                items = items[:context.recipe.eval.max_batches * train.micro_batch_size * context.world]
            parts = shard(items, context.world, "drop")
            mine = cut_evenly(parts, context.collator.computed_tokens, train.micro_batch_size,
                              train.max_tokens_per_batch)[context.rank]
            with torch.no_grad():
                for examples in mine:
                    batch = context.collator(examples)
                    losses, policy, reference, sequences = forward(context, batch, objective, with_entropy=True)
                    add_metrics(meter, batch, objective, context.recipe, losses, policy, reference, sequences)
        if self.probe_set:
            meter.add({"3d/unseen_logp": self.unseen_logp()}, 1.0)
        if self.heldout is not None:
            meter.add(*self.heldout.sums(context.engine))
        if context.recipe.model.kind == "toy_mlp":
            meter.add(toy.toy_metrics(module), 1.0)
        module.train(was_training)
        out = meter.reduce()
        return {(k if k.startswith(("3d/unseen", "probs/")) else f"eval/{k}"): v for k, v in out.items()}

    def unseen_logp(self):
        """The probe's mean log-prob per token under the current policy (Property 3: dispersion)."""
        context = self.context
        return probe.unseen_logp(context.engine.module, self.probe_set, context.tokenizer.pad_token_id,
                                 context.recipe.train.micro_batch_size)

    def data_metrics(self) -> dict[str, float]:
        """Rows kept, skipped per reason and truncated, for the train (`data/*`) and eval (`eval/data/*`) sets."""
        out = self.train_data.as_metrics("data")
        if self.eval_data is not None:
            out.update(self.eval_data.as_metrics("eval/data"))
        return out
