"""`prefopt ppo`: RLHF-PPO (Ziegler et al. 2019; Ouyang et al. 2022) as one objective's step inside the one loop.

One loop step is one rollout, then `ppo.epochs` passes of minibatch updates:
  1. prompts: this rank's slice of the global rollout (`ppo.rollout_batch_size` prompts), in generation chunks of
     `train.micro_batch_size`; chunk c is sampled with a seed of (train.seed, update, c), from the shared sampler
  2. scoring, without gradients: old log-probs of the policy and of the reference (both from logits / T), values
     from the critic, and the reward's score of each full response, minus `ppo.missing_eos_penalty` without a stop
  3. r_t = -β·KL_t plus the score on the last token; GAE gives advantages (whitened over the whole rollout) and
     returns (prefopt/rl.py holds every formula)
  4. the rollout is shared by all ranks (a few KB of token ids and floats); each epoch permutes it with one seed and
     splits each global minibatch across ranks, so a run's numbers do not depend on how many ranks share it
  5. per micro-batch, the clipped policy loss steps the policy engine and the clipped value loss the critic engine,
     each at its own learning rate, stepping every `train.grad_accum` micro-batches
Dropout is off throughout (modules in eval mode), so the first minibatch of every update has a ratio of exactly 1.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from prefopt import engine as eng
from prefopt import lora, models, rl, rollout
from prefopt.data.batch import Batch
from prefopt.data.batching import shard
from prefopt.errors import UserError
from prefopt.logprobs import token_logps, token_values


def minibatches(recipe, world: int) -> int:
    """Global minibatches per epoch: the rollout over (micro-batch × accumulation × ranks)."""
    per = recipe.train.micro_batch_size * recipe.train.grad_accum * world
    if recipe.ppo.rollout_batch_size % per:
        raise UserError(f"ppo.rollout_batch_size: {recipe.ppo.rollout_batch_size} must be a multiple of "
                        f"train.micro_batch_size × train.grad_accum × ranks = {per}")
    return recipe.ppo.rollout_batch_size // per


class PPOStep(rollout.RolloutStep):
    """Rollout, then PPO updates of the policy (the trainer's engine) and of its own critic engine."""

    name = "ppo"

    @staticmethod
    def global_batch(recipe, world: int) -> int:
        return recipe.ppo.rollout_batch_size

    @staticmethod
    def optimizer_steps(recipe, world: int) -> int:
        return recipe.ppo.epochs * minibatches(recipe, world)

    def __init__(self, context):
        recipe = context.recipe
        self.config, self.micro, self.accum = recipe.ppo, recipe.train.micro_batch_size, recipe.train.grad_accum
        self.n_minibatches = minibatches(recipe, context.world)
        self._setup(context, self.config.reward)
        self.kl = rl.AdaptiveKL(self.config.kl_coef, self.config.kl_target, self.config.kl_horizon)
        critic_recipe = dataclasses.replace(recipe, optim=dataclasses.replace(
            recipe.optim, lr=self.config.critic_lr or recipe.optim.lr))
        total = context.total_steps * self.optimizer_steps(recipe, context.world)
        self.critic = eng.build_engine(models.load_critic(recipe, context.world), critic_recipe, context.world, total)
        self.engines = {"critic": self.critic}

    # -------------------------------------------------------------------------------------------- loop protocol

    def start(self, data_state: dict | None) -> None:
        self._start(data_state, self.micro, self.config.rollout_batch_size)

    def state_dict(self) -> dict:
        return {"kl": self.kl.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.kl.load_state_dict(state["kl"])

    def run(self, update: int, meter, log_now: bool) -> float:
        """One rollout and its updates; adds the PPO metrics to `meter`; returns this rank's rollout tokens."""
        clock = time.perf_counter()
        mine = self._rollout(update, next(self.batches))
        generated = time.perf_counter()
        self._score(mine)
        shared = rollout.all_gather(mine, self.context.world)
        beta = self.kl.value
        stats = self._advantages(shared, beta)
        scored = time.perf_counter()
        for key, value in self._update(update, shared).items():
            meter.add({key: value}, 1.0)
        done = time.perf_counter()
        self.kl.update(float(stats["objective/kl"]), len(shared))
        meter.add({**stats, "kl_coef": torch.tensor(beta), "time/generate_s": torch.tensor(generated - clock),
                   "time/score_s": torch.tensor(scored - generated), "time/update_s": torch.tensor(done - scored)},
                  1.0)
        return float(sum(len(s["prompt_ids"]) + len(s["completion_ids"]) for s in mine))

    # -------------------------------------------------------------------------------------------- the parts

    def _rollout(self, update: int, chunks: list[list[dict]]) -> list[dict]:
        """Sample one response per prompt; chunk c of this rank is global chunk rank·len(chunks) + c."""
        return self._sample(update, chunks, 1, self.config.max_new_tokens, self.config.temperature)

    @torch.no_grad()
    def _score(self, samples: list[dict]) -> None:
        """Old and reference log-probs, values and entropies per token, and the reward's score per response."""
        context, temp = self.context, self.config.temperature
        rollout.require_answers(samples, self.config.reward.kind, "ppo")  # before any forward
        for start in range(0, len(samples), self.micro):
            part = samples[start:start + self.micro]
            batch = self._batch(part)
            counts = batch.completion_mask[:, 1:].sum(-1).tolist()
            policy = token_logps(context.engine.module, batch, temperature=temp, with_entropy=True)
            with lora.as_reference(context.reference) as ref_model:
                ref = token_logps(ref_model, batch, temperature=temp)
            values = token_values(self.critic.module, batch)
            for s, old, ref_lp, v, ent in zip(part, *(x.float().cpu().split(counts) for x in (
                    policy.logps, ref.logps, values, policy.entropy))):
                s.update(old_logps=old, ref_logps=ref_lp, values=v, entropy=float(ent.sum()))
        rollout.score(samples, context.tokenizer, self.score, self.config.reward.kind, self.config.missing_eos_penalty, "ppo")

    def _advantages(self, rollout: list[dict], beta: float) -> dict[str, torch.Tensor]:
        """Per-token KL, shaped rewards, GAE and whitening over the whole rollout; the rollout's statistics."""
        pad = lambda key: torch.nn.utils.rnn.pad_sequence([s[key] for s in rollout], batch_first=True)
        old_logps = pad("old_logps")
        lengths = torch.tensor([len(s["old_logps"]) for s in rollout])
        mask = (torch.arange(old_logps.shape[1]) < lengths[:, None]).to(old_logps.dtype)
        kl = rl.kl_penalty(old_logps, pad("ref_logps"), self.config.kl_estimator) * mask
        scores = torch.tensor([s["score"] for s in rollout])
        rewards = rl.shaped_rewards(kl, scores, mask, beta)
        advantages, returns = rl.gae(rewards, pad("values"), mask, self.config.gamma, self.config.lam)
        advantages = rl.masked_whiten(advantages, mask)
        for i, (s, n) in enumerate(zip(rollout, lengths.tolist())):
            s["advantages"], s["returns"] = advantages[i, :n], returns[i, :n]
        non_score = (-beta * kl).sum(-1)
        return {"objective/kl": kl.sum(-1).mean(), "objective/entropy": torch.tensor([s["entropy"] for s in rollout]).mean(),
                "objective/non_score_reward": non_score.mean(), "objective/scores": scores.mean(),
                "objective/rlhf_reward": (scores + non_score).mean(),
                "objective/score_failures": torch.tensor([float(s["failed"]) for s in rollout]).sum(),
                "response/length_mean": mask.sum(-1).mean(), "response/eos_frac": torch.tensor(
                    [float(s["ended"]) for s in rollout]).mean()}

    def _update(self, update: int, rollout: list[dict]) -> dict[str, torch.Tensor]:
        """`ppo.epochs` × minibatches of clipped policy and value losses; the mean statistics of all micro-batches."""
        context, per_rank = self.context, self.micro * self.accum
        per_global = per_rank * context.world
        order = torch.Generator().manual_seed(context.recipe.train.seed * 1_000_003 + update)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(self.config.epochs):
            perm = torch.randperm(len(rollout), generator=order).tolist()
            for k in range(self.n_minibatches):
                mine = shard(perm[k * per_global:(k + 1) * per_global], context.world, "exact")[context.rank]
                for i in range(self.accum):
                    part = [rollout[j] for j in mine[i * self.micro:(i + 1) * self.micro]]
                    for key, value in self._micro_step(part).items():
                        sums[key] = sums.get(key, 0.0) + value
        n = self.config.epochs * self.n_minibatches * self.accum
        return {key: value / n for key, value in sums.items()}

    def _micro_step(self, part: list[dict]) -> dict[str, torch.Tensor]:
        """One micro-batch: policy loss -> policy engine, value loss -> critic engine (each steps at its boundary)."""
        context = self.context
        batch = self._batch(part)
        cat = lambda key: torch.cat([s[key] for s in part]).to(context.device)
        ones = torch.ones_like(cat("old_logps"))
        eng.begin_micro_step(context.engine)
        new = token_logps(context.engine.module, batch, temperature=self.config.temperature)
        loss, stats = rl.policy_loss(new.logps, cat("old_logps"), cat("advantages"), ones, self.config.clip)
        context.engine.backward(loss)
        context.engine.step()
        eng.begin_micro_step(self.critic)
        values = token_values(self.critic.module, batch)
        value_loss, value_clipfrac = rl.value_loss(values, cat("values"), cat("returns"), ones, self.config.value_clip)
        self.critic.backward(value_loss)
        self.critic.step()
        return {"loss/policy_avg": loss.detach(), "loss/value_avg": value_loss.detach(),
                "policy/approxkl_avg": stats["approxkl"], "policy/clipfrac_avg": stats["clipfrac"],
                "val/clipfrac_avg": value_clipfrac, "val/ratio": stats["ratio"], "val/ratio_var": stats["ratio_var"]}

    def _batch(self, part: list[dict]) -> Batch:
        return rollout.collate(part, self.collate, self.context.device)
