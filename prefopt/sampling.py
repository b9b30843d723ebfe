"""The one sampler: `generate`, the dispersion probe and PPO rollouts all draw responses here.

Sampling is seeded per call in a forked RNG, so a result depends on (prompts, seed) alone: not on what ran
before, nor on how many ranks share the work. Generation stops at EOS and at the chat template's end of turn
(`data.tokenize.stop_ids`). Under ZeRO-3 the weights are gathered once per call and DeepSpeed's per-module hooks
are lifted meanwhile (`unwrap_model_for_generation`), so no parameter is fetched per token; `synced_gpus` keeps
ranks stepping together until every rank's rows are done.
"""

from __future__ import annotations

import contextlib

import torch

from prefopt.data.collate import left_padded


def is_zero3(module) -> bool:
    """Whether the module's parameters are ZeRO-3 partitioned."""
    return any(hasattr(p, "ds_id") for p in module.parameters())


@contextlib.contextmanager
def generation_model(model_or_engine):
    """The module to call `generate` on: for a ZeRO-3 engine, with its weights gathered once and hooks lifted."""
    module = getattr(model_or_engine, "module", model_or_engine)
    if is_zero3(module) and hasattr(model_or_engine, "optimizer") and model_or_engine.optimizer is not None:
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        with unwrap_model_for_generation(model_or_engine):
            yield module
    else:
        yield module  # a frozen ZeRO-3 module (no optimizer) keeps its hooks: gathered per forward, still correct


@torch.no_grad()
def sample(model_or_engine, prompt_ids: list[list[int]], *, pad_id: int, stop_ids: list[int], max_new_tokens: int,
           seed: int, temperature: float = 1.0, top_p: float = 1.0, n: int = 1) -> torch.Tensor:
    """Response ids [len(prompts)·n, ≤ max_new_tokens] (row i·n + j: prompt i, sample j); pad after a stop token.

    temperature 0 is greedy; otherwise pure sampling at `temperature` with top_k = 0 and nucleus `top_p`.
    """
    module = getattr(model_or_engine, "module", model_or_engine)
    dev = next(module.parameters()).device
    input_ids, attn = left_padded(prompt_ids, pad_id, dev)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if temperature > 0 else \
        dict(do_sample=False)
    was_training = module.training
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), generation_model(model_or_engine) as gen:
        torch.manual_seed(seed)
        gen.eval()
        out = gen.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=max_new_tokens,
                           num_return_sequences=n, pad_token_id=pad_id, eos_token_id=stop_ids,
                           synced_gpus=is_zero3(module) and torch.distributed.is_initialized(), **sampling)
    module.train(was_training)
    return out[:, input_ids.shape[1]:]
