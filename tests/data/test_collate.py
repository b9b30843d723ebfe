"""The collator (its docstring doctest runs too): SFT rows, reference log-probs, layouts."""

import pytest
import torch

from prefopt.data.collate import Collator


def test_sft_rows_and_padding_multiple():
    b = Collator(pad_id=9, pad_to_multiple_of=4)([{"idx": 3, "prompt_ids": [1, 2], "completion_ids": [3]}])
    assert b.input_ids.tolist() == [[1, 2, 3, 9]]
    assert b.completion_mask.tolist() == [[0, 0, 1, 0]]
    assert b.n_pairs == 0


def test_reference_logps_follow_row_order():
    exs = [{"idx": i, "prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3], "ref_logps": [-i, -10 - i]}
           for i in range(2)]
    assert torch.equal(Collator(0)(exs).ref_logps, torch.tensor([0.0, -1.0, -10.0, -11.0]))


def test_unknown_layout_fails_loudly():
    with pytest.raises(ValueError, match="unknown collator layout"):
        Collator(0, layout="packed-v2")


def test_packed_rows_follow_the_padded_row_order_and_count_every_token():
    examples = [{"idx": i, "prompt_ids": [1] * (i + 1), "completion_ids": [2] * (3 - i), "label": i % 2 == 0}
                for i in range(3)]
    padded, packed = Collator(0)(examples), Collator(0, layout="packed", pad_to_multiple_of=8)(examples)
    real = padded.attention_mask.sum(-1)  # 6 rows: own completions, then KTO's KL rows
    assert packed.n_seqs == 6 and packed.input_ids.shape[1] % 8 == 0
    seg = packed.segment[0]
    assert [int((seg == s).sum()) for s in range(6)] == real.tolist()
    assert int(packed.attention_mask.sum()) == int(real.sum())
    for s in range(6):  # each sequence's tokens, in order, are its padded row's
        row = padded.input_ids[s][: int(real[s])]
        assert torch.equal(packed.input_ids[0][seg == s], row)
        assert torch.equal(packed.completion_mask[0][seg == s], padded.completion_mask[s][: int(real[s])])
    assert torch.equal(packed.labels, padded.labels)
