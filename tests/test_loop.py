"""Training-core invariants on CPU: run directory contents, batch/accumulation and ZeRO equivalence, resume after
a preemption signal or a hard kill, precomputed reference log-probs, and the W&B offline run's contents."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prefopt.loop import train
from prefopt.objectives import OBJECTIVES
from prefopt.recipe import load_recipe
from prefopt.tasks import arith
from tests.conftest import read_rows, run_cli, tiny_dpo_recipe, two_ranks, write_jsonl

TINY_KEYS = {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
             "logps/rejected", "grad_norm", "lr", "tokens_per_s", "logps/ref_chosen", "logps/ref_rejected",
             "3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/log_grad_chosen", "3d/log_grad_rejected",
             "3d/log_grad_ratio", "3d/param_grad_chosen", "3d/param_grad_rejected", "3d/chosen_below_ref_frac",
             "3d/unseen_logp", "3d/entropy"}


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    return tiny_dpo_recipe(tmp_path_factory.mktemp("recipes"))


def run(recipe_file, tmp_path, name, *sets, objective="dpo"):
    r = load_recipe(recipe_file, [f"train.output_dir={tmp_path / name}", *sets])
    return read_rows(train(r, OBJECTIVES[objective]))


def losses(rows):
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_batch_4x1_equals_batch_1x4(recipe_file, tmp_path, stage):
    """At every ZeRO stage (ZeRO-3 once overwrote, not accumulated, the gradients of earlier micro-batches). One
    process runs `deepspeed.stage: 3` as stage 0, so stage 3 comes as a DeepSpeed JSON, which is used as is."""
    zero = f"deepspeed.stage={stage}"
    if stage == 3:
        (tmp_path / "z3.json").write_text('{"zero_optimization": {"stage": 3}, "gradient_clipping": 1.0}')
        zero = f"deepspeed.config={tmp_path / 'z3.json'}"
    a = run(recipe_file, tmp_path, "a", "train.micro_batch_size=4", "train.grad_accum=1", zero)
    b = run(recipe_file, tmp_path, "b", "train.micro_batch_size=1", "train.grad_accum=4", zero)
    assert len(losses(a)) == 6
    torch.testing.assert_close(losses(a), losses(b), atol=1e-5, rtol=0)
    assert losses(a)[0] != losses(a)[-1]  # it trained


def test_zero3_one_process_and_two_ranks_match_zero0(recipe_file, tmp_path):
    z0 = run(recipe_file, tmp_path, "z0", "deepspeed.stage=0")
    z3 = run(recipe_file, tmp_path, "z3", "deepspeed.stage=3")
    torch.testing.assert_close(losses(z3), losses(z0), atol=1e-4, rtol=0)
    # The two ranks cut their pairs by a token budget (one or two forwards a step, the same on both ranks)
    res = run_cli("dpo", "-r", recipe_file, "--set", "deepspeed.stage=3", "--set", "train.micro_batch_size=2",
                  "--set", "train.max_tokens_per_batch=130", "--set", f"train.output_dir={tmp_path / 'z3x2'}",
                  launcher=two_ranks(29531))
    assert res.returncode == 0, res.stderr[-3000:]
    two = read_rows(tmp_path / "z3x2")
    assert {r["perf/forwards"] for r in two if "perf/forwards" in r} == {1.0, 2.0}
    torch.testing.assert_close(losses(two), losses(z0), atol=1e-4, rtol=0)
    # the split gradient norms agree too, gathered from two ranks' shards; they are taken on a step's first forward,
    # so they compare where the two ranks' first forward holds the same 4 pairs as the single process's
    one_forward = {r["step"] for r in two if r.get("perf/forwards") == 1.0}
    pg = lambda rows: [r["3d/param_grad_chosen"] for r in rows if "3d/param_grad_chosen" in r and r["step"] in one_forward]
    assert pg(z0)
    torch.testing.assert_close(pg(two), pg(z0), atol=1e-4, rtol=1e-4)
    # shared prompts on two ZeRO-3 ranks, cut by the same budget (over fewer computed tokens): the same losses
    res = run_cli("dpo", "-r", recipe_file, "--set", "deepspeed.stage=3", "--set", "train.micro_batch_size=2",
                  "--set", "train.max_tokens_per_batch=130", "--set", "train.layout=shared_prompt",
                  "--set", f"train.output_dir={tmp_path / 'z3x2s'}",
                  launcher=two_ranks(29537))
    assert res.returncode == 0, res.stderr[-3000:]
    torch.testing.assert_close(losses(read_rows(tmp_path / "z3x2s")), losses(z0), atol=1e-4, rtol=0)


def test_gradient_checkpointing_trains_as_without_in_one_process_and_on_two_zero3_ranks(recipe_file, tmp_path):
    """Checkpointed layers recompute their activations in backward (also for the gradient-split diagnostic's two
    extra backward passes, at steps 3 and 6): the same losses in fp32, and on two ZeRO-3 ranks, whose hooks gather
    each layer's weights again for its recompute."""
    plain = run(recipe_file, tmp_path, "plain", "deepspeed.stage=0")
    checkpointed = run(recipe_file, tmp_path, "gc", "deepspeed.stage=0", "model.gradient_checkpointing=true")
    torch.testing.assert_close(losses(checkpointed), losses(plain), atol=1e-5, rtol=0)
    res = run_cli("dpo", "-r", recipe_file, "--set", "deepspeed.stage=3", "--set", "train.micro_batch_size=2",
                  "--set", "model.gradient_checkpointing=true", "--set", f"train.output_dir={tmp_path / 'gc_z3x2'}",
                  launcher=two_ranks(29539))
    assert res.returncode == 0, res.stderr[-3000:]
    torch.testing.assert_close(losses(read_rows(tmp_path / "gc_z3x2")), losses(plain), atol=1e-4, rtol=0)


