"""The step of the offline objectives (sft, dpo, ipo, slic, rm): one optimizer update on one global batch.

A step object is what an objective supplies to the one loop (prefopt/loop.py): `start` (the data stream from a
resume point), `run` (one update, adding its metrics to the meter), `data_state` and `state_dict` (what a
checkpoint keeps), and `engines` (trainable engines besides the policy's, checkpointed with it). PPO's is in
prefopt/ppo.py.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from prefopt.data.loader import BatchStream
from prefopt.engine import begin_micro_step
from prefopt.objectives import Terms


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

    def __init__(self, trainer):
        self.t = trainer

    def start(self, data_state: dict | None) -> None:
        t, recipe = self.t, self.t.recipe
        self.stream = BatchStream(t.train_data, t.collate, recipe.train.micro_batch_size, recipe.train.grad_accum,
                                  t.world, t.rank, recipe.train.seed, recipe.data.shuffle, recipe.data.shuffle_buffer,
                                  data_state, recipe.train.max_tokens_per_batch)
        self.batches = iter(self.stream)

    def run(self, step: int, meter, log_now: bool) -> float:
        """One optimizer update; returns the tokens this rank computed (padding excluded)."""
        t, e, obj = self.t, self.t.engine, self.t.obj
        every = t.recipe.log.grad_split_every
        split_now = every and (step + 1) % every == 0 and obj.has_logps and obj.pairwise
        micro_batches, tokens = next(self.batches), 0.0
        # The step's loss is the mean over this rank's examples (DeepSpeed then averages the ranks): each
        # micro-batch contributes its sum over that count, whatever its size, and we, not DeepSpeed's micro-step
        # counter, say which backward closes the step (a token budget gives a varying number of micro-batches).
        examples = sum(len(batch["idx"]) for batch in micro_batches)
        meter.add({"perf/forwards": torch.tensor(float(len(micro_batches)))}, 1.0)
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            e.set_gradient_accumulation_boundary(last)
            real = float(batch["attention_mask"].sum())
            # tokens/s counts every sequence's tokens: a shared prompt (layout shared_prompt), computed once,
            # still counts for both sides, as in the other layouts (and in TRL's count)
            tokens += real + batch.get("shared_tokens", 0)
            # padded tokens computed per real token: the cost of the layout
            meter.add({"perf/padding": torch.tensor((batch["input_ids"].numel() - real) / max(real, 1.0))}, 1.0)
            begin_micro_step(e)
            losses, pol, ref, ent = t.forward(batch, obj, with_entropy=log_now)
            if split_now and i == 0:
                meter.add(self._grad_split(pol, ref), 1.0)
            t.metrics_of(meter, batch, obj, losses, pol, ref, ent)
            e.backward(losses.sum() / examples, scale_wrt_gas=False)
            if log_now and last and e.zero_optimization_stage() == 0:
                meter.add({"grad_norm": _grad_norm(e.module)}, 1.0)  # DeepSpeed drops it at stage 0
            e.step()
        return tokens

    def _grad_split(self, pol: Terms, ref: Terms | None) -> dict[str, torch.Tensor]:
        """True parameter-gradient norms of the chosen and of the rejected term (two extra backward passes).

        A diagnostic every `log.grad_split_every` steps: it holds one full gradient (gathered under ZeRO-3) and
        all-reduces it across ranks, so the norm is that of the global micro-batch, independent of sharding.
        """
        from prefopt.metrics.three_d import logp_grads

        t = self.t
        g_c, g_r = logp_grads(t.obj, pol, ref, t.recipe.loss)
        params = [p for p in t.engine.module.parameters() if p.requires_grad]
        out = {}
        for name, g, lp in (("chosen", g_c, pol.chosen), ("rejected", g_r, pol.rejected)):
            surrogate = (g.detach().to(lp.dtype) * lp).mean()
            grads = torch.autograd.grad(surrogate, params, retain_graph=True, allow_unused=True)
            sq = torch.zeros((), device=t.dev)
            for g_p in grads:  # the gradient of the whole (all-rank) micro-batch: average, then take the norm
                if g_p is not None:
                    if t.world > 1:
                        dist.all_reduce(g_p)
                        g_p /= t.world
                    sq += (g_p.float() ** 2).sum()
            out[f"3d/param_grad_{name}"] = sq.sqrt()
        return out


def _grad_norm(module) -> torch.Tensor:
    """Pre-clipping L2 norm of the accumulated gradients (a device tensor)."""
    norms = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
