"""The step of the offline objectives (sft, dpo, ipo, slic, kto, rm): one optimizer update on one global batch.

A step object is what an objective supplies to the one loop (prefopt/loop.py): `start` (the data stream from a
resume point), `run` (one update, adding its metrics to the meter), `data_state` and `state_dict` (what a
checkpoint keeps), and `engines` (trainable engines besides the policy's, checkpointed with it). It is built from a
`StepContext` (what it may use), never from the loop itself. PPO's and GRPO's are in prefopt/ppo.py and grpo.py.

`forward` and `add_metrics` are the offline objectives' forward pass and metrics, used by the step and by the
loop's evaluation alike, so that a training batch and an eval batch are scored by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from prefopt import lora
from prefopt.data.batch import Batch
from prefopt.data.collate import Collator
from prefopt.data.loader import BatchStream, TokenizedData
from prefopt.engine import begin_micro_step
from prefopt.logprobs import SeqLogps, sequence_logps, sequence_scores, to_device
from prefopt.metrics.preference import Meter, batch_sums, side_sums
from prefopt.metrics.three_d import logp_grads
from prefopt.objectives import Objective, Terms
from prefopt.schema import Recipe


@dataclass
class StepContext:
    """What a step works with: the run's recipe and objective, the policy's engine, the frozen reference (None when
    the objective needs none or its log-probs were precomputed; a LoRA policy is its own), the tokenizer and
    collator, the training data, and this process's place among the ranks."""

    recipe: Recipe
    objective: Objective
    engine: Any  # the policy's DeepSpeed engine
    reference: Any
    tokenizer: Any
    collator: Collator
    train_data: TokenizedData
    device: torch.device
    rank: int
    world: int
    run_dir: Path
    total_steps: int


def forward(context: StepContext, batch: Batch, objective: Objective, with_entropy: bool):
    """Per-example losses and the Terms they came from, for one micro-batch (chosen ‖ rejected rows): (losses,
    policy Terms, reference Terms or None, the policy's SeqLogps or None for a score head)."""
    on_device = to_device(batch, context.device)
    model = context.engine.module  # ZeRO-3's gather hooks live on the module's submodules, so this is safe
    if objective.head == "score":
        scores = sequence_scores(model, on_device)
        policy, sequences = Terms(*on_device.split_rows(scores)), None
    else:
        sequences = sequence_logps(model, on_device, with_entropy=with_entropy)
        policy = terms_of(sequences.logps, sequences.tokens, on_device)
    reference = None
    if objective.needs_reference:
        if on_device.ref_logps is not None:  # precomputed (refcache.py)
            reference_logps = on_device.ref_logps
        else:
            with torch.no_grad(), lora.as_reference(context.reference) as reference_model:
                reference_logps = sequence_logps(reference_model, on_device).logps
        reference = terms_of(reference_logps, sequences.tokens, on_device)
    return objective.loss(policy, reference, context.recipe.loss), policy, reference, sequences


def add_metrics(meter: Meter, batch: Batch, objective: Objective, recipe: Recipe, losses, policy: Terms,
                reference: Terms | None, sequences: SeqLogps | None) -> None:
    """Add a micro-batch's sums; counts come from host tensors, so nothing here waits for the device."""
    meter.add(batch_sums(objective, policy, reference, recipe.loss, losses), float(len(batch.idx)))
    if policy.labels is not None:  # unpaired: desirable and undesirable rows, each averaged over its own count
        for sums, mask in zip(side_sums(objective, policy, reference, recipe.loss), (batch.labels, ~batch.labels)):
            meter.add(sums, float(mask.sum()))
    if sequences is not None and sequences.entropy is not None:
        meter.add({"3d/entropy": sequences.entropy.sum()}, float(batch.completion_mask[:, 1:].sum()))


def terms_of(values: torch.Tensor, tokens: torch.Tensor, batch: Batch) -> Terms:
    """Per-row values -> Terms, as the collator laid the rows out (prefopt/data/batch.py)."""
    if batch.rows == "single":  # SFT rows
        return Terms(values, None, tokens, None)
    (first, second), (first_tokens, second_tokens) = batch.split_rows(values), batch.split_rows(tokens)
    if batch.rows == "unpaired":  # own completions, then the KL rows
        return Terms(first, None, first_tokens, None, labels=batch.labels, kl=second)
    return Terms(first, second, first_tokens, second_tokens, score_margin=batch.score_margin)


