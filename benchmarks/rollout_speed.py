"""Rollout generation at a model size's shape: prefopt's sampler against transformers' `generate`, then where a
PPO update's time goes (sampling, scoring, the policy and critic updates). For issue #28's table, on a GPU:

    SIZE=0.5b python benchmarks/rollout_speed.py          # SIZE=tiny for a quick CPU run of the same code

A random Qwen2 of the shape (benchmarks/dpo_throughput.py's `build`, bf16 on a GPU), PROMPTS prompts of 64 words,
N samples each, up to MAX_NEW tokens (a random model rarely stops early, so both sides sample the full length).
Prints one `RESULT {json}` line per measurement: the median tokens/s of 3 calls after a warm-up for each sampler,
and for `prefopt ppo` (rule reward, the arithmetic prompts, PPO_STEPS updates of PROMPTS × 1) the mean seconds
per update of each phase from its metrics.jsonl (time/generate_s, time/score_s, time/update_s), the first
update left out. Not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dpo_throughput import build  # noqa: E402
from sampling_speed import timed  # noqa: E402

from prefopt.sampling import sample  # noqa: E402


def sampling(model_dir: Path, size: str, prompts: int, n: int, max_new: int) -> None:
    """tokens/s of prefopt.sampling.sample and of model.generate on the same prompts (RESULT lines)."""
    from transformers import AutoModelForCausalLM

    from prefopt.data.collate import left_padded

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model = model.to(device, torch.bfloat16 if gpu else torch.float32).eval()
    vocab, rng = model.config.vocab_size, random.Random(0)
    ids = [[rng.randrange(3, vocab) for _ in range(64)] for _ in range(prompts)]
    pad, eos = 0, 1  # build()'s word-level tokenizer

    def ours():
        return sample(model, ids, pad_id=pad, stop_ids=[eos], max_new_tokens=max_new, seed=0, temperature=1.0, n=n)

    def theirs():
        input_ids, attention_mask = left_padded(ids, pad, device)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=True, top_k=0,
                                 temperature=1.0, max_new_tokens=max_new, num_return_sequences=n,
                                 eos_token_id=[eos], pad_token_id=pad)
        return out[:, input_ids.shape[1]:]

    for system, fn in (("prefopt sampling.sample", ours), ("transformers generate", theirs)):
        seconds, out = timed(fn)
        tokens = int((out != pad).sum())
        print("RESULT " + json.dumps(dict(what="sampling", system=system, size=size, prompts=prompts, n=n,
                                          max_new_tokens=max_new, tokens=tokens, seconds=round(seconds, 3),
                                          tokens_per_s=round(tokens / seconds, 1))), flush=True)


def ppo_split(work: Path, model_dir: Path, size: str, prompts: int, max_new: int, steps: int) -> None:
    """`prefopt ppo` from the model with the rule reward: seconds per update in each phase (a RESULT line)."""
    recipe = work / "ppo.yaml"
    recipe.write_text(f"""model: {{path: {model_dir}}}
data: {{train: "builtin:arith/prompts/train/{prompts * (steps + 1)}", max_length: {64 + max_new}, max_prompt_length: 64}}
optim: {{lr: 1.0e-6, schedule: constant}}
train: {{max_steps: {steps}, micro_batch_size: {max(1, prompts // 4)}, output_dir: {work / 'ppo'}}}
ppo: {{rollout_batch_size: {prompts}, epochs: 1, max_new_tokens: {max_new}, reward: {{kind: rule}}}}
log: {{every: 1, console: false}}
eval: {{probe_size: 0}}
""")
    subprocess.run([sys.executable, "-m", "prefopt.cli", "ppo", "--recipe", str(recipe)], check=True)
    rows = [json.loads(line) for line in (work / "ppo" / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "time/generate_s" in row][1:] or rows[-1:]  # the first update warms up
    phases = {key: round(statistics.mean(row[f"time/{key}_s"] for row in rows), 3)
              for key in ("generate", "score", "update")}
    total = sum(phases.values())
    print("RESULT " + json.dumps(dict(what="ppo_update", size=size, rollout=prompts, max_new_tokens=max_new,
                                      updates=len(rows), seconds=phases,
                                      share={k: round(v / total, 3) for k, v in phases.items()})), flush=True)


def main() -> None:
    size = os.environ.get("SIZE", "0.5b")
    prompts, n = int(os.environ.get("PROMPTS", 64)), int(os.environ.get("N", 4))
    max_new, steps = int(os.environ.get("MAX_NEW", 128)), int(os.environ.get("PPO_STEPS", 4))
    work = Path(tempfile.mkdtemp(prefix="prefopt-rollout-"))
    model_dir, _, _ = build(work, size, int(os.environ.get("VOCAB", 151936)), 1)
    sampling(model_dir, size, prompts, n, max_new)
    ppo_split(work, model_dir, size, prompts, max_new, steps)


if __name__ == "__main__":
    main()
