"""The batch stream: rank slices are disjoint, epochs continue, and a resumed stream continues exactly."""

import itertools

import pytest

from prefopt.data.collate import Collator
from prefopt.data.loader import BatchStream, TokenizedData
from prefopt.schema import DataConfig
from tests.conftest import write_jsonl

ROWS = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(10)]


def idx_of(step):
    return [b.idx.tolist() for b in step]


@pytest.mark.parametrize("streaming", [False, True])
def test_resume_from_state_continues_the_same_order(tmp_path, tokenizer, streaming):
    data = TokenizedData(str(write_jsonl(tmp_path / "d.jsonl", ROWS)), "preference", tokenizer,
                         DataConfig(streaming=streaming, shuffle_buffer=4), "train")
    mk = lambda state=None: BatchStream(data, Collator(0), 2, 2, 1, 0, seed=1, buffer=4, state=state)
    straight = [idx_of(s) for s in itertools.islice(mk(), 7)]  # 28 examples: crosses two epoch boundaries
    first = mk()
    head = [idx_of(s) for s in itertools.islice(first, 3)]
    tail = [idx_of(s) for s in itertools.islice(mk(first.state), 4)]
    assert head + tail == straight
    epoch0 = sorted(i for step in straight[:2] for b in step for i in b) + sorted(straight[2][0][0:2])
    assert len(set(epoch0[:8])) == 8  # no repeats inside an epoch
    assert sorted(straight[0][0] + straight[0][1] + straight[1][0] + straight[1][1] + straight[2][0]) == list(range(10))


def test_ranks_take_disjoint_slices_of_each_global_batch(tmp_path, tokenizer):
    data = TokenizedData(str(write_jsonl(tmp_path / "d.jsonl", ROWS)), "preference", tokenizer, DataConfig(), "train")
    steps = [next(iter(BatchStream(data, Collator(0), 1, 2, 2, rank, seed=0))) for rank in (0, 1)]
    single = next(iter(BatchStream(data, Collator(0), 4, 1, 1, 0, seed=0)))
    got = [i for s in steps for i in sum(idx_of(s), [])]
    assert got == single[0].idx.tolist()
