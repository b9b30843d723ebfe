"""`prefopt grpo`: group-relative RL on verifiable rewards (GRPO, Dr. GRPO, RLOO, DAPO's clip-higher) as one
objective's step inside the one loop. No critic: a prompt's own group of responses is the baseline.

One loop step is one rollout, then `grpo.epochs` passes of minibatch updates:
  1. prompts: this rank's share of `grpo.rollout_prompts`, in generation chunks of ⌈micro_batch_size / G⌉ prompts
     (about one training micro-batch of responses per call); each prompt gets G = `grpo.group_size` responses
     from the one sampler, seeded per global chunk (prefopt/rollout.py), so ranks never change the samples
  2. rewards from `grpo.reward` (the scorers of `prefopt judge`), minus `missing_eos_penalty` without a stop;
     old log-probs and entropies of the policy (logits / T); the reference's log-probs when `grpo.kl_coef` > 0,
     and on logging steps for the `grpo/kl_ref` metric
  3. advantages per group (prefopt/group_rl.py); a group whose rewards are all equal has none: counted in
     `grpo/zero_std_frac` and, with `grpo.skip_equal_groups`, left out of the update (but for SFT targets, below)
  4. the rollout, the same on every rank, is permuted with one seed per update and dealt into
     rollout_prompts·G / (micro_batch_size·grad_accum·ranks) minibatches; each rank takes its contiguous part of
     each, in `grad_accum` micro-batches; the clipped surrogate (+ kl_coef·k3, + sft_weight·(-log π) on the
     responses whose reward reaches sft_min_reward: an SFT term on the rollout's right answers) is averaged over
     the whole minibatch as `grpo.loss_agg` says, and the policy steps once per minibatch
Dropout is off throughout, so the first minibatch of every update has a ratio of exactly 1.
"""

from __future__ import annotations

import math
import time

import torch

from prefopt import engine as eng
from prefopt import group_rl, lora, rollout
from prefopt.data.batch import Batch
from prefopt.data.batching import shard
from prefopt.errors import UserError
from prefopt.logprobs import token_logps


def chunk_prompts(recipe) -> int:
    """Prompts per generation call: about one training micro-batch of responses."""
    return max(1, math.ceil(recipe.train.micro_batch_size / recipe.grpo.group_size))


def minibatches(recipe, world: int) -> int:
    """Global minibatches per epoch: the rollout's responses over (micro-batch × accumulation × ranks)."""
    g, t = recipe.grpo, recipe.train
    per, responses, chunk = t.micro_batch_size * t.grad_accum * world, g.rollout_prompts * g.group_size, \
        chunk_prompts(recipe) * world
    if responses % per or g.rollout_prompts % chunk:
        raise UserError(f"grpo.rollout_prompts: {g.rollout_prompts} prompts × {g.group_size} responses must be a "
                        f"multiple of train.micro_batch_size × train.grad_accum × ranks = {per} responses, and the "
                        f"prompts a multiple of ⌈micro_batch_size / group_size⌉ × ranks = {chunk}")
    return responses // per


