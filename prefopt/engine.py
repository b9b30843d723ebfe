"""The one place that turns a recipe into a DeepSpeed engine; also distributed set-up and the HF export."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import socket
from pathlib import Path

import torch

from prefopt.fsutil import replace_dir
from prefopt.masters import MasterWeightAdamW
from prefopt.schema import Recipe

SINGLE_RANK_PERSISTENCE = 10**12  # parameters below this many elements are never partitioned
DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what launchers set


def env_for_child() -> dict[str, str]:
    """This process's environment without the torch.distributed variables, for a child that is its own world."""
    return {k: v for k, v in os.environ.items() if k not in DIST_VARS}


def partitioned(params) -> bool:
    """Whether any of these parameters is ZeRO-3 partitioned (DeepSpeed marks those with `ds_id`)."""
    return any(hasattr(p, "ds_id") for p in params)


def on_gpu() -> bool:
    return torch.cuda.is_available()


def setup_distributed() -> tuple[int, int]:
    """Initialise torch.distributed (gloo on CPU, nccl on GPU), also for a plain single process; (rank, world)."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if on_gpu() else "cpu")
    if "RANK" not in os.environ:  # a plain `prefopt dpo ...`: a world of one
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    import deepspeed
    import torch.distributed as dist

    if not dist.is_initialized():
        if os.environ["WORLD_SIZE"] == "1" and not on_gpu():
            _no_shared_memory_reduce()
        deepspeed.init_distributed(dist_backend="nccl" if on_gpu() else "gloo", verbose=False)
    if on_gpu():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        # cuDNN's attention builds an execution plan per new sequence length (~12 ms of CPU per call on an H100,
        # measured): with variable-length preference batches that was most of the step. The memory-efficient
        # kernel takes the padding mask with no planning cost.
        torch.backends.cuda.enable_cudnn_sdp(False)
    return dist.get_rank(), dist.get_world_size()


def _no_shared_memory_reduce() -> None:
    """A world of one on the CPU: skip DeepSpeed's shared-memory all-reduce kernel, which it compiles on first use
    (25-55 s on a fresh machine) and which a single process never calls."""
    import importlib

    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None


def device() -> torch.device:
    return torch.device(f"cuda:{torch.cuda.current_device()}") if on_gpu() else torch.device("cpu")


def for_world(recipe: Recipe, world: int) -> tuple[Recipe, str | None]:
    """The recipe this world runs: ZeRO-3 on a single rank becomes stage 0, with a note saying so (else None).

    One rank has nothing to shard, and ZeRO-3's machinery (hooks around every module, flat fp32 partitions, copies
    between them) still cost half the throughput on one H100 with every parameter kept resident. Its checkpoints
    are written in the portable form (prefopt/portable.py), which a ZeRO-3 run on more ranks resumes. Offloading
    and a DeepSpeed JSON given as is keep stage 3: they ask for more than sharding.
    """
    d = recipe.deepspeed
    if world != 1 or d.stage != 3 or d.offload_param or d.offload_optimizer or d.config:
        return recipe, None
    fast = dataclasses.replace(recipe, deepspeed=dataclasses.replace(d, stage=0))
    return fast, ("deepspeed.stage: 3 on a single rank runs as ZeRO stage 0 (one rank has nothing to shard); "
                  "checkpoints are portable: a ZeRO-3 run on more ranks resumes them")


def use_bf16(recipe: Recipe) -> bool:
    return recipe.train.precision == "bf16" or (recipe.train.precision == "auto" and on_gpu())


def own_masters(recipe: Recipe) -> bool:
    """bf16 at ZeRO stage 0: prefopt's MasterWeightAdamW instead of DeepSpeed's wrapper, which holds every
    gradient in fp32 at once and steps once with zero gradients at start-up (prefopt/masters.py)."""
    d = recipe.deepspeed
    return use_bf16(recipe) and d.stage == 0 and not d.config and not d.offload_optimizer


def ds_config(recipe: Recipe, world: int, trainable: bool = True) -> dict:
    """DeepSpeed config from the recipe (or its JSON as is), with batch sizes always taken from train.*."""
    t, d = recipe.train, recipe.deepspeed
    if d.config:
        cfg = json.loads(Path(d.config).read_text())
    else:
        zero = {"stage": d.stage}
        if d.stage == 3:
            zero.update(stage3_gather_16bit_weights_on_model_save=True)
            if world == 1 and not d.offload_param:
                # One rank holds every shard anyway: keeping all parameters resident turns the per-module
                # gather/release hooks into no-ops (they halved throughput at 0.5B on one H100).
                zero.update(stage3_param_persistence_threshold=SINGLE_RANK_PERSISTENCE)
        if d.offload_optimizer and trainable:
            zero["offload_optimizer"] = {"device": "cpu"}
        if d.offload_param and d.stage == 3:
            zero["offload_param"] = {"device": "cpu"}
        own = own_masters(recipe) and trainable  # prefopt/masters.py casts, clips and keeps the fp32 masters
        cfg = {"zero_optimization": zero, "gradient_clipping": 0.0 if own else recipe.optim.grad_clip,
               "bf16": {"enabled": use_bf16(recipe) and not own}, "steps_per_print": 10**9,
               "wall_clock_breakdown": False}
        if own:  # ranks average the bf16 gradients in bf16, as with DeepSpeed's bf16 (not through an fp32 copy)
            cfg["communication_data_type"] = "bf16"
    cfg.update(train_micro_batch_size_per_gpu=t.micro_batch_size, gradient_accumulation_steps=t.grad_accum,
               train_batch_size=t.micro_batch_size * t.grad_accum * world)
    if not trainable:
        cfg.pop("gradient_clipping", None)
        cfg["zero_optimization"].pop("offload_optimizer", None)
    return cfg


def lr_lambda(recipe: Recipe, total_steps: int):
    """Linear warm-up, then cosine or linear decay to `min_lr_ratio`, or constant."""
    o = recipe.optim

    def f(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        frac = min(1.0, (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps))
        shape = 0.5 * (1 + math.cos(math.pi * frac)) if o.schedule == "cosine" else 1 - frac
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * shape

    return f


def build_engine(model, recipe: Recipe, world: int, total_steps: int):
    """Wrap a trainable model: torch AdamW (no FusedAdam build; over fp32 masters for bf16 at stage 0), the LR
    schedule, the ZeRO stage from the recipe."""
    import deepspeed

    o = recipe.optim
    fused = on_gpu() and not recipe.deepspeed.offload_optimizer  # one kernel for all parameters, not several each
    adamw = dict(lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, fused=fused or None)
    params = [p for p in model.parameters() if p.requires_grad]
    if own_masters(recipe):
        # What DeepSpeed's bf16 set-up does, before the masters are taken: parameters to bf16 on the device,
        # buffers (rotary frequencies) left in fp32
        model.to(device())
        for p in model.parameters():
            p.data = p.data.to(torch.bfloat16)  # the same Parameter objects: `params` still names them
        opt = MasterWeightAdamW(params, o.grad_clip, **adamw)
    else:
        opt = torch.optim.AdamW(params, **adamw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, total_steps))
    engine, *_ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                      config=ds_config(recipe, world), dist_init_required=False)
    return engine


def begin_micro_step(engine) -> None:
    """What DeepSpeed's `engine.forward` does before a forward, for code that calls `engine.module` directly.

    ZeRO (stages 1-3) counts micro-steps there (`clear_backward_seen_flag`): without it every micro-batch's
    gradient overwrites the last instead of accumulating, so `train.grad_accum > 1` would learn from the final
    micro-batch only (seen with DeepSpeed 0.19.8; tests/test_loop.py checks accumulation at every stage).
    """
    clear = getattr(engine.optimizer, "clear_backward_seen_flag", None)
    if engine.zero_optimization_stage() > 0 and clear is not None:
        clear()


def build_frozen(model, recipe: Recipe, world: int):
    """The reference: never stepped; sharded like the policy under ZeRO-3, else a plain module on the device."""
    model.eval().requires_grad_(False)
    if recipe.deepspeed.stage == 3:
        import deepspeed

        engine, *_ = deepspeed.initialize(model=model, config=ds_config(recipe, world, trainable=False),
                                          dist_init_required=False)
        return engine.module
    return model.to(device(), dtype=torch.bfloat16 if use_bf16(recipe) else torch.float32)


# ------------------------------------------------------------------------------------------------ checkpoints

def gathered_state(engine, rank: int) -> dict | None:
    """The module's full state dict as fp32 CPU tensors on rank 0 (gathered when ZeRO-3 shards it); None elsewhere."""
    import deepspeed

    module = engine.module
    params = list(module.parameters())
    zero3 = partitioned(params)
    ctx = deepspeed.zero.GatheredParameters(params, modifier_rank=None) if zero3 else contextlib.nullcontext()
    with ctx:
        if rank != 0:
            return None
        return {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
                for k, v in module.state_dict().items()}


def export_hf(engine, tokenizer, out: Path, rank: int) -> None:
    """Save the policy as a HF directory (`from_pretrained`-loadable), gathered from ZeRO-3 when sharded."""
    state, module = gathered_state(engine, rank), engine.module
    if rank != 0:
        return
    if hasattr(module, "save_pretrained"):
        replace_dir(out, lambda tmp: (module.save_pretrained(tmp, state_dict=state),
                                      tokenizer is not None and tokenizer.save_pretrained(tmp)))
    else:  # the toy: a plain torch module
        replace_dir(out, lambda tmp: (tmp.mkdir(parents=True), torch.save(state, tmp / "toy_mlp.pt")))
