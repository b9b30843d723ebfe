"""Data sources and the bad-row policy: every format, streaming, and errors that name file:line."""

import json

import pytest

from prefopt.data.loader import TokenizedData
from prefopt.data.sources import BadRows, iter_records
from prefopt.errors import UserError
from prefopt.schema import DataConfig, FieldsConfig
from tests.conftest import write_jsonl

ROWS = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(10)]


def load(spec, tokenizer, kind="preference", **cfg):
    return TokenizedData(str(spec), kind, tokenizer, DataConfig(**cfg), "train")


def test_malformed_line_7_names_file_and_line(tmp_path, tokenizer):
    rows = [json.dumps(r) for r in ROWS]
    rows[6] = '{"prompt": "Q6", "chosen": "x", '  # line 7
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(UserError, match=r"d.jsonl:7: malformed JSON"):
        load(path, tokenizer)
    data = load(path, tokenizer, on_bad_row="skip")
    assert len(data) == 9
    assert data.bad.summary() == "1 skipped (malformed JSON)"
    assert "1 skipped (malformed JSON)" in data.report()
    assert data.bad.as_metrics() == {"data/skipped": 1.0, "data/skipped/malformed_JSON": 1.0}


@pytest.mark.parametrize("row, reason", [
    ({"prompt": "Q", "chosen": "a"}, "missing field"),
    ({"prompt": "Q", "chosen": "  ", "rejected": "b"}, "empty field"),
    ({"prompt": "Q", "chosen": 3, "rejected": "b"}, "wrong type"),
    ({"prompt": "same", "chosen": "same", "rejected": "same"}, "identical responses"),
    (["not", "an", "object"], "wrong type"),
])
def test_each_bad_row_kind_is_reported_and_counted(tmp_path, tokenizer, row, reason):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS[:2] + [row])
    with pytest.raises(UserError, match=rf"d.jsonl:3: {reason}"):
        load(path, tokenizer)
    data = load(path, tokenizer, on_bad_row="skip")
    assert len(data) == 2 and data.bad.counts == {reason: 1}


def test_counts_per_reason(tmp_path, tokenizer):
    rows = [json.dumps(r) for r in ROWS] + ["{oops", '{"prompt": "Q"}', '{"prompt": "Q", "chosen": ""}']
    data = load(write_jsonl(tmp_path / "d.jsonl", rows), tokenizer, on_bad_row="skip")
    assert len(data) == 10
    assert data.bad.summary() == "3 skipped (2 missing field, 1 malformed JSON)" or \
        data.bad.summary() == "3 skipped (1 malformed JSON, 1 missing field, 1 empty field)"


def test_field_mapping(tmp_path, tokenizer):
    rows = [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in ROWS]
    data = load(write_jsonl(tmp_path / "d.jsonl", rows), tokenizer,
                fields=FieldsConfig(prompt="question", chosen="good", rejected="bad"))
    assert len(data) == 10


def _same_examples(a, b):
    strip = lambda d: [{k: v for k, v in ex.items()} for ex in d]
    assert strip(a) == strip(b)


def test_json_parquet_save_to_disk_and_streaming_agree(tmp_path, tokenizer):
    import datasets

    ref = list(load(write_jsonl(tmp_path / "d.jsonl", ROWS), tokenizer))
    (tmp_path / "d.json").write_text(json.dumps(ROWS))
    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "d.parquet"))
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "disk"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "dd"))
    for spec in ("d.json", "d.parquet", "disk", "dd"):
        _same_examples(ref, load(tmp_path / spec, tokenizer))
    for spec in ("d.jsonl", "d.parquet"):
        streamed = load(tmp_path / spec, tokenizer, streaming=True)
        assert streamed.items is None  # nothing materialised
        _same_examples(ref, list(streamed))
        _same_examples(ref, list(streamed))  # re-readable for the next epoch


def test_missing_file_and_missing_split(tmp_path, tokenizer):
    with pytest.raises(UserError, match="no such data file"):
        list(iter_records(str(tmp_path / "nope.jsonl"), BadRows()))
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(UserError, match="no split `test`"):
        list(iter_records(str(tmp_path / "dd"), BadRows(), split="test"))


def test_sft_and_prompt_formats(tmp_path, tokenizer):
    sft = [{"prompt": "Q1", "completion": "A1"},
           {"messages": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]}]
    data = load(write_jsonl(tmp_path / "s.jsonl", sft), tokenizer, kind="sft")
    assert len(data) == 2 and all("completion_ids" in ex for ex in data)
    data = load(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Q1"}]), tokenizer, kind="prompt")
    (example,) = list(data)
    assert example.keys() == {"prompt_ids", "prompt", "idx"} and example["prompt"] == "Q1"  # reward scorers read it
