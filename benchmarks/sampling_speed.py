"""Rollout sampling: prefopt's sampler (prefopt/sampling.py) against transformers' `generate`, same prompts and sizes.

Usage: python benchmarks/sampling_speed.py [PROMPTS] [SAMPLES_PER_PROMPT] [MAX_NEW_TOKENS]   (defaults 128 4 40)
on the embedded task's SFT base (built on first use, ~2.5 minutes on 2 CPU cores); prints the median of 3 calls
each and the tokens sampled per second. A benchmark, not a test: the figures depend on the machine.
"""

import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.builtin import resolve
from prefopt.data.collate import left_padded
from prefopt.data.tokenize import encode_prompt, stop_ids
from prefopt.sampling import sample
from prefopt.tasks import arith


def timed(fn, repeats: int = 3) -> tuple[float, torch.Tensor]:
    """Median seconds of `repeats` calls after one warm-up, and the last call's output (on a GPU, each call is
    timed to the end of its kernels)."""
    fn()
    seconds = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def main() -> None:
    prompts, n, max_new = (int(a) for a in (sys.argv[1:] + ["128", "4", "40"][len(sys.argv) - 1:]))
    path = resolve("builtin:arith-base")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = [encode_prompt(r["prompt"], tokenizer) for r in arith.records("prompts", "train", prompts, seed=3)]
    stops = stop_ids(tokenizer)

    def ours():
        return sample(model, ids, pad_id=tokenizer.pad_token_id, stop_ids=stops, max_new_tokens=max_new, seed=0,
                      temperature=1.0, n=n)

    def theirs():
        input_ids, attention_mask = left_padded(ids, tokenizer.pad_token_id, torch.device("cpu"))
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=True, top_k=0,
                                 temperature=1.0, max_new_tokens=max_new, num_return_sequences=n,
                                 eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
        return out[:, input_ids.shape[1]:]

    print(f"{prompts} prompts x {n} samples, up to {max_new} new tokens, {torch.get_num_threads()} threads")
    for name, fn in (("prefopt sampling.sample", ours), ("transformers generate", theirs)):
        seconds, out = timed(fn)
        tokens = int((out != tokenizer.pad_token_id).sum())
        print(f"{name:24s} {seconds:7.3f} s  {tokens / seconds:9.0f} tokens/s")


if __name__ == "__main__":
    main()
