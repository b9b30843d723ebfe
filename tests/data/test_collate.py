"""The collator (its docstring doctest runs too): SFT rows, reference log-probs, layouts."""

import pytest
import torch

from prefopt.data.collate import Collator


def test_sft_rows_and_padding_multiple():
    b = Collator(pad_id=9, pad_to_multiple_of=4)([{"idx": 3, "prompt_ids": [1, 2], "completion_ids": [3]}])
    assert b["input_ids"].tolist() == [[1, 2, 3, 9]]
    assert b["completion_mask"].tolist() == [[0, 0, 1, 0]]
    assert b["n_pairs"] == 0


def test_reference_logps_follow_row_order():
    exs = [{"idx": i, "prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3], "ref_logps": [-i, -10 - i]}
           for i in range(2)]
    assert torch.equal(Collator(0)(exs)["ref_logps"], torch.tensor([0.0, -1.0, -10.0, -11.0]))


def test_unknown_layout_fails_loudly():
    with pytest.raises(ValueError, match="unknown collator layout"):
        Collator(0, layout="packed-v2")
