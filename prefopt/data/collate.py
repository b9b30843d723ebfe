"""The one collator every trainer uses: tokenized examples -> padded tensors for a single forward.

Preference examples put all chosen sequences first and all rejected second, so one forward over `2B` rows
serves both sides; SFT examples give `B` rows. Unpaired feedback (KTO: a completion and a desirable/undesirable
`label`) gives `2B` rows too: each prompt with its own completion, then each prompt with the next example's
completion (the mismatched pairs of KTO's KL estimate), plus `labels`. Pairs with judge scores add
`score_margin` (ODPO's offset). `completion_mask` marks response tokens: the log-prob code scores
token t (predicted from position t-1) wherever the mask is 1.

The result is a `Batch` (prefopt/data/batch.py), which names its rows and its layout.

`layout="packed"` lays the same sequences end to end in one row, with no padding: `position_ids` restart at 0 for
each sequence, `cu_seq_lens_q` holds the cumulative lengths (the variable-length attention of prefopt/attention.py
keeps every sequence to itself), and `segment` names each token's sequence (-1: none), in the same order as the
padded rows, so everything downstream indexes sequences the same way in both layouts. `layout="shared_prompt"`
packs preference pairs with each prompt once (`Collator._shared`); other data packs as `packed` does.
"""

from __future__ import annotations

import itertools

import torch

from prefopt.data.batch import Batch

LAYOUTS = ("padded", "packed", "shared_prompt")


