"""Checkpoints that any ZeRO stage and world size can resume: per-parameter fp32 weights and Adam moments.

A recipe written for many GPUs with `deepspeed.stage: 3` runs at ZeRO stage 0 on a single rank (there is nothing
to shard; prefopt/engine.py `for_world`). DeepSpeed's stage-0 checkpoint cannot be loaded by a ZeRO-3 engine, so
such a run writes this form instead: for every trainable parameter, by name, its full fp32 value and optimizer
moments, plus the Adam step, the LR schedule and prefopt's client state. Loading sets each parameter through
DeepSpeed's tensor-fragment API (each rank keeps its own shard under ZeRO-3), so a later run on 8 GPUs resumes it.
Frozen parameters (a LoRA run's base) are left out, as in every prefopt checkpoint: they reload from model.path.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.distributed as dist

from prefopt.engine import partitioned

FILE = "portable.pt"
MOMENTS = ("exp_avg", "exp_avg_sq")  # torch AdamW's state besides `step`


def is_portable(path: Path) -> bool:
    return (path / FILE).is_file()


def _trainable(engine) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in engine.module.named_parameters() if p.requires_grad]


def _sharded(p) -> bool:
    """Whether DeepSpeed keeps this parameter's fp32 master elsewhere (ZeRO-3 shards, ZeRO-1/2 or bf16 partitions)."""
    return partitioned([p]) or hasattr(p, "_hp_mapping")


def _masters(engine) -> dict[int, torch.Tensor]:
    """id(parameter) -> its fp32 master where one is kept per parameter at stage 0 with low-precision weights:
    prefopt's MasterWeightAdamW or DeepSpeed's unfused fp16/bf16 wrapper (a DeepSpeed JSON's choice). The
    optimizer steps the masters, so their states hold the moments."""
    opt = engine.optimizer
    if hasattr(opt, "master_of"):
        return opt.master_of()
    low, high = getattr(opt, "fp16_groups", None), getattr(opt, "fp32_groups", None)
    if not low or not high:
        return {}
    return {id(p): m for lows, highs in zip(low, high) for p, m in zip(lows, highs)}


def _base_optimizer(engine):
    """The torch optimizer whose `state` holds the moments (DeepSpeed's wrappers keep it as `.optimizer`)."""
    opt = engine.optimizer
    return getattr(opt, "optimizer", opt)


def _create_state(engine, base) -> None:
    """Give every tensor the optimizer updates an AdamW state (torch creates it at the first step; a resumed run
    must fill it before), the step where torch's AdamW keeps it: on the device only for fused or capturable.

    ZeRO-3 puts its flat fp32 partitions into the groups only while it steps, so they are listed from it.
    """
    tensors = [t for group in base.param_groups for t in group["params"]]
    tensors += getattr(engine.optimizer, "fp32_partitioned_groups_flat", [])
    flags = base.param_groups[0]
    for t in tensors:
        state = base.state[t]  # a defaultdict
        if not state:
            where = t.device if flags.get("fused") or flags.get("capturable") else "cpu"
            state["step"] = torch.zeros((), dtype=torch.float32, device=where)
            for k in MOMENTS:
                state[k] = torch.zeros_like(t, memory_format=torch.preserve_format)


def save(engine, directory: Path, client_state: dict | None = None) -> None:
    """Write `directory/portable.pt` (full tensors on CPU, gathered where sharded)."""
    from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state

    base, masters = _base_optimizer(engine), _masters(engine)
    params = {}
    for name, p in _trainable(engine):
        if _sharded(p):
            entry = {"fp32": safe_get_full_fp32_param(p), **{k: safe_get_full_optimizer_state(p, k) for k in MOMENTS}}
        else:  # stage 0: the fp32 master beside a low-precision weight, or the parameter itself in fp32
            master = masters.get(id(p), p)
            state = base.state.get(master, {})
            entry = {"fp32": master.detach(), **{k: state.get(k, torch.zeros_like(master)) for k in MOMENTS}}
        params[name] = {k: v.detach().float().cpu().clone().view(p.ds_shape if partitioned([p]) else p.shape)
                        for k, v in entry.items()}
    steps = [float(s["step"]) for s in base.state.values() if "step" in s]
    blob = {"params": params, "adam_step": steps[0] if steps else 0.0,
            "scheduler": engine.lr_scheduler.state_dict() if engine.lr_scheduler is not None else None,
            "global_steps": engine.global_steps, "global_samples": engine.global_samples, "client": client_state}
    if dist.get_rank() == 0:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(blob, directory / FILE)


def load(engine, directory: Path) -> dict | None:
    """Set the engine's weights, moments, step and schedule from `directory/portable.pt`; its client state."""
    import deepspeed
    from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

    # Memory-mapped: the ranks of a multi-rank resume share the file's pages instead of each holding all of it
    # (12 bytes per parameter: 48 GB per rank at 4B parameters).
    blob = torch.load(directory / FILE, weights_only=True, map_location="cpu", mmap=True)
    named = _trainable(engine)
    missing = sorted({name for name, _ in named} - set(blob["params"]))
    if missing:
        raise ValueError(f"{directory / FILE}: no state for {len(missing)} trainable parameters, e.g. {missing[:3]}")
    params = [p for _, p in named]
    zero3 = partitioned(params)
    # The module's own (low-precision) weights: gathered under ZeRO-3, set on rank 0, re-partitioned on exit.
    ctx = deepspeed.zero.GatheredParameters(params, modifier_rank=0) if zero3 else contextlib.nullcontext()
    with ctx, torch.no_grad():
        for name, p in named:
            p.data.copy_(blob["params"][name]["fp32"].to(p.device, p.dtype))
    base, masters = _base_optimizer(engine), _masters(engine)
    _create_state(engine, base)
    for name, p in named:
        entry = {k: v.to(p.device) for k, v in blob["params"][name].items()}
        if _sharded(p):  # each rank keeps its own slice of the fp32 master and of each moment
            safe_set_full_fp32_param(p, entry["fp32"])
            for k in MOMENTS:
                safe_set_full_optimizer_state(p, entry[k], k)
        else:
            master = masters.get(id(p), p)
            with torch.no_grad():
                master.copy_(entry["fp32"])  # a no-op copy when the parameter is its own master
            for k in MOMENTS:
                base.state[master][k].copy_(entry[k])
    for state in base.state.values():  # one step count for all (DeepSpeed's flat partitions or the parameters)
        state["step"].fill_(blob["adam_step"])
    if blob["scheduler"] is not None and engine.lr_scheduler is not None:
        engine.lr_scheduler.load_state_dict(blob["scheduler"])
        # LambdaLR sets the groups' lr only when it steps; the next step must already use the restored one
        for group, lr in zip(engine.lr_scheduler.optimizer.param_groups, engine.lr_scheduler.get_last_lr()):
            group["lr"] = lr
    engine.global_steps, engine.global_samples = blob["global_steps"], blob["global_samples"]
    return blob["client"]
