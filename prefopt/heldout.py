"""Accuracy during training: greedy answers to held-out prompts, scored by the run's judge, at every evaluation.

`eval.prompts` names prompt records with reference answers (e.g. `builtin:arith/prompts/valid`); the first
`eval.max_prompts` are answered greedily (up to `eval.max_new_tokens` tokens) by the policy as it is at each
evaluation, scored by `judge.kind` (the rule judge by default) and logged as `eval/accuracy` (answers scoring 4-5,
the paper's Table 2 metric) and `eval/score` (the judge's mean score). Over-optimisation shows while it happens,
and `train.keep_best` can keep the best step (prefopt/best.py). Prompts are split across ranks, each rank making
the same number of generate calls (ZeRO-3 gathers weights collectively).
"""

from __future__ import annotations

import math

import torch

from prefopt.data.batching import shard
from prefopt.data.tokenize import encode_prompt, stop_ids
from prefopt.sampling import sample

BATCH = 64  # prompts per generate call


class HeldOut:
    """The held-out prompts of `eval.prompts`, this rank's share of them, and the judge that scores answers."""

    def __init__(self, recipe, tokenizer, run_dir, rank: int, world: int):
        from prefopt.generation import load_prompts
        from prefopt.judging import make_scorer

        source = _with_prompts(recipe)
        prompts, _ = load_prompts(source, tokenizer)
        self.kind, self.tok, self.recipe = recipe.judge.kind, tokenizer, recipe
        if self.kind == "rule" and any("answer" not in p for p in prompts):
            raise _missing_answer()
        per = math.ceil(len(prompts) / world)
        self.mine = shard(prompts, world, "balanced")[rank]
        self.calls = math.ceil(per / BATCH)  # the same on every rank
        self.ids = [encode_prompt(p["prompt"], tokenizer) for p in self.mine]
        self.scorer = make_scorer(recipe, run_dir)
        self.stop = stop_ids(tokenizer)

    def __len__(self) -> int:
        return len(self.mine)

    @torch.no_grad()
    def sums(self, model_or_engine) -> tuple[dict[str, torch.Tensor], float]:
        """(sums of `accuracy` and `score` over this rank's prompts, their count) for the Meter."""
        texts: list[str] = []
        for call in range(self.calls):
            ids = self.ids[call * BATCH:(call + 1) * BATCH] or self.ids[:1] or [[self.tok.pad_token_id]]
            out = sample(model_or_engine, ids, pad_id=self.tok.pad_token_id, stop_ids=self.stop, seed=0,
                         max_new_tokens=self.recipe.eval.max_new_tokens, temperature=0.0)
            texts += self.tok.batch_decode(out, skip_special_tokens=True)[:max(0, len(self.mine) - call * BATCH)]
        scores = self.scorer([(p["prompt"], text, str(p.get("answer", ""))) for p, text in zip(self.mine, texts)])
        judged = [float(s) for s in scores if s is not None]
        sums = {"score": torch.tensor(sum(judged))}
        if self.kind != "rm":  # the rubric (rule or llm): 4-5 points is a right answer
            sums["accuracy"] = torch.tensor(float(sum(s >= 4 for s in judged)))
        return sums, float(len(judged))


def _with_prompts(recipe):
    """The recipe with eval.prompts as the prompt source and eval.max_prompts as its cap (for load_prompts)."""
    import dataclasses

    return dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, train=recipe.eval.prompts,
                                                                streaming=False),
                               generate=dataclasses.replace(recipe.generate, max_prompts=recipe.eval.max_prompts))


def _missing_answer():
    from prefopt.errors import UserError

    return UserError("eval.prompts: the rule judge needs the reference `answer` field in every record "
                     "(or set judge.kind: rm / llm)")
