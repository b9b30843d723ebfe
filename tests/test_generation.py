"""`prefopt generate`: deterministic for a seed, resumable after a kill, identical when sharded over 2 ranks."""

import json

from prefopt.tasks import arith
from tests.conftest import run_cli, two_ranks, write_jsonl


def recipe(tmp_path, name="gen"):
    write_jsonl(tmp_path / "prompts.jsonl", arith.records("prompts", "test", 12))
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"""model: {{path: "builtin:tiny"}}
data: {{train: {tmp_path / 'prompts.jsonl'}}}
generate: {{n: 3, temperature: 1.0, max_new_tokens: 6, batch_size: 4, seed: 7}}
""")
    return p


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_seeded_generation_is_deterministic_and_well_formed(tmp_path):
    r = recipe(tmp_path)
    outs = []
    for run in ("a", "b"):
        res = run_cli("generate", "-r", r, "--set", f"train.output_dir={tmp_path / run}")
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(records(tmp_path / run / "generations.jsonl"))
    assert outs[0] == outs[1]
    rec = outs[0][0]
    assert [x["id"] for x in outs[0]] == [str(i) for i in range(12)]
    assert len(rec["candidates"]) == 3 and rec["answer"] and rec["meta"]["seed"] == 7
    assert len({c for x in outs[0] for c in x["candidates"]}) > 3  # sampling, not one repeated string
    res = run_cli("generate", "-r", r, "--set", f"train.output_dir={tmp_path / 'c'}", "--set", "generate.seed=8")
    assert records(tmp_path / "c" / "generations.jsonl") != outs[0]


def test_resume_after_kill_loses_nothing_and_duplicates_nothing(tmp_path):
    r = recipe(tmp_path)
    run_cli("generate", "-r", r, "--set", f"train.output_dir={tmp_path / 'straight'}")
    out = tmp_path / "cut"
    killed = run_cli("generate", "-r", r, "--set", f"train.output_dir={out}", env={"PREFOPT_FAULT": "sigkill@2"})
    assert killed.returncode == -9
    shard = out / "generations.jsonl.rank0"
    assert len(records(shard)) == 8  # two batches of 4 were flushed before the kill
    with shard.open("a") as fh:
        fh.write('{"id": "8", "prompt": "torn')  # a write cut short by the kill
    res = run_cli("generate", "-r", r, "--set", f"train.output_dir={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert records(out / "generations.jsonl") == records(tmp_path / "straight" / "generations.jsonl")
    assert not shard.exists()


def test_two_ranks_shard_and_merge_to_the_same_output(tmp_path):
    r = recipe(tmp_path)
    run_cli("generate", "-r", r, "--set", f"train.output_dir={tmp_path / 'one'}")
    res = run_cli("generate", "-r", r, "--set", f"train.output_dir={tmp_path / 'two'}",
                  launcher=two_ranks(29547))
    assert res.returncode == 0, res.stderr[-2000:]
    assert records(tmp_path / "two" / "generations.jsonl") == records(tmp_path / "one" / "generations.jsonl")


def test_bad_prompts_are_counted_in_metrics(tmp_path):
    rows = arith.records("prompts", "test", 4) + [{"prompt": [{"role": "narrator", "content": "hi"}]},
                                                  {"prompt": ""}]
    write_jsonl(tmp_path / "prompts.jsonl", rows)
    p = tmp_path / "bad.yaml"
    p.write_text(f"""model: {{path: "builtin:tiny"}}
data: {{train: {tmp_path / 'prompts.jsonl'}, on_bad_row: skip}}
generate: {{n: 2, temperature: 1.0, max_new_tokens: 4, batch_size: 4, seed: 7}}
train: {{output_dir: {tmp_path / 'run'}}}
""")
    res = run_cli("generate", "-r", p)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "prompts.jsonl: 4 prompts, 2 skipped (" in res.stdout
    (logged,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged["data/rows"] == 4 and logged["data/skipped"] == 2
    assert logged["data/skipped/unknown_role"] == 1 and logged["data/skipped/empty_field"] == 1
    assert 0 < logged["generate/tokens"] <= 4 * 2 * 4
    res = run_cli("generate", "-r", p, "--set", "data.on_bad_row=error", "--set", f"train.output_dir={tmp_path / 'e'}")
    assert res.returncode == 2 and "prompts.jsonl:5: unknown role" in res.stderr