class GRPOStep(rollout.RolloutStep):
    """Rollout of G responses per prompt, group-relative advantages, clipped policy updates; no critic."""

    name = "grpo"

    @staticmethod
    def global_batch(recipe, world: int) -> int:
        return recipe.grpo.rollout_prompts

    @staticmethod
    def optimizer_steps(recipe, world: int) -> int:
        return recipe.grpo.epochs * minibatches(recipe, world)

    def __init__(self, context):
        recipe = context.recipe
        self.config, self.micro, self.accum = recipe.grpo, recipe.train.micro_batch_size, recipe.train.grad_accum
        self.n_minibatches = minibatches(recipe, context.world)
        self._setup(context, self.config.reward)

    def start(self, data_state: dict | None) -> None:
        self._start(data_state, chunk_prompts(self.context.recipe), self.config.rollout_prompts)

    def run(self, update: int, meter, log_now: bool) -> float:
        """One rollout and its updates; adds the GRPO metrics to `meter`; returns this rank's rollout tokens."""
        context, clock = self.context, time.perf_counter()
        chunks = next(self.batches)
        mine = self._sample(update, chunks, self.config.group_size, self.config.max_new_tokens, self.config.temperature,
                            self.config.top_p)
        generated = time.perf_counter()
        rollout.score(mine, context.tokenizer, self.score, self.config.reward.kind, self.config.missing_eos_penalty, "grpo")
        if not self.on_policy:  # later minibatches need the rollout policy's log-probs: one pass without gradients
            self._old_logps(mine)
        shared = rollout.all_gather(mine, context.world)
        stats = self._advantages(shared)
        token_sums = self._update(update, shared, log_now)
        tokens = float(token_sums.pop("tokens", 0.0))
        meter.add(token_sums, tokens)  # per-token means over every rank's tokens, however the ranks split them
        meter.add({**stats, "perf/generate_s": torch.tensor(generated - clock),
                   "perf/train_s": torch.tensor(time.perf_counter() - generated)}, 1.0)
        return float(sum(len(s["prompt_ids"]) + len(s["completion_ids"]) for s in mine))

    @property
    def on_policy(self) -> bool:
        """One epoch in one minibatch: the update's only forward sees the rollout policy itself, so the rollout's
        log-probs are that forward's, detached (ratio 1), and no separate pass computes them."""
        return self.config.epochs == 1 and self.n_minibatches == 1

    # -------------------------------------------------------------------------------------------- the parts

    @torch.no_grad()
    def _old_logps(self, samples: list[dict]) -> None:
        """Per token, the rollout policy's log-probs (and the reference's, for the KL term) of this rank's samples."""
        context = self.context
        for start in range(0, len(samples), self.micro):
            part = samples[start:start + self.micro]
            batch = rollout.collate(part, self.collate, context.device)
            counts = batch.completion_mask[:, 1:].sum(-1).tolist()
            policy = token_logps(context.engine.module, batch, temperature=self.config.temperature)
            for s, old in zip(part, policy.logps.float().cpu().split(counts)):
                s["old_logps"] = old
            if self.config.kl_coef:
                with lora.as_reference(context.reference) as ref_model:
                    ref = token_logps(ref_model, batch, temperature=self.config.temperature)
                for s, ref_lp in zip(part, ref.logps.float().cpu().split(counts)):
                    s["ref_logps"] = ref_lp

    def _advantages(self, shared: list[dict]) -> dict[str, torch.Tensor]:
        """Each response's advantage from its group; the rollout's reward, length and group statistics."""
        rewards = torch.tensor([s["score"] for s in shared], dtype=torch.float64)
        groups = torch.tensor([s["group"] for s in shared])
        advantages = group_rl.group_advantages(rewards, groups, self.config.advantage)
        equal = group_rl.equal_groups(rewards, groups)
        sft = (rewards >= self.config.sft_min_reward) & (self.config.sft_weight > 0)
        for s, a, e, target in zip(shared, advantages.tolist(), equal.tolist(), sft.tolist()):
            s["advantage"], s["equal_group"], s["sft"] = a, e, target
        lengths = torch.tensor([float(len(s["completion_ids"])) for s in shared])
        stats = {"grpo/reward_mean": rewards.mean(), "grpo/reward_std": group_rl.group_std(rewards, groups).mean(),
                 "grpo/zero_std_frac": equal.double().mean(),  # groups are of equal size: a share of responses
                 "grpo/sft_frac": sft.double().mean(),
                 "grpo/score_failures": torch.tensor([float(s["failed"]) for s in shared]).sum(),
                 "response/length_mean": lengths.mean(), "response/length_max": lengths.max(),
                 "response/truncated_frac": 1 - torch.tensor([float(s["ended"]) for s in shared]).mean()}
        if self.config.reward.kind == "rule":  # the rubric's 4 and 5 are right answers
            stats["grpo/accuracy"] = torch.tensor([float(s["judged"] >= 4) for s in shared]).mean()
        return {k: v.float() for k, v in stats.items()}

    def _update(self, update: int, shared: list[dict], log_now: bool) -> dict[str, torch.Tensor]:
        """`grpo.epochs` passes of minibatch updates; this rank's sums over its tokens of the loss, clip, ratio, KL
        and entropy, and its token count (`tokens`)."""
        context = self.context
        # an all-equal group has no advantage, but its SFT targets (an all-right group's answers) still train
        kept = [s for s in shared if s["sft"] or not (self.config.skip_equal_groups and s["equal_group"])]
        if not kept:  # nothing to learn from this rollout, and no step at all
            return {}
        order = torch.Generator().manual_seed(context.recipe.train.seed * 1_000_003 + update)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(self.config.epochs):
            perm = torch.randperm(len(kept), generator=order).tolist()
            for minibatch in shard([kept[i] for i in perm], self.n_minibatches, "balanced"):
                tokens = float(sum(len(s["completion_ids"]) for s in minibatch))
                mine = shard(minibatch, context.world, "balanced")[context.rank]
                for i, part in enumerate(shard(mine, self.accum, "balanced")):
                    step = self._micro_step(part, tokens, float(len(minibatch)), i == self.accum - 1, log_now)
                    for key, value in step.items():
                        sums[key] = sums.get(key, 0.0) + value
        return sums

    def _micro_step(self, part: list[dict], tokens: float, rows: float, last: bool,
                    log_now: bool) -> dict[str, torch.Tensor]:
        """One micro-batch's share of its minibatch's loss; backward; the policy steps at the minibatch's end.

        An empty share (possible only when groups were skipped) runs one response with weight 0, so that every
        rank still takes part in each collective of the step. The KL to the reference and the entropy are
        measured on the responses the update trains on, on logging steps (and the KL whenever it is in the loss).
        """
        context, config = self.context, self.config
        weight = 1.0 if part else 0.0
        part = part or [self._filler]
        batch = rollout.collate(part, self.collate, context.device)
        lengths = batch.completion_mask[:, 1:].sum(-1).tolist()
        per_token = lambda values: torch.cat([torch.full((n,), float(v)) for n, v in zip(lengths, values)]).to(context.device)
        advantages, row_length = per_token(s["advantage"] for s in part), per_token(lengths)
        context.engine.set_gradient_accumulation_boundary(last)
        eng.begin_micro_step(context.engine)
        new = token_logps(context.engine.module, batch, temperature=config.temperature, with_entropy=log_now)
        old = torch.cat([s["old_logps"] for s in part]).to(context.device) if "old_logps" in part[0] else new.logps.detach()
        loss, ratio, low, high = group_rl.clipped_surrogate(new.logps, old, advantages, config.clip_low, config.clip_high)
        ref = self._ref_logps(part, batch) if config.kl_coef or log_now else None
        if config.kl_coef:
            loss = loss + config.kl_coef * group_rl.k3(new.logps, ref)
        if config.sft_weight:  # the NLL of right answers, as continued SFT on them would train (-log π at logits / T)
            loss = loss - config.sft_weight * per_token(s["sft"] for s in part) * new.logps
        # DeepSpeed averages the ranks' gradients: × ranks turns that average into the minibatch's sum
        total = weight * context.world * group_rl.aggregate(loss, row_length, config.loss_agg, tokens, rows)
        context.engine.backward(total, scale_wrt_gas=False)
        context.engine.step()
        with torch.no_grad():
            log_ratio = new.logps.detach() - old
            out = {"tokens": torch.tensor(weight * len(old)), "loss": weight * loss.detach().sum(),
                   "grpo/clip_low_frac": weight * low.float().sum(), "grpo/clip_high_frac": weight * high.float().sum(),
                   "grpo/ratio": weight * ratio.detach().sum(),
                   "grpo/approx_kl": weight * (torch.expm1(log_ratio) - log_ratio).sum()}
            if log_now:
                out["grpo/kl_ref"] = weight * group_rl.k3(new.logps.detach(), ref).sum()
                out["grpo/entropy"] = weight * new.entropy.sum()
        return out

    @torch.no_grad()
    def _ref_logps(self, part: list[dict], batch: Batch) -> torch.Tensor:
        """The reference's per-token log-probs of a micro-batch: from the rollout pass, or computed here."""
        if "ref_logps" in part[0]:
            return torch.cat([s["ref_logps"] for s in part]).to(self.context.device)
        with lora.as_reference(self.context.reference) as ref_model:
            return token_logps(ref_model, batch, temperature=self.config.temperature).logps

    @property
    def _filler(self) -> dict:
        """A response to run with weight 0 when a rank's share of a minibatch is empty (no precomputed log-probs:
        they are computed in place)."""
        pad = self.context.tokenizer.pad_token_id
        return {"prompt_ids": [pad], "completion_ids": [pad], "advantage": 0.0, "sft": False}

