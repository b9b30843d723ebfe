"""The recipe's cross-field rules: what a type alone cannot express (ranges, keys that need each other).

`check` calls `fail(key, message)` on the first broken rule; prefopt/recipe.py's `fail` locates the key in its file
or --set flag and raises.
"""

from __future__ import annotations

from pathlib import Path

from prefopt.schema import Recipe


def check(r: Recipe, fail) -> None:
    """Every cross-field rule of a built recipe, in section order; `fail(key, message)` on the first broken one."""
    for key, value in (("loss.beta", r.loss.beta), ("loss.beta_chosen", r.loss.beta_chosen),
                       ("loss.beta_rejected", r.loss.beta_rejected)):
        if value is not None and value <= 0:
            fail(key, f"must be > 0, got {value}")
    flex = any(b is not None and b != r.loss.beta for b in (r.loss.beta_chosen, r.loss.beta_rejected))
    if r.loss.variant != "dpo" and (flex or r.loss.sft_weight):  # resolved betas equal to beta are fine
        fail("loss.variant", f"flex-β and loss.sft_weight belong to the dpo variant, not `{r.loss.variant}`")
    if not 0 <= r.loss.label_smoothing < 0.5:
        fail("loss.label_smoothing", f"must be in [0, 0.5), got {r.loss.label_smoothing}")
    for key, value in (("loss.sft_weight", r.loss.sft_weight), ("loss.center_weight", r.loss.center_weight),
                       ("loss.offset_scale", r.loss.offset_scale), ("loss.desirable_weight", r.loss.desirable_weight),
                       ("loss.undesirable_weight", r.loss.undesirable_weight),
                       ("optim.weight_decay", r.optim.weight_decay), ("optim.warmup_steps", r.optim.warmup_steps),
                       ("train.max_steps", r.train.max_steps), ("train.save_every", r.train.save_every),
                       ("train.max_tokens_per_batch", r.train.max_tokens_per_batch),
                       ("eval.every", r.eval.every), ("log.grad_split_every", r.log.grad_split_every)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    for key, value in (("optim.lr", r.optim.lr), ("train.micro_batch_size", r.train.micro_batch_size),
                       ("train.grad_accum", r.train.grad_accum), ("train.epochs", r.train.epochs),
                       ("log.every", r.log.every), ("data.max_length", r.data.max_length),
                       ("eval.max_prompts", r.eval.max_prompts), ("eval.max_new_tokens", r.eval.max_new_tokens)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    if not 0 < r.data.max_prompt_length < r.data.max_length:
        fail("data.max_prompt_length", f"must be in (0, data.max_length={r.data.max_length}), "
                                       f"got {r.data.max_prompt_length}")
    if not r.data.chat_roles or not all(isinstance(role, str) and role for role in r.data.chat_roles):
        fail("data.chat_roles", f"expected a non-empty list of role names, got {r.data.chat_roles!r}")
    if r.data.infer_prompt and not r.data.assistant_marker:
        fail("data.assistant_marker", "must not be empty while data.infer_prompt is on")
    if r.lora.rank < 0 or r.lora.alpha <= 0 or not 0 <= r.lora.dropout < 1:
        fail("lora", f"expected rank >= 0, alpha > 0 and dropout in [0, 1), got {vars(r.lora)}")
    if r.lora.rank and not (r.lora.target_modules and all(isinstance(m, str) and m for m in r.lora.target_modules)):
        fail("lora.target_modules", f"expected a non-empty list of module names, got {r.lora.target_modules!r}")
    if r.lora.rank and r.model.kind == "toy_mlp":
        fail("lora.rank", "LoRA needs a transformers model, not model.kind: toy_mlp")
    p = r.ppo
    for key, value in (("ppo.rollout_batch_size", p.rollout_batch_size), ("ppo.epochs", p.epochs),
                       ("ppo.temperature", p.temperature), ("ppo.max_new_tokens", p.max_new_tokens),
                       ("ppo.clip", p.clip), ("ppo.value_clip", p.value_clip), ("ppo.kl_horizon", p.kl_horizon),
                       ("ppo.gamma", p.gamma)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    for key, value in (("ppo.kl_coef", p.kl_coef), ("ppo.missing_eos_penalty", p.missing_eos_penalty)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    if p.gamma > 1:
        fail("ppo.gamma", f"must be in (0, 1], got {p.gamma}")
    if not 0 <= p.lam <= 1:
        fail("ppo.lam", f"must be in [0, 1], got {p.lam}")
    if p.kl_target is not None and p.kl_target <= 0:
        fail("ppo.kl_target", f"must be > 0 (or null for a fixed β), got {p.kl_target}")
    if p.critic_lr is not None and p.critic_lr <= 0:
        fail("ppo.critic_lr", f"must be > 0, got {p.critic_lr}")
    if p.critic_init == "reward" and p.reward.kind != "rm":
        fail("ppo.critic_init", f"`reward` needs ppo.reward.kind: rm (got {p.reward.kind}); use policy or auto")
    for section in ("ppo", "grpo"):
        reward = getattr(r, section).reward
        if reward.partial_credit and (reward.kind != "rule" or not 0 < reward.partial_credit < 4):
            fail(f"{section}.reward.partial_credit", f"needs reward.kind: rule and a value in [0, 4) (so that a wrong "
                 f"answer, 2 + at most c/2, stays below a right one's 4), got {reward.partial_credit} with "
                 f"kind {reward.kind}")
    g = r.grpo
    for key, value in (("grpo.group_size", g.group_size - 1), ("grpo.rollout_prompts", g.rollout_prompts),
                       ("grpo.epochs", g.epochs), ("grpo.temperature", g.temperature), ("grpo.top_p", g.top_p),
                       ("grpo.max_new_tokens", g.max_new_tokens), ("grpo.clip_low", g.clip_low),
                       ("grpo.clip_high", g.clip_high)):
        if value <= 0:
            fail(key, "must be > 1 (a group compares responses)" if key == "grpo.group_size" else f"must be > 0, got {value}")
    if g.clip_low >= 1 or g.kl_coef < 0 or g.missing_eos_penalty < 0 or g.top_p > 1 or g.sft_weight < 0:
        fail("grpo", "expected clip_low < 1, kl_coef >= 0, missing_eos_penalty >= 0, top_p <= 1 and sft_weight >= 0")
    if len(r.optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in r.optim.betas):
        fail("optim.betas", f"expected two numbers in [0, 1), got {list(r.optim.betas)}")
    if r.deepspeed.config and not Path(r.deepspeed.config).is_file():
        fail("deepspeed.config", f"no such DeepSpeed JSON: {r.deepspeed.config}")
    if r.generate.temperature == 0 and r.generate.n != 1:
        fail("generate.n", "greedy decoding (generate.temperature: 0) gives one candidate; set generate.n: 1")
    for key, value in (("generate.n", r.generate.n), ("generate.batch_size", r.generate.batch_size),
                       ("generate.max_new_tokens", r.generate.max_new_tokens), ("judge.concurrency", r.judge.concurrency),
                       ("judge.batch_size", r.judge.batch_size)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