@pytest.mark.parametrize("fault", ["sigterm@5", "sigkill@7"])
def test_resume_after_preemption_or_kill_matches_straight_run(recipe_file, tmp_path, fault):
    sets = ["train.max_steps=10", "train.save_every=5"]
    straight = run(recipe_file, tmp_path, "straight", *sets)
    out = tmp_path / "cut"
    args = ["dpo", "-r", recipe_file, "--set", f"train.output_dir={out}"] + [x for s in sets for x in ("--set", s)]
    first = run_cli(*args, env={"PREFOPT_FAULT": fault})
    assert first.returncode == (3 if fault.startswith("sigterm") else -9), first.stderr[-2000:]
    assert (out / "checkpoints" / "latest").read_text() == "step-5"
    assert not list((out / "checkpoints").glob(".tmp-*"))
    second = run_cli(*args, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed from step 5" in second.stdout
    resumed = read_rows(out)
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]  # no duplicated or missing steps
    torch.testing.assert_close(losses(resumed), losses(straight), atol=1e-5, rtol=0)


def test_single_rank_zero3_runs_as_stage0_and_two_zero3_ranks_resume_its_checkpoint(recipe_file, tmp_path):
    """One process with `deepspeed.stage: 3` takes the stage-0 fast path and writes a portable checkpoint; two
    ZeRO-3 ranks (the same 4 pairs a step, 2 each) resume it and go on exactly as the uninterrupted process."""
    sets = ["train.max_steps=10", "train.save_every=5", "deepspeed.stage=3"]
    straight = run(recipe_file, tmp_path, "straight", *sets)
    out = tmp_path / "cut"
    args = ["dpo", "-r", recipe_file, "--set", f"train.output_dir={out}"] + [x for s in sets for x in ("--set", s)]
    first = run_cli(*args, env={"PREFOPT_FAULT": "sigterm@5"})
    assert first.returncode == 3, first.stderr[-2000:]
    assert "deepspeed.stage: 3 on a single rank runs as ZeRO stage 0" in first.stdout
    assert (out / "checkpoints" / "step-5" / "portable.pt").is_file()
    assert "stage: 3" in (out / "recipe.yaml").read_text()  # the run directory keeps what the user wrote
    second = run_cli(*args, "--resume", "--set", "train.micro_batch_size=2",
                     launcher=two_ranks(29535))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from step 5" in second.stdout and "runs as ZeRO stage 0" not in second.stdout
    resumed = read_rows(out)
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    torch.testing.assert_close(losses(resumed), losses(straight), atol=1e-4, rtol=0)
    torch.testing.assert_close([r["lr"] for r in resumed if "lr" in r], [r["lr"] for r in straight if "lr" in r])