class Collator:
    """Pad sequences on the right and build `input_ids`, `attention_mask`, `completion_mask`.

    >>> c = Collator(pad_id=0)
    >>> batch = c([
    ...     {"idx": 0, "prompt_ids": [5, 6], "chosen_ids": [7, 2], "rejected_ids": [8, 9, 2]},
    ...     {"idx": 1, "prompt_ids": [5], "chosen_ids": [3, 2], "rejected_ids": [4, 2]},
    ... ])
    >>> batch.input_ids
    tensor([[5, 6, 7, 2, 0],
            [5, 3, 2, 0, 0],
            [5, 6, 8, 9, 2],
            [5, 4, 2, 0, 0]])
    >>> batch.attention_mask
    tensor([[1, 1, 1, 1, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0]])
    >>> batch.completion_mask
    tensor([[0, 0, 1, 1, 0],
            [0, 1, 1, 0, 0],
            [0, 0, 1, 1, 1],
            [0, 1, 1, 0, 0]])
    >>> batch.idx, batch.n_pairs, batch.rows, batch.layout
    (tensor([0, 1]), 2, 'paired', 'padded')

    The packed layout: the same four sequences in one row, positions restarting per sequence, no padding.

    >>> packed = Collator(pad_id=0, layout="packed")([
    ...     {"idx": 0, "prompt_ids": [5, 6], "chosen_ids": [7, 2], "rejected_ids": [8, 9, 2]},
    ...     {"idx": 1, "prompt_ids": [5], "chosen_ids": [3, 2], "rejected_ids": [4, 2]},
    ... ])
    >>> packed.input_ids, packed.position_ids
    (tensor([[5, 6, 7, 2, 5, 3, 2, 5, 6, 8, 9, 2, 5, 4, 2]]), tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2]]))
    >>> packed.segment, packed.cu_seq_lens_q
    (tensor([[0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3]]), tensor([ 0,  4,  7, 12, 15], dtype=torch.int32))

    Shared prompts: prompt‖chosen blocks, then each rejected response alone, its positions continuing after its
    prompt; `shared_kv_index` lists every block's keys (a rejected block: its prompt's, then its own).

    >>> shared = Collator(pad_id=0, layout="shared_prompt")([
    ...     {"idx": 0, "prompt_ids": [5, 6], "chosen_ids": [7, 2], "rejected_ids": [8, 9, 2]},
    ...     {"idx": 1, "prompt_ids": [5], "chosen_ids": [3, 2], "rejected_ids": [4, 2]},
    ... ])
    >>> shared.input_ids, shared.position_ids
    (tensor([[5, 6, 7, 2, 5, 3, 2, 8, 9, 2, 4, 2]]), tensor([[0, 1, 2, 3, 0, 1, 2, 2, 3, 4, 1, 2]]))
    >>> shared.shared_kv_index, shared.cu_seq_lens_k
    (tensor([ 0,  1,  2,  3,  4,  5,  6,  0,  1,  7,  8,  9,  4, 10, 11]), tensor([ 0,  4,  7, 12, 15], dtype=torch.int32))
    >>> shared.predictor  # the position whose hidden state predicts each token: rejected 8 from prompt's 6
    tensor([[-1,  0,  1,  2,  3,  4,  5,  1,  7,  8,  4, 10]])

    Unpaired feedback: own completions first, then each prompt with the next example's completion (KTO's KL rows).

    >>> batch = c([{"idx": 0, "prompt_ids": [5], "completion_ids": [7, 2], "label": True},
    ...            {"idx": 1, "prompt_ids": [6], "completion_ids": [8, 9, 2], "label": False}])
    >>> batch.input_ids, batch.labels, batch.rows
    (tensor([[5, 7, 2, 0],
            [6, 8, 9, 2],
            [5, 8, 9, 2],
            [6, 7, 2, 0]]), tensor([ True, False]), 'unpaired')
    """

    def __init__(self, pad_id: int, pad_to_multiple_of: int = 1, layout: str = "padded"):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown collator layout {layout!r} (available: {', '.join(LAYOUTS)})")
        self.pad_id, self.multiple, self.layout = pad_id, pad_to_multiple_of, layout

    def __call__(self, examples: list[dict]) -> Batch:
        """Collate preference triples (`chosen_ids`+`rejected_ids`), SFT pairs (`completion_ids`) or unpaired
        feedback (`completion_ids`+`label`) into one Batch."""
        rows = _rows(examples)
        kind = "paired" if "chosen_ids" in examples[0] else "unpaired" if "label" in examples[0] else "single"
        if self.layout == "padded":
            fields, layout = self._padded(rows), "padded"
        elif self.layout == "shared_prompt" and _shareable(examples):
            fields, layout = self._shared(examples), "shared_prompt"
        else:  # packed, or shared_prompt with no pairs to share a prompt
            fields, layout = self._packed(rows), "packed"
        per_example = {}
        if kind == "unpaired":
            per_example["labels"] = torch.tensor([ex["label"] for ex in examples], dtype=torch.bool)
        if all("score_chosen" in ex for ex in examples):
            per_example["score_margin"] = torch.tensor([ex["score_chosen"] - ex["score_rejected"] for ex in examples],
                                                       dtype=torch.float32)
        if "ref_logps" in examples[0]:  # precomputed reference: [chosen..., rejected...] like the rows
            per_example["ref_logps"] = torch.tensor([ex["ref_logps"][s] for s in range(2) for ex in examples],
                                                    dtype=torch.float32)
        return Batch(idx=torch.tensor([ex["idx"] for ex in examples]), n_pairs=0 if kind == "single" else len(examples),
                     rows=kind, layout=layout, **fields, **per_example)

    def computed_tokens(self, examples: list[dict]) -> int:
        """Tokens one forward over these examples computes in this layout, padding included (the budget of
        `train.max_tokens_per_batch`).

        >>> ex = [{"prompt_ids": [5, 6], "chosen_ids": [7, 2], "rejected_ids": [8, 9, 2]}]
        >>> Collator(0).computed_tokens(ex), Collator(0, layout="packed").computed_tokens(ex)
        (10, 9)
        """
        lengths = [len(p) + len(r) for p, r in _rows(examples)]
        width = max(lengths) if self.layout == "padded" else sum(lengths)
        if self.layout == "shared_prompt" and _shareable(examples):
            width -= sum(len(ex["prompt_ids"]) for ex in examples)  # each pair's prompt once, not twice
        width = -(-width // self.multiple) * self.multiple
        return width * len(lengths) if self.layout == "padded" else width

    def _padded(self, rows: list[tuple[list, list]]) -> dict:
        """One row per sequence, padded on the right to the longest (the Batch's tensor fields)."""
        width = max(len(p) + len(r) for p, r in rows)
        width = -(-width // self.multiple) * self.multiple
        # Lists first, one tensor each: a tensor per row costs more than the forward of a small model.
        pad = [width - len(p) - len(r) for p, r in rows]
        ids = torch.tensor([p + r + [self.pad_id] * k for (p, r), k in zip(rows, pad)], dtype=torch.long)
        attn = torch.tensor([[1] * (len(p) + len(r)) + [0] * k for (p, r), k in zip(rows, pad)], dtype=torch.long)
        comp = torch.tensor([[0] * len(p) + [1] * len(r) + [0] * k for (p, r), k in zip(rows, pad)], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": attn, "completion_mask": comp, "tokens": width * len(rows) - sum(pad)}

    def _packed(self, rows: list[tuple[list, list]]) -> dict:
        """All sequences end to end in one row (padded to `pad_to_multiple_of` only, as one more segment)."""
        lengths = [len(p) + len(r) for p, r in rows]
        total = sum(lengths)
        pad = -(-total // self.multiple) * self.multiple - total
        ids = [t for p, r in rows for t in p + r] + [self.pad_id] * pad
        comp = [m for p, r in rows for m in [0] * len(p) + [1] * len(r)] + [0] * pad
        seg = [i for i, n in enumerate(lengths) for _ in range(n)] + [-1] * pad
        cu = [0]
        for n in lengths + ([pad] if pad else []):
            cu.append(cu[-1] + n)
        pos = [j for n in lengths + ([pad] if pad else []) for j in range(n)]
        row = lambda x: torch.tensor([x], dtype=torch.long)
        blocks = tuple(lengths + ([pad] if pad else []))
        return {"input_ids": row(ids), "attention_mask": row([1] * total + [0] * pad), "completion_mask": row(comp),
                "position_ids": row(pos), "segment": row(seg), "n_seqs": len(rows), "tokens": total,
                "cu_seq_lens_q": torch.tensor(cu, dtype=torch.int32), "max_length_q": max(blocks),
                "seq_lens_q": blocks}


    def _shared(self, examples: list[dict]) -> dict:
        """Packed, with each pair's prompt computed once: prompt‖chosen blocks first, then each rejected response
        alone, positions continuing after its prompt; its keys are its prompt's and its own.

        The attention (prefopt/attention.py) gathers every block's keys through `shared_kv_index`, bounded by
        `cu_seq_lens_k`, causal from the bottom right; `predictor` says which position's hidden state predicts each
        token (a rejected response's first token: its prompt's last). The sequences' log-probs are those of the
        packed layout, which scores the prompt twice.
        """
        n, prompts = len(examples), [ex["prompt_ids"] for ex in examples]
        fields = self._packed([(p, ex["chosen_ids"]) for p, ex in zip(prompts, examples)] +
                             [([], ex["rejected_ids"]) for ex in examples])
        cu = [0, *itertools.accumulate(fields["seq_lens_q"])]
        pos, predictor = fields["position_ids"][0].tolist(), list(range(-1, cu[-1] - 1))
        kv, cu_k = [], [0]
        for block, (a, b) in enumerate(zip(cu[:-1], cu[1:])):
            if n <= block < 2 * n:  # a rejected response: after its prompt, which sits at the start of block i
                i = block - n
                start, plen = cu[i], len(prompts[i])
                pos[a:b] = [plen + j for j in range(b - a)]
                predictor[a] = start + plen - 1
                kv.extend(range(start, start + plen))
            kv.extend(range(a, b))
            cu_k.append(len(kv))
        keys = [y - x for x, y in zip(cu_k[:-1], cu_k[1:])]
        fields.update(position_ids=torch.tensor([pos]), predictor=torch.tensor([predictor]),
                     shared_kv_index=torch.tensor(kv), cu_seq_lens_k=torch.tensor(cu_k, dtype=torch.int32),
                     max_length_k=max(keys), seq_lens_k=tuple(keys), shared_tokens=sum(map(len, prompts)))
        return fields


def _shareable(examples: list[dict]) -> bool:
    """Preference pairs whose prompts are not empty (a response's first token needs a position to predict it)."""
    return "chosen_ids" in examples[0] and all(ex["prompt_ids"] for ex in examples)


def _rows(examples: list[dict]) -> list[tuple[list, list]]:
    """(prompt, response) token lists of every sequence, in the order the module docstring gives."""
    sides = ("chosen_ids", "rejected_ids") if "chosen_ids" in examples[0] else ("completion_ids",)
    rows = [(ex["prompt_ids"], ex[side]) for side in sides for ex in examples]
    if "label" in examples[0]:  # KL rows: prompt i with completion i+1 (a mismatched pair; a batch of one: itself)
        rows += [(ex["prompt_ids"], examples[(i + 1) % len(examples)]["completion_ids"])
                 for i, ex in enumerate(examples)]
    return rows


def left_padded(ids: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts padded on the left (generation continues every row from its last column): ids, attention mask.

    >>> left_padded([[5, 6], [7]], pad_id=0)
    (tensor([[5, 6],
            [0, 7]]), tensor([[1, 1],
            [0, 1]]))
    """
    width = max(map(len, ids))
    input_ids = torch.tensor([[pad_id] * (width - len(x)) + x for x in ids], device=device)
    attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
    return input_ids, attn