class Step:
    """The loop's side of every step (see the module docstring), for a step that keeps no state of its own beyond
    its position in `self.stream` and no engines besides the policy's."""

    engines: dict = {}

    @property
    def data_state(self) -> dict:
        return self.stream.state

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PairStep(Step):
    """Forward, loss and backward over the step's micro-batches (`train.grad_accum` of them, or as many as
    `train.max_tokens_per_batch` needs), then one optimizer step."""

    @staticmethod
    def global_batch(recipe, world: int) -> int:
        return recipe.train.micro_batch_size * recipe.train.grad_accum * world

    @staticmethod
    def optimizer_steps(recipe, world: int) -> int:
        return 1

    def __init__(self, context: StepContext):
        self.context = context

    def start(self, data_state: dict | None) -> None:
        context, train = self.context, self.context.recipe.train
        self.stream = BatchStream(context.train_data, context.collator, train.micro_batch_size, train.grad_accum,
                                  context.world, context.rank, train.seed, context.recipe.data.shuffle,
                                  context.recipe.data.shuffle_buffer, data_state, train.max_tokens_per_batch)
        self.batches = iter(self.stream)

    def run(self, step: int, meter, log_now: bool) -> float:
        """One optimizer update; returns the tokens this rank computed (padding excluded)."""
        context, engine, objective = self.context, self.context.engine, self.context.objective
        every = context.recipe.log.grad_split_every
        split_now = every and (step + 1) % every == 0 and objective.has_logps and objective.pairwise
        micro_batches, tokens = next(self.batches), 0.0
        # The step's loss is the mean over this rank's examples (DeepSpeed then averages the ranks): each
        # micro-batch contributes its sum over that count, whatever its size, and we, not DeepSpeed's micro-step
        # counter, say which backward closes the step (a token budget gives a varying number of micro-batches).
        examples = sum(len(batch.idx) for batch in micro_batches)
        meter.add({"perf/forwards": torch.tensor(float(len(micro_batches)))}, 1.0)
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            engine.set_gradient_accumulation_boundary(last)
            real = float(batch.tokens)  # a host count: nothing in a step waits on the device (tests/test_sync.py)
            # tokens/s counts every sequence's tokens: a shared prompt (layout shared_prompt), computed once,
            # still counts for both sides, as in the other layouts (and in TRL's count)
            tokens += real + batch.shared_tokens
            # padded tokens computed per real token: the cost of the layout
            meter.add({"perf/padding": torch.tensor((batch.input_ids.numel() - real) / max(real, 1.0))}, 1.0)
            begin_micro_step(engine)
            losses, policy, reference, sequences = forward(context, batch, objective, with_entropy=log_now)
            if split_now and i == 0:
                meter.add(self._grad_split(policy, reference), 1.0)
            add_metrics(meter, batch, objective, context.recipe, losses, policy, reference, sequences)
            engine.backward(losses.sum() / examples, scale_wrt_gas=False)
            if log_now and last and engine.zero_optimization_stage() == 0:
                meter.add({"grad_norm": _grad_norm(engine.module)}, 1.0)  # DeepSpeed drops it at stage 0
            engine.step()
        return tokens

    def _grad_split(self, policy: Terms, reference: Terms | None) -> dict[str, torch.Tensor]:
        """True parameter-gradient norms of the chosen and of the rejected term (two extra backward passes).

        A diagnostic every `log.grad_split_every` steps: it holds one full gradient (gathered under ZeRO-3) and
        all-reduces it across ranks, so the norm is that of the global micro-batch, independent of sharding.
        """
        context = self.context
        grad_chosen, grad_rejected = logp_grads(context.objective, policy, reference, context.recipe.loss)
        params = [p for p in context.engine.module.parameters() if p.requires_grad]
        out = {}
        for name, grad, logps in (("chosen", grad_chosen, policy.chosen), ("rejected", grad_rejected, policy.rejected)):
            surrogate = (grad.detach().to(logps.dtype) * logps).mean()
            grads = torch.autograd.grad(surrogate, params, retain_graph=True, allow_unused=True)
            squares = torch.zeros((), device=context.device)
            for param_grad in grads:  # the gradient of the whole (all-rank) micro-batch: average, then the norm
                if param_grad is not None:
                    if context.world > 1:
                        dist.all_reduce(param_grad)
                        param_grad /= context.world
                    squares += (param_grad.float() ** 2).sum()
            out[f"3d/param_grad_{name}"] = squares.sqrt()
        return out


def _grad_norm(module) -> torch.Tensor:
    """Pre-clipping L2 norm of the accumulated gradients (a device tensor)."""
    norms = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
