"""What `train.layout: shared_prompt` saves over `packed`, in one process, free of run-to-run machine noise.

Forward and backward of the sequence log-probs over the same 8 anchor-mix pairs (prompts 64-256 tokens, responses
64-512) on a random Qwen2 (bf16 on a GPU, where the flash kernel runs), alternating the two layouts; prints the
median of REPEATS for each. Not a test.

    HIDDEN=256 LAYERS=4 HEADS=4 python benchmarks/shared_prompt.py      # the small CPU shape of issue #11
"""

from __future__ import annotations

import os
import random
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from prefopt import attention
from prefopt.data.collate import Collator
from prefopt.logprobs import sequence_logps


def anchor_model_and_pairs(dev: torch.device) -> tuple[Qwen2ForCausalLM, list[dict]]:
    """A random Qwen2 of HIDDEN, LAYERS, HEADS and VOCAB on `dev` (bf16 on a GPU) and 8 anchor-mix token pairs."""
    hidden, layers = int(os.environ.get("HIDDEN", 256)), int(os.environ.get("LAYERS", 4))
    heads, vocab = int(os.environ.get("HEADS", 4)), int(os.environ.get("VOCAB", 32000))
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden,
                                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
                                         tie_word_embeddings=True)).to(dev, torch.bfloat16 if dev.type == "cuda" else None)
    model.set_attn_implementation(attention.register())
    rng = random.Random(0)
    tokens = lambda lo, hi: [rng.randrange(3, vocab) for _ in range(rng.randint(lo, hi))]
    pairs = [dict(idx=i, prompt_ids=tokens(64, 256), chosen_ids=tokens(64, 512), rejected_ids=tokens(64, 512))
             for i in range(8)]
    return model, pairs


def main() -> None:
    repeats = int(os.environ.get("REPEATS", 5))
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, pairs = anchor_model_and_pairs(dev)
    config = model.config
    hidden, layers, heads, vocab = (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
                                    config.vocab_size)
    seconds = {"packed": [], "shared_prompt": []}
    for _ in range(repeats):
        for layout in seconds:
            batch = Collator(0, layout=layout)(pairs).to(dev)
            start = time.perf_counter()
            sequence_logps(model, batch).logps.sum().backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds[layout].append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    packed, shared = (statistics.median(seconds[k]) for k in ("packed", "shared_prompt"))
    print(f"hidden {hidden}, {layers} layers, {heads} heads, vocab {vocab}, {dev.type}: packed {packed:.3f} s, shared_prompt "
          f"{shared:.3f} s (median of {repeats}): {1 - shared / packed:.1%} saved")


if __name__ == "__main__":
    main()
