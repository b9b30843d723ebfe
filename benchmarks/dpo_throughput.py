"""prefopt DPO throughput on the anchor workload of ../shared/bench/trl_dpo_bench.py (random Qwen2 shapes).

Same synthetic word-level data (prompt 64-256 words, responses 64-512), same batch of 8 pairs, same token count
(non-pad tokens of prompt+chosen and prompt+rejected), so the figure compares 1:1 with TRL's when both run in
the same device session:

    SIZE=0.5b BS=8 STEPS=30 STAGE=3 python benchmarks/dpo_throughput.py
    SIZE=0.5b BS=8 GC=1 python ../shared/bench/trl_dpo_bench.py           # TRL defaults, same machine

Env: SIZE (tiny | 0.5b | 1.5b), BS, STEPS, STAGE (ZeRO stage), PRECOMPUTE (1: precomputed reference),
GC (1: gradient checkpointing), VOCAB. Prints one `RESULT {json}` line. Not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

SIZES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}


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
                                         **SIZES[size]))
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


def main() -> None:
    import torch

    from prefopt.objectives import OBJECTIVES
    from prefopt.recipe import load_recipe
    from prefopt.train import Trainer

    size, bs, steps = os.environ.get("SIZE", "0.5b"), int(os.environ.get("BS", 8)), int(os.environ.get("STEPS", 30))
    stage, vocab = int(os.environ.get("STAGE", 3)), int(os.environ.get("VOCAB", 151936))
    precompute, gc = os.environ.get("PRECOMPUTE", "0") == "1", os.environ.get("GC", "0") == "1"
    work = Path(tempfile.mkdtemp(prefix="prefopt-bench-"))
    model_dir, data, per_pair = build(work, size, vocab, bs * (steps + 2))
    recipe_path = work / "bench.yaml"
    recipe_path.write_text(f"""model: {{path: {model_dir}, gradient_checkpointing: {str(gc).lower()}}}
data: {{train: {data}, max_length: 1024, max_prompt_length: 512, shuffle: false}}
loss: {{beta: 0.1}}
optim: {{lr: 1.0e-6, schedule: constant}}
train: {{max_steps: {steps}, micro_batch_size: {bs}, precompute_ref: {str(precompute).lower()},
         ref_cache_dir: {work / 'ref'}, output_dir: {work / 'run'}}}
deepspeed: {{stage: {stage}}}
log: {{every: 5, console: false}}
eval: {{probe_size: 0}}
""")
    recipe = load_recipe(recipe_path)
    trainer = Trainer(recipe, OBJECTIVES["dpo"], resume=False)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    windows = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]  # drop the first window (warm-up)
    out = dict(system="prefopt", size=size, bs=bs, steps=steps, zero_stage=stage, grad_ckpt=gc, precompute_ref=precompute,
               tokens_per_pair=round(per_pair, 1), tokens_per_s=round(sum(windows) / max(len(windows), 1), 1),
               total_s=round(total, 1), device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
