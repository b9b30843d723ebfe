"""The one sampler: `generate`, the dispersion probe, accuracy during training and the PPO and GRPO rollouts all
draw responses here.

A plain decoding loop over the model's own KV cache: each prompt is computed once (a prefill over the
left-padded prompts) and its cache repeated for its `n` samples, so a GRPO group of 8 pays for its prompt once,
not 8 times; then one token per step for every row, until every row has stopped or `max_new_tokens`. Sampling is
seeded per call in a forked RNG, so a result depends on (prompts, seed) alone: not on what ran before, nor on how
many ranks share the work. A row stops at EOS or the chat template's end of turn (`data.tokenize.stop_ids`) and is
padded after it. The loop's one host synchronisation per token is its stop check. Under ZeRO-3 the weights are
gathered once per call and DeepSpeed's per-module hooks lifted meanwhile (`unwrap_model_for_generation`); with
several ranks, every rank steps until all are done, since each forward of a sharded model is collective.
"""

from __future__ import annotations

import contextlib
import inspect

import torch
import torch.distributed as dist

from prefopt.data.collate import left_padded
from prefopt.engine import partitioned


def is_zero3(module) -> bool:
    """Whether the module's parameters are ZeRO-3 partitioned."""
    return partitioned(module.parameters())


@contextlib.contextmanager
def generation_model(model_or_engine):
    """The module to decode with: for a ZeRO-3 engine, with its weights gathered once and hooks lifted."""
    module = getattr(model_or_engine, "module", model_or_engine)
    if is_zero3(module) and hasattr(model_or_engine, "optimizer") and model_or_engine.optimizer is not None:
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        with unwrap_model_for_generation(model_or_engine):
            yield module
    else:
        yield module  # a frozen ZeRO-3 module (no optimizer) keeps its hooks: gathered per forward, still correct


def pick(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """One token per row: argmax for temperature 0, else a draw from softmax(logits / T) within the nucleus top_p.

    The draw inverts the cumulative distribution at one uniform number per row, which picks token i with
    probability p_i, as torch.multinomial does, for one random number per row rather than a pass over the vocabulary.
    """
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p  # the most likely token always stays
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    cumulative = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=probs.dtype) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, u).squeeze(-1).clamp(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample(model_or_engine, prompt_ids: list[list[int]], *, pad_id: int, stop_ids: list[int], max_new_tokens: int,
           seed: int, temperature: float = 1.0, top_p: float = 1.0, n: int = 1) -> torch.Tensor:
    """Response ids [len(prompts)·n, ≤ max_new_tokens] (row i·n + j: prompt i, sample j); pad after a stop token.

    temperature 0 is greedy; otherwise pure sampling at `temperature` (no top-k) within the nucleus `top_p`.
    """
    module = getattr(model_or_engine, "module", model_or_engine)
    dev = next(module.parameters()).device
    input_ids, attn = left_padded(prompt_ids, pad_id, dev)
    stops = torch.tensor(stop_ids, device=dev)
    synced = is_zero3(module) and dist.is_initialized() and dist.get_world_size() > 1
    was_training = module.training
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), generation_model(model_or_engine) as gen:
        torch.manual_seed(seed)
        gen.eval()
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        cache_kw, extra = _keywords(gen)
        out = gen(input_ids=input_ids, attention_mask=attn, position_ids=positions, use_cache=True, **extra)
        cache, logits = _cache_of(out), out.logits[:, -1]
        if n > 1:  # one prefill per prompt, its cache shared by the prompt's n samples
            cache.batch_repeat_interleave(n)
            logits, attn = logits.repeat_interleave(n, 0), attn.repeat_interleave(n, 0)
        done = torch.zeros(logits.shape[0], dtype=torch.bool, device=dev)
        tokens = []
        for _ in range(max_new_tokens):
            token = pick(logits, temperature, top_p).masked_fill(done, pad_id)
            tokens.append(token)
            done |= torch.isin(token, stops)
            if _all_done(done, synced):
                break
            attn = torch.cat([attn, torch.ones_like(attn[:, :1])], dim=1)
            out = gen(input_ids=token[:, None], attention_mask=attn, position_ids=attn.sum(-1, keepdim=True) - 1,
                      use_cache=True, **{cache_kw: cache})
            cache, logits = _cache_of(out), out.logits[:, -1]
    module.train(was_training)
    return torch.stack(tokens, dim=1) if tokens else input_ids.new_zeros((len(prompt_ids) * n, 0))


def _keywords(model) -> tuple[str, dict]:
    """The forward's name for the KV cache (`cache` in newer transformers, `past_key_values` before), and the
    keyword that asks for the last position's logits only, where the model takes one."""
    params = inspect.signature(model.forward).parameters
    last_only = next(({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in params), {})
    return ("cache" if "cache" in params else "past_key_values"), last_only


def _cache_of(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _all_done(done: torch.Tensor, synced: bool) -> bool:
    """The stop check: every row of this rank (and, for a sharded model, of every rank) has stopped."""
    if not synced:
        return bool(done.all())
    left = (~done).sum().float()
    dist.all_reduce(left)  # every rank keeps stepping (each forward is collective) until all are done
    return bool(left == 0)
