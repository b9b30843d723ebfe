"""The typed batch: one forward's rows, as the collator (prefopt/data/collate.py) laid them out.

`rows` says what the rows are: `paired` (all chosen, then all rejected: `n_pairs` each), `unpaired` (each
prompt with its own completion, then with the next example's: KTO's KL rows) or `single` (one row per example: SFT
and rollouts). `layout` says how they sit in the tensors: `padded` (a row per sequence), `packed` (all sequences end
to end in one row, with `position_ids`, `segment` and the cumulative lengths `cu_seq_lens_q`) or `shared_prompt`
(packed, each pair's prompt computed once: `shared_kv_index`, `cu_seq_lens_k` and `predictor` say which keys each
block attends to and which position predicts each token). `split_rows` is the one place that reads the row layout
back. Every size a step needs (token counts, block lengths and their maxima) is also held as host integers, so that
no step reads a device tensor back to learn a shape (a host synchronisation on a GPU; tests/test_sync.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Batch:
    """One forward's tensors and what they hold (see the module docstring)."""

    input_ids: Tensor
    attention_mask: Tensor
    completion_mask: Tensor  # 1 on response tokens: the log-prob code scores token t wherever it is 1
    idx: Tensor  # the examples' indices in their data set
    n_pairs: int  # examples with two rows each (paired, unpaired); 0 for single rows
    rows: str  # "paired", "unpaired" or "single"
    layout: str  # "padded", "packed" or "shared_prompt"
    tokens: int = 0  # real (not padding) tokens, counted on the host: reading them never waits on the device
    # packed and shared_prompt
    position_ids: Optional[Tensor] = None
    segment: Optional[Tensor] = None  # each token's sequence (-1: padding)
    n_seqs: int = 0
    cu_seq_lens_q: Optional[Tensor] = None
    max_length_q: int = 0
    seq_lens_q: tuple[int, ...] = ()  # the blocks' lengths on the host (cu_seq_lens_q's differences)
    # shared_prompt
    predictor: Optional[Tensor] = None  # the position whose hidden state predicts each token
    shared_kv_index: Optional[Tensor] = None
    cu_seq_lens_k: Optional[Tensor] = None
    max_length_k: int = 0
    seq_lens_k: tuple[int, ...] = ()  # the blocks' key counts on the host
    shared_tokens: int = 0  # prompt tokens computed once but counted for both sides (tokens/s)
    # per example
    labels: Optional[Tensor] = None  # unpaired: True where the completion is desirable
    score_margin: Optional[Tensor] = None  # judge score of chosen minus rejected (ODPO)
    ref_logps: Optional[Tensor] = None  # precomputed reference log-probs, [chosen..., rejected...] like the rows
    # the scored response positions, computed on the host by logprobs.to_device
    response_src: Optional[Tensor] = None
    response_tgt: Optional[Tensor] = None

    @property
    def packed(self) -> bool:
        """Whether the sequences sit end to end in one row (packed or shared_prompt)."""
        return self.segment is not None

    def split_rows(self, values):
        """Per-row values -> (first rows, second rows): (chosen, rejected) of pairs, (own completions, KL rows) of
        unpaired feedback.

        >>> b = Batch(torch.zeros(4, 1), torch.ones(4, 1), torch.ones(4, 1), torch.arange(2), 2, "paired", "padded")
        >>> b.split_rows(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        (tensor([1., 2.]), tensor([3., 4.]))
        """
        return values[:self.n_pairs], values[self.n_pairs:]

    def to(self, device: torch.device) -> "Batch":
        """The same batch with every tensor on `device` (copied without waiting where the device allows)."""
        return dataclasses.replace(self, **{f.name: value.to(device, non_blocking=True) for f in dataclasses.fields(self)
                                            if torch.is_tensor(value := getattr(self, f.name))})
