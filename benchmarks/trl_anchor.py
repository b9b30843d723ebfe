"""TRL's anchor workload (../shared/bench/trl_dpo_bench.py) with prefopt's benchmark sizes added (e.g. SIZE=small,
the CPU point of issue #11), so both systems run the same shapes. Run it with TRL's Python (a separate virtualenv
on CPU); `benchmarks/vs_trl.sh` does. TRL_ANCHOR overrides the anchor script's path. With MEMORY=1
(benchmarks/step_memory.py runs it so) it instead measures what the anchor's second step holds beyond model states.
"""

import importlib.util
import os
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from dpo_throughput import SIZES, shape  # noqa: E402  (stdlib-only at import time)

anchor = Path(os.environ.get("TRL_ANCHOR", here.parent.parent / "shared" / "bench" / "trl_dpo_bench.py"))
spec = importlib.util.spec_from_file_location("trl_dpo_bench", anchor)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
bench.SIZES.update({k: v for k, v in SIZES.items() if k not in bench.SIZES})


def unseen(fn):
    """`fn` with its temporaries left uncounted (it writes its results into buffers made before it)."""
    from torch.utils._python_dispatch import _disable_current_modes

    def run(*args, **kwargs):
        with _disable_current_modes():
            return fn(*args, **kwargs)

    return run


def measure_memory() -> None:
    """The anchor's trainer and data in bf16 (as on its GPU), LAYERS deep, 2 steps; the second under LiveBytes,
    split at the optimizer step like prefopt's (benchmarks/step_memory.py)."""
    import copy

    import torch
    from datasets import Dataset
    from live_bytes import LiveBytes
    from step_memory import report
    from trl.kernels import chunked_logprob

    size, bs, vocab = os.environ.get("SIZE", "0.5b"), int(os.environ.get("BS", 8)), int(os.environ.get("VOCAB", 151936))
    torch.manual_seed(0)
    cfg = bench.Qwen2Config(vocab_size=vocab, max_position_embeddings=2048, tie_word_embeddings=True, **shape(size))
    model = bench.Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    args = bench.DPOConfig(
        output_dir="/tmp/trl_bench", per_device_train_batch_size=bs, max_steps=2, max_length=1024, bf16=True,
        use_cpu=not torch.cuda.is_available(), gradient_checkpointing=os.environ.get("GC", "0") == "1",
        logging_steps=10, report_to=[], save_strategy="no",
        learning_rate=1e-6, beta=0.1, precompute_ref_log_probs=os.environ.get("PRECOMPUTE", "0") == "1",
        dataloader_num_workers=0)
    trainer = bench.DPOTrainer(model=model, ref_model=copy.deepcopy(model).eval(), args=args,
                               train_dataset=Dataset.from_list(bench.make_pairs(bs * 4, vocab)),
                               processing_class=bench.make_tokenizer(vocab))
    meter, training_step, calls = LiveBytes(model.parameters()), trainer.training_step, []
    # On a GPU TRL's head folds each [tokens, vocab] tile in a Triton kernel's registers and accumulates fp32
    # products in place; on the CPU its torch stand-ins make fp32 copies of the tile that a GPU never holds.
    for name in ("_forward_tile", "_backward_tile", "_addmm_fp32"):
        setattr(chunked_logprob, name, unseen(getattr(chunked_logprob, name)))

    def measured(*a, **k):
        calls.append(1)
        if len(calls) != 2:  # the first step allocates the optimizer's states: model states, not measured
            return training_step(*a, **k)
        optimizer = trainer.optimizer
        optimizer_step = optimizer.step

        def step_and_stop(*a, **k):
            optimizer_step(*a, **k)
            meter.mark("optimizer step")
            meter.__exit__(None, None, None)
            optimizer.step = optimizer_step

        meter.__enter__()
        optimizer.step = step_and_stop
        out = training_step(*a, **k)
        meter.mark("forward+backward")
        return out

    trainer.training_step = measured
    trainer.train()
    print(report(meter), flush=True)


measure_memory() if os.environ.get("MEMORY") == "1" else bench.main()
