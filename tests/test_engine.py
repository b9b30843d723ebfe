"""Recipe -> DeepSpeed config and LR schedule (no engine started here)."""

import json
import math

from prefopt.engine import ds_config, for_world, lr_lambda
from prefopt.recipe import load_recipe


def recipe(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text("model: {path: m}\n" + text)
    return load_recipe(p)


def test_deepspeed_json_is_used_as_is_with_batch_sizes_from_the_recipe(tmp_path):
    js = tmp_path / "ds.json"
    js.write_text(json.dumps({"zero_optimization": {"stage": 2, "overlap_comm": True}, "train_batch_size": 999,
                              "gradient_clipping": 0.3}))
    r = recipe(tmp_path, f"deepspeed: {{config: {js}}}\ntrain: {{micro_batch_size: 3, grad_accum: 2}}\n")
    cfg = ds_config(r, world=4)
    assert cfg["zero_optimization"] == {"stage": 2, "overlap_comm": True} and cfg["gradient_clipping"] == 0.3
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"]) == (3, 2, 24)


def test_stage3_and_offload_from_the_recipe(tmp_path):
    r = recipe(tmp_path, "deepspeed: {stage: 3, offload_optimizer: true, offload_param: true}\ntrain: {precision: fp32}\n")
    z = ds_config(r, world=1)["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"] == {"device": "cpu"} and z["offload_param"] == {"device": "cpu"}
    assert "offload_optimizer" not in ds_config(r, world=1, trainable=False)["zero_optimization"]


def test_stage3_keeps_parameters_resident_only_on_a_single_rank_without_param_offload(tmp_path):
    r = recipe(tmp_path, "deepspeed: {stage: 3}\n")
    key = "stage3_param_persistence_threshold"
    assert ds_config(r, world=1)["zero_optimization"][key] >= 10**12  # every parameter: no gathers
    assert key not in ds_config(r, world=2)["zero_optimization"]  # sharding is the point: DeepSpeed's default
    r.deepspeed.offload_param = True
    assert key not in ds_config(r, world=1)["zero_optimization"]  # the parameters must live on the CPU


def test_zero3_on_a_single_rank_runs_as_stage0_unless_offloading_or_a_json_asks_for_more(tmp_path):
    r = recipe(tmp_path, "deepspeed: {stage: 3}\n")
    fast, note = for_world(r, world=1)
    assert fast.deepspeed.stage == 0 and "runs as ZeRO stage 0" in note
    assert r.deepspeed.stage == 3  # the user's recipe is not changed
    assert for_world(r, world=2) == (r, None)
    for text in ("deepspeed: {stage: 3, offload_param: true}\n", "deepspeed: {stage: 3, offload_optimizer: true}\n",
                 "deepspeed: {stage: 2}\n"):
        assert for_world(recipe(tmp_path, text), world=1)[1] is None


def test_warmup_then_cosine_and_linear(tmp_path):
    """warm-up 4 of 14 steps: (s+1)/4, then 0.1 + 0.9·½(1 + cos(π·(s-4)/10)) (cosine) or 0.1 + 0.9·(1 - (s-4)/10)."""
    r = recipe(tmp_path, "optim: {warmup_steps: 4, schedule: cosine, min_lr_ratio: 0.1}\n")
    f = lr_lambda(r, total_steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)) and f(14) == 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi))
    r.optim.schedule = "linear"
    assert lr_lambda(r, 14)(9) == 0.1 + 0.9 * 0.5


def test_bf16_at_stage0_leaves_precision_and_clipping_to_prefopts_masters(tmp_path):
    """prefopt/masters.py casts, clips and keeps the fp32 masters; DeepSpeed's own wrapper would do both again."""
    r = recipe(tmp_path, "train: {precision: bf16}\noptim: {grad_clip: 0.7}\n")
    cfg = ds_config(r, world=2)
    assert cfg["bf16"] == {"enabled": False} and cfg["gradient_clipping"] == 0.0
    assert cfg["communication_data_type"] == "bf16"  # the ranks average bf16 gradients as DeepSpeed's bf16 does
    r.deepspeed.stage = 2  # ZeRO keeps its own fp32 partitions
    cfg = ds_config(r, world=2)
    assert cfg["bf16"] == {"enabled": True} and cfg["gradient_clipping"] == 0.7 and "communication_data_type" not in cfg
