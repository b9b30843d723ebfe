"""prefopt DPO throughput on the anchor workload of ../shared/bench/trl_dpo_bench.py (random Qwen2 shapes).

Same synthetic word-level data (prompt 64-256 words, responses 64-512), same batch of 8 pairs, same token count
(non-pad tokens of prompt+chosen and prompt+rejected), so the figure compares 1:1 with TRL's when both run in
the same device session:

    SIZE=0.5b BS=8 STEPS=30 STAGE=3 python benchmarks/dpo_throughput.py
    SIZE=0.5b BS=8 GC=1 python ../shared/bench/trl_dpo_bench.py           # TRL defaults, same machine

Env: SIZE (tiny | small | 0.5b | 1.5b), BS, STEPS, STAGE (ZeRO stage), PRECOMPUTE (1: precomputed reference),
GC (1: gradient checkpointing), LAYOUT (auto | packed | padded), MAX_TOKENS (train.max_tokens_per_batch; BS is
then the pairs per step), VOCAB, LAYERS (the depth, instead of SIZE's), DS_JSON (a DeepSpeed config used as is),
PROFILE (1: a torch.profiler table of the steps instead: steps 3 to STEPS-1, so neither the reference pass,
the first steps nor the end-of-run export is in it; SHAPES=1 splits it by input shape). It runs `prefopt dpo` as a user
would and prints one `RESULT {json}` line from its metrics.jsonl. `benchmarks/vs_trl.sh` runs it beside TRL.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2),
    # the CPU point of issue #11: hidden 256, 4 layers (with VOCAB=32000), the anchor's length mix
    "small": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}


def shape(size: str) -> dict:
    """The Qwen2 shape of `size`, with LAYERS (if set) as its depth: benchmarks/step_memory.py measures at two
    depths and extrapolates to the full one."""
    layers = os.environ.get("LAYERS")
    return {**SIZES[size], **({"num_hidden_layers": int(layers)} if layers else {})}


def build(workdir: Path, size: str, vocab: int, n_pairs: int) -> tuple[Path, Path, float]:
    """A saved random Qwen2 + word-level tokenizer, and the pairs JSONL; returns (model, data, tokens/pair)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab, max_position_embeddings=2048, tie_word_embeddings=True,
                                         **shape(size)))
    model_dir = workdir / "model"
    model.save_pretrained(model_dir)
    fast.save_pretrained(model_dir)
    rng = random.Random(0)
    text = lambda k: " ".join(f"w{rng.randrange(3, vocab)}" for _ in range(k))
    rows = [dict(prompt=text(rng.randint(64, 256)), chosen=" " + text(rng.randint(64, 512)),
                 rejected=" " + text(rng.randint(64, 512))) for _ in range(n_pairs)]
    data = workdir / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    per_pair = sum(2 * len(r["prompt"].split()) + len(r["chosen"].split()) + len(r["rejected"].split())
                   for r in rows) / len(rows)
    return model_dir, data, per_pair


def settings() -> tuple[int, bool, bool, int]:
    """STAGE, PRECOMPUTE, GC and MAX_TOKENS from the environment: the recipe's, and the RESULT line's."""
    return (int(os.environ.get("STAGE", 3)), os.environ.get("PRECOMPUTE", "0") == "1",
            os.environ.get("GC", "0") == "1", int(os.environ.get("MAX_TOKENS", 0)))


def write_recipe(work: Path, model_dir: Path, data: Path, steps: int, bs: int, extra_train: str = "") -> Path:
    """The benchmark's DPO recipe from the environment (`settings`, LAYOUT, DS_JSON)."""
    stage, precompute, gc, max_tokens = settings()
    recipe_path = work / "bench.yaml"
    ds = f"{{stage: {stage}}}"
    if os.environ.get("DS_JSON"):  # a whole DeepSpeed config, to try ZeRO knobs the recipe keys do not expose
        (work / "ds.json").write_text(os.environ["DS_JSON"])
        ds = f"{{config: {work / 'ds.json'}}}"
    recipe_path.write_text(f"""model: {{path: {model_dir}, gradient_checkpointing: {str(gc).lower()}}}
data: {{train: {data}, max_length: 1024, max_prompt_length: 512, shuffle: false}}
loss: {{beta: 0.1}}
optim: {{lr: 1.0e-6, schedule: constant}}
train: {{max_steps: {steps}, micro_batch_size: {bs}, precompute_ref: {str(precompute).lower()},
         ref_cache_dir: {work / 'ref'}, output_dir: {work / 'run'}, layout: {os.environ.get('LAYOUT', 'auto')},
         max_tokens_per_batch: {max_tokens}{extra_train}}}
deepspeed: {ds}
log: {{every: 5, console: false}}
eval: {{probe_size: 0}}
""")
    return recipe_path


def main() -> None:
    import torch

    size, bs, steps = os.environ.get("SIZE", "0.5b"), int(os.environ.get("BS", 8)), int(os.environ.get("STEPS", 30))
    stage, precompute, gc, max_tokens = settings()
    vocab = int(os.environ.get("VOCAB", 151936))
    work = Path(tempfile.mkdtemp(prefix="prefopt-bench-"))
    model_dir, data, per_pair = build(work, size, vocab, bs * (steps + 2))
    recipe_path = write_recipe(work, model_dir, data, steps, bs)
    if os.environ.get("PROFILE") == "1":  # in-process, under torch.profiler: where the step time goes
        from prefopt.loop import Trainer
        from prefopt.objectives import OBJECTIVES
        from prefopt.recipe import load_recipe

        trainer = Trainer(load_recipe(recipe_path), OBJECTIVES["dpo"], resume=False)
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if torch.cuda.is_available() else [])
        shapes = os.environ.get("SHAPES") == "1"  # one row per input shape: which tensor a kernel's time goes to
        # Only steady steps: the run's start (the precomputed reference's pass) and its end (the export, one
        # device-to-host copy per weight tensor) would otherwise fill the table's top rows.
        record = torch.profiler.schedule(wait=1, warmup=1, active=max(1, steps - 3), repeat=1)
        with torch.profiler.profile(activities=acts, record_shapes=shapes, schedule=record) as prof:
            step_once = trainer.stepper.run
            trainer.stepper.run = lambda *args: (step_once(*args), prof.step())[0]
            trainer.train()
        print(f"profiled: steps 3 to {steps - 1} of {steps}", flush=True)
        key = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
        table = prof.key_averages(group_by_input_shape=shapes).table(sort_by=key, row_limit=int(os.environ.get("ROWS", 30)))
        print(table, flush=True)
        return
    # The real command a user runs, in its own process, as the acceptance asks.
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "prefopt.cli", "dpo", "--recipe", str(recipe_path)], check=True)
    total = time.perf_counter() - t0
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    windows = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]  # drop the first window (warm-up)
    out = dict(system="prefopt", size=size, bs=bs, steps=steps, zero_stage=stage, grad_ckpt=gc, precompute_ref=precompute,
               tokens_per_pair=round(per_pair, 1), tokens_per_s=round(sum(windows) / max(len(windows), 1), 1),
               total_s=round(total, 1), device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               peak_gib=round(rows[-1]["mem/peak_gib"], 2) if "mem/peak_gib" in rows[-1] else None,
               resident_gib=round(rows[-1]["mem/resident_gib"], 2) if "mem/resident_gib" in rows[-1] else None,
               final_loss=rows[-1].get("loss"), layout=os.environ.get("LAYOUT", "auto"),
               padding=rows[-1].get("perf/padding"), max_tokens=max_tokens, forwards=rows[-1].get("perf/forwards"))
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
