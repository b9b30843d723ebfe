"""Chat and public-dataset shapes through the CLI, as a user runs them: HH transcripts and UltraFeedback-style
conversations train end to end; bad chat rows stop the run at file:line, or are counted in metrics.jsonl."""

import pytest

from prefopt.tasks import arith
from tests.conftest import read_rows, run_cli, write_jsonl


def hh_rows(n):
    turn = lambda rec, side: f"\n\nHuman: {rec['prompt'].strip()}\n\nAssistant: {rec[side]}"
    return [{"chosen": turn(r, "chosen"), "rejected": turn(r, "rejected")} for r in arith.records("pairs", "train", n)]


def uf_rows(n):
    conv = lambda rec, side: [{"role": "user", "content": rec["prompt"]}, {"role": "assistant", "content": rec[side]}]
    return [{"prompt": r["prompt"], "chosen": conv(r, "chosen"), "rejected": conv(r, "rejected"), "score_chosen": 8.0}
            for r in arith.records("pairs", "train", n)]


def dpo(tmp_path, rows, *sets):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    return run_cli("dpo", "-r", "recipes/tiny/dpo.yaml", "--set", f"data.train={data}", "--set", f"data.eval={data}",
                   "--set", f"train.output_dir={tmp_path / 'run'}", "--set", "train.max_steps=4",
                   "--set", "log.every=2", "--set", "log.console=false", "--set", "eval.max_batches=1",
                   "--set", "eval.probe_size=2", *[x for s in sets for x in ("--set", s)])


@pytest.mark.parametrize("shape, rows", [("prompt from shared transcript beginning", hh_rows(32)),
                                         ("prompt from shared conversation turns", uf_rows(32))])
def test_public_dataset_shapes_train_end_to_end(tmp_path, shape, rows):
    res = dpo(tmp_path, rows, "data.max_prompt_length=48", "data.max_length=128")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"d.jsonl: 32 rows, 0 skipped; 32 {shape}; none truncated" in res.stdout
    logged = read_rows(tmp_path / "run")
    assert [r["loss"] for r in logged if "loss" in r] and all(r["loss"] == r["loss"] for r in logged if "loss" in r)
    assert logged[0]["data/rows"] == 32 and logged[0]["data/skipped"] == 0 and logged[0]["eval/data/rows"] == 32
    assert (tmp_path / "run" / "model" / "config.json").exists()


BAD = {4: {"prompt": [{"role": "narrator", "content": "Q: 1 + 1 = ?\n"}], "chosen": "Answer: 2", "rejected": "Answer: 3"},
       9: {"prompt": [{"role": "user", "content": "Q: 1 + 1 = ?\n"}], "chosen": [{"role": "user", "content": "2"}],
           "rejected": [{"role": "assistant", "content": "3"}]}}


def with_bad_rows(n=24):
    rows = uf_rows(n)
    for line, rec in BAD.items():
        rows.insert(line - 1, rec)
    return rows


def test_unknown_role_and_user_turn_as_response_stop_the_run_with_file_line(tmp_path):
    res = dpo(tmp_path, with_bad_rows())
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].endswith(
        "d.jsonl:4: unknown role: prompt message 0 has role `narrator` (known: system, user, assistant, tool; "
        "widen with data.chat_roles) (set data.on_bad_row: skip to drop such rows and count them)")
    res = dpo(tmp_path, with_bad_rows()[4:])  # line 9 is now line 5
    assert res.returncode == 2 and "d.jsonl:5: not an assistant turn: `chosen` message 0 has role `user`" in res.stderr


def test_skipped_rows_are_counted_per_reason_in_the_report_and_metrics(tmp_path):
    res = dpo(tmp_path, with_bad_rows(), "data.on_bad_row=skip", "data.max_length=40")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "d.jsonl: 24 rows, 2 skipped (1 unknown role, 1 not an assistant turn)" in res.stdout
    logged = read_rows(tmp_path / "run")
    first, last = logged[0], logged[-1]
    for row in (first, last):
        assert row["data/skipped"] == 2 and row["data/skipped/unknown_role"] == 1
        assert row["data/skipped/not_an_assistant_turn"] == 1 and row["data/rows"] == 24
        assert row["data/truncated/response"] > 0 and row["data/truncated/prompt"] == 0
