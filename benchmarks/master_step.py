"""What prefopt's bf16 optimizer step costs in time and memory at a Qwen2 shape: sliced against all at once.

prefopt/masters.py steps fp32 masters of bf16 weights, converting 128 MiB of gradients to fp32 at a time
(CHUNK_ELEMENTS); DeepSpeed's stage-0 wrapper converted all of them at once. Both are timed here through the same
class (a slice as large as the model is the all-at-once step), on random bf16 gradients, medians of REPEATS,
alternating, with the memory each step adds beyond the weights, masters, moments and bf16 gradients (the
allocator's peak on a GPU, benchmarks/live_bytes.py on the CPU). Not a test: it asserts nothing.

    SIZE=0.5b python benchmarks/master_step.py          # LAYERS=2 for a quick CPU run (the embedding dominates)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dpo_throughput import shape  # noqa: E402
from live_bytes import LiveBytes  # noqa: E402

from prefopt.masters import CHUNK_ELEMENTS, MasterWeightAdamW  # noqa: E402

GIB = 2**30


def step_cost(opt: MasterWeightAdamW, weights: list[torch.Tensor], gpu: bool) -> tuple[float, float]:
    """Seconds and GiB added by one step on fresh random gradients."""
    for w in weights:
        w.grad = torch.randn_like(w)
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    start = time.perf_counter()
    if gpu:
        opt.step()
        torch.cuda.synchronize()
        added = torch.cuda.max_memory_allocated() - before
    else:
        meter = LiveBytes()
        with meter:
            opt.step()
        added = meter.peak
    return time.perf_counter() - start, added / GIB


def main() -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    gpu = torch.cuda.is_available()
    size, repeats = os.environ.get("SIZE", "0.5b"), int(os.environ.get("REPEATS", 5))
    config = Qwen2Config(vocab_size=int(os.environ.get("VOCAB", 151936)), tie_word_embeddings=True, **shape(size))
    with torch.device("cuda" if gpu else "cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    weights = list(model.parameters())
    total = sum(w.numel() for w in weights)
    kinds = {"sliced": CHUNK_ELEMENTS, "all at once": total}
    optimizers = {name: MasterWeightAdamW(weights, 1.0, chunk, lr=1e-5, fused=True) for name, chunk in kinds.items()}
    # each optimizer holds its own masters and moments; warm both (the first step allocates the moments)
    for opt in optimizers.values():
        step_cost(opt, weights, gpu)
    seconds, added = {name: [] for name in kinds}, {}
    for _ in range(repeats):
        for name, opt in optimizers.items():
            took, added[name] = step_cost(opt, weights, gpu)
            seconds[name].append(took)
    print(f"{size} shape, {config.num_hidden_layers} layers, {total / 1e6:.0f} M parameters, "
          f"{'GPU' if gpu else 'CPU'}, largest {max(w.numel() for w in weights) / 1e6:.0f} M")
    print(f"{'step':<14}{'slices':>8}{'median s':>10}{'GiB added':>11}")
    for name, opt in optimizers.items():
        print(f"{name:<14}{len(opt.slices):>8}{statistics.median(seconds[name]):>10.4f}{added[name]:>11.2f}")


if __name__ == "__main__":
    main()