def test_bf16_at_stage0_trains_as_zero2(recipe_file, tmp_path):
    """Both step AdamW on fp32 masters of bf16 weights. DeepSpeed's own stage-0 wrapper did not: it took a
    zero-gradient AdamW step at start-up (weight decay once, Adam's step count one ahead), so a one-GPU run's
    loss left a multi-GPU run's by 0.026 at the second step (clipping off: ZeRO computes its norm differently)."""
    sets = ["train.precision=bf16", "optim.grad_clip=0"]
    zero0 = run(recipe_file, tmp_path, "z0", "deepspeed.stage=0", *sets)
    zero2 = run(recipe_file, tmp_path, "z2", "deepspeed.stage=2", *sets)
    torch.testing.assert_close(losses(zero0), losses(zero2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("stage", [3, 0])
def test_bf16_single_rank_resumes_exactly(recipe_file, tmp_path, stage):
    """bf16 weights (the GPU default) keep fp32 masters beside them (prefopt/masters.py): a checkpoint must carry
    the masters and their moments, not the rounded weights; in the portable form (ZeRO-3 on one rank) and in
    DeepSpeed's own (stage 0)."""
    sets = ["train.max_steps=6", "train.save_every=3", f"deepspeed.stage={stage}", "train.precision=bf16"]
    straight = run(recipe_file, tmp_path, "straight", *sets)
    out = tmp_path / "cut"
    args = ["dpo", "-r", recipe_file, "--set", f"train.output_dir={out}"] + [x for s in sets for x in ("--set", s)]
    assert run_cli(*args, env={"PREFOPT_FAULT": "sigterm@3"}).returncode == 3
    second = run_cli(*args, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    torch.testing.assert_close(losses(read_rows(out)), losses(straight), atol=1e-6, rtol=0)


def test_precomputed_reference_gives_live_losses_and_is_cached(recipe_file, tmp_path, capsys):
    cache = tmp_path / "refcache"
    live = run(recipe_file, tmp_path, "live")
    pre = run(recipe_file, tmp_path, "pre", "train.precompute_ref=true", f"train.ref_cache_dir={cache}",
              "train.max_tokens_per_batch=130")  # the reference pass is cut by the budget too
    torch.testing.assert_close(losses(pre), losses(live), atol=1e-5, rtol=0)
    assert "computed 64 pairs" in capsys.readouterr().out
    run(recipe_file, tmp_path, "pre2", "train.precompute_ref=true", f"train.ref_cache_dir={cache}", "loss.beta=0.2")
    assert "reusing" in capsys.readouterr().out  # a β sweep pays once
    for f in cache.glob("ref-*.pt"):  # a cache whose stored key does not match is rebuilt, never used
        blob = torch.load(f, weights_only=True)
        blob["key"] = "stale"
        torch.save(blob, f)
    run(recipe_file, tmp_path, "pre3", "train.precompute_ref=true", f"train.ref_cache_dir={cache}")
    assert "does not match this run; rebuilding" in capsys.readouterr().out


def test_tiny_dpo_recipe_leaves_a_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    wandb_dir = tmp_path / "wandb"
    wandb_dir.mkdir()
    res = run_cli("dpo", "--recipe", "recipes/tiny/dpo.yaml", "--set", f"train.output_dir={out}",
                  "--set", "log.wandb=true", "--set", "log.console=false",
                  env={"WANDB_DIR": str(wandb_dir), "WANDB_API_KEY": "", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert {p.name for p in out.iterdir()} >= {"recipe.yaml", "metrics.jsonl", "model", "plots", "wandb.txt"}
    rows = read_rows(out)
    seen = set().union(*(r.keys() for r in rows))
    assert TINY_KEYS <= seen, TINY_KEYS - seen
    assert {"eval/loss", "eval/3d/delta_rejected"} <= seen
    assert (out / "plots" / "3d.png").stat().st_size > 10_000
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.num_hidden_layers == 2
    # the W&B offline run holds the same metrics as metrics.jsonl
    logged = wandb_history(next(wandb_dir.glob("wandb/offline-run-*/run-*.wandb")))
    last = rows[-1]
    for key in ("loss", "3d/drop_ratio", "3d/log_grad_rejected", "rewards/margins"):
        assert logged[key][-1] == pytest.approx(last[key], rel=1e-6)
    assert len(logged["loss"]) == len(losses(rows))


def wandb_history(path: Path) -> dict:
    """key -> list of logged values, read back from an offline .wandb transaction log."""
    text = ""
    for cmd in (["wandb", "beta", "leet", "inspect", str(path)], ["wandb", "leet", "inspect", str(path)]):
        exe = Path(sys.executable).parent / cmd[0]
        res = subprocess.run([str(exe), *cmd[1:]], capture_output=True, text=True)
        if res.returncode == 0 and "history" in res.stdout:
            text = res.stdout
            break
    out: dict = {}
    for block in text.split("# record ")[1:]:
        if ": history" not in block.splitlines()[0]:
            continue
        for key, val in re.findall(r'nested_key:\s+"([^"]+)"\s+value_json:\s+"([^"]+)"', block):
            try:
                out.setdefault(key, []).append(float(val))
            except ValueError:
                pass
    assert out, "no history records read back from the W&B run"
    return out


@pytest.mark.parametrize("cmd", ["sft", "ipo", "slic", "kto", "rm"])
def test_every_objective_trains_and_saves(cmd, tmp_path):
    out = tmp_path / cmd
    res = run_cli(cmd, "--recipe", f"recipes/tiny/{cmd}.yaml", "--set", f"train.output_dir={out}",
                  "--set", "train.max_steps=4", "--set", "log.every=2", "--set", "log.console=false")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_rows(out)
    assert len(losses(rows)) == 2
    assert all(v == v and abs(v) != float("inf") for row in rows for v in row.values())
    if cmd == "kto":  # unpaired feedback reports the same 3D names as a DPO run
        logged = {k for row in rows for k in row}
        assert {"3d/delta_chosen", "3d/delta_rejected", "3d/log_grad_chosen", "3d/log_grad_rejected",
                "3d/log_grad_ratio", "3d/drop_ratio", "3d/chosen_below_ref_frac", "3d/unseen_logp", "3d/entropy",
                "rewards/margins", "eval/3d/delta_chosen"} <= logged
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    cls = AutoModelForSequenceClassification if cmd == "rm" else AutoModelForCausalLM
    cls.from_pretrained(out / "model")


@pytest.mark.parametrize("variant", ["rdpo", "nca", "apo_zero", "simpo", "orpo"])
def test_every_dpo_variant_trains_with_finite_3d_metrics(recipe_file, tmp_path, variant):
    from prefopt.objectives import objective_for

    extra = {"rdpo": ["loss.label_smoothing=0.1"], "simpo": ["loss.beta=2.0", "loss.margin=0.5"]}.get(variant, [])
    recipe = load_recipe(recipe_file, [f"train.output_dir={tmp_path / variant}", f"loss.variant={variant}", *extra])
    obj = objective_for("dpo", recipe.loss)
    rows = read_rows(train(recipe, obj))
    logged = {k: v for row in rows for k, v in row.items()}
    want = {"3d/log_grad_chosen", "3d/log_grad_rejected", "3d/log_grad_ratio", "3d/entropy", "3d/unseen_logp",
            "rewards/accuracies", "eval/3d/log_grad_chosen"}
    if obj.needs_reference:  # the reference-free ones (simpo, orpo) have no Δ to report
        want |= {"3d/delta_chosen", "3d/delta_rejected", "3d/drop_ratio", "3d/chosen_below_ref_frac"}
    assert want <= set(logged), want - set(logged)
    assert all(v == v and abs(v) != float("inf") for row in rows for v in row.values())
    assert losses(rows)[0] != losses(rows)[-1]


def test_streaming_sources_train_like_in_memory_ones(recipe_file, tmp_path):
    """The same rows in the same order: a streamed train and eval set give the in-memory losses (and no crash)."""
    sets = ["data.shuffle=false", "train.max_steps=4"]
    memory = run(recipe_file, tmp_path, "memory", *sets)
    streamed = run(recipe_file, tmp_path, "streamed", *sets, "data.streaming=true")
    torch.testing.assert_close(losses(streamed), losses(memory), atol=1e-6, rtol=0)
    assert streamed[-1]["data/rows"] == 16 and memory[-1]["data/rows"] == 64  # a stream counts what it read so far


def test_odpo_reads_judge_scores_and_without_offset_trains_exactly_as_dpo(recipe_file, tmp_path):
    from prefopt.objectives import objective_for

    scored = {split: write_jsonl(tmp_path / f"{split}.jsonl", [
        {**r, "score_chosen": 5, "score_rejected": 2 + i % 3 * 0.5}
        for i, r in enumerate(arith.records("pairs", split, 64 if split == "train" else 16))]) for split in ("train", "test")}

    def one(name, *sets):
        recipe = load_recipe(recipe_file, [f"train.output_dir={tmp_path / name}", f"data.train={scored['train']}",
                                           f"data.eval={scored['test']}", *sets])
        return read_rows(train(recipe, objective_for("dpo", recipe.loss)))

    dpo, flat, odpo = one("dpo"), one("flat", "loss.variant=odpo", "loss.offset_scale=0"), \
        one("odpo", "loss.variant=odpo", "loss.offset_scale=1.0")
    torch.testing.assert_close(losses(flat), losses(dpo), atol=1e-6, rtol=0)
    assert losses(odpo)[0] > losses(dpo)[0]  # the offset raises the bar at the start (h = 0 for every pair)
    assert all(v == v and abs(v) != float("inf") for row in odpo for v in row.values())
    res = run_cli("dpo", "-r", recipe_file, "--set", "loss.variant=odpo", "--set", f"train.output_dir={tmp_path / 'x'}")
    assert res.returncode == 2 and "data.train: the first pair has no scores" in res.stderr  # unscored pairs


def test_kto_bad_unpaired_rows_name_file_and_line(recipe_file, tmp_path):
    rows = arith.records("unpaired", "train", 16)
    rows[2] = {**rows[2], "label": "good"}
    data = write_jsonl(tmp_path / "fb.jsonl", rows)
    res = run_cli("kto", "-r", "recipes/tiny/kto.yaml", "--set", f"data.train={data}",
                  "--set", f"train.output_dir={tmp_path / 'kto'}")
    assert res.returncode == 2 and f"{data}:3: wrong type: `label` must be true or false" in res.stderr, res.stderr
