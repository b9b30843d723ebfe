"""What the LM head's chunk size costs in time and memory, in one process: forward and backward of the sequence
log-probs over the same 8 anchor-mix pairs (benchmarks/shared_prompt.py's model and pairs), packed, for each of
CHUNKS (tokens per chunk), alternating; the median time of REPEATS and, on a GPU, the peak memory each adds.

prefopt/logprobs.chunk_size gives a GPU chunk at most 256 MiB of fp32 logits (441 tokens at Qwen2's 151,936
words; it was 4,096): the memory is worked out and measured on the CPU (benchmarks/step_memory.py), the time
needs a GPU, where each chunk is recomputed in backward. Not a test.

    HIDDEN=896 LAYERS=24 HEADS=14 VOCAB=151936 CHUNKS="441 4096" python benchmarks/head_chunks.py
"""

from __future__ import annotations

import os
import statistics
import time

import torch
from shared_prompt import anchor_model_and_pairs

from prefopt.data.collate import Collator
from prefopt.logprobs import sequence_logps


def main() -> None:
    repeats, chunks = int(os.environ.get("REPEATS", 5)), [int(c) for c in os.environ.get("CHUNKS", "441 4096").split()]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, pairs = anchor_model_and_pairs(dev)
    batch = Collator(0, layout="packed")(pairs).to(dev)
    seconds, added = {c: [] for c in chunks}, {}
    for _ in range(repeats):
        for chunk in chunks:
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            start = time.perf_counter()
            sequence_logps(model, batch, chunk_tokens=chunk).logps.sum().backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()
                added[chunk] = (torch.cuda.max_memory_allocated() - before) / 2**30
            seconds[chunk].append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    for chunk in chunks:
        memory = f", peak +{added[chunk]:.2f} GiB" if chunk in added else ""
        print(f"{model.config.vocab_size} words, {dev.type}, chunk {chunk} tokens: "
              f"{statistics.median(seconds[chunk]):.3f} s (median of {repeats}){memory}")


if __name__ == "__main__":
    main()
