"""The reward-model judge: scalar rewards from a model trained by `prefopt rm`."""

from __future__ import annotations

import torch

from prefopt import engine as eng
from prefopt.data.collate import Collator
from prefopt.data.sources import BadRows
from prefopt.data.tokenize import LoadStats, encode_example
from prefopt.errors import UserError
from prefopt.logprobs import sequence_scores, to_device
from prefopt.schema import Recipe


class RMJudge:
    """Scores (prompt, response) pairs with a sequence-classification reward model.

    `model` is an already-loaded reward model (PPO passes its frozen, possibly ZeRO-3-sharded one); by default
    the model of `judge.rm_path` is loaded onto this device.
    """

    def __init__(self, recipe: Recipe, model=None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = recipe.judge.rm_path
        if not path:
            raise UserError("judge.rm_path: required for judge.kind: rm (the model/ dir of a `prefopt rm` run)")
        try:
            self.tok = AutoTokenizer.from_pretrained(path)
            self.model = model if model is not None else \
                AutoModelForSequenceClassification.from_pretrained(path).to(eng.device()).eval()
        except (OSError, ValueError) as e:
            raise UserError(f"judge.rm_path: cannot load `{path}` ({str(e).splitlines()[0][:200]})") from None
        self.recipe, self.collate = recipe, Collator(self.tok.pad_token_id)

    @torch.no_grad()
    def score_all(self, items: list[tuple[str, str, str]]) -> list[float]:
        d, bs = self.recipe.data, self.recipe.judge.batch_size
        exs = [encode_example({"prompt": p, "completion": r}, self.tok, d.max_length, d.max_prompt_length,
                              LoadStats(), "judge", BadRows("error")) | {"idx": i} for i, (p, r, _) in enumerate(items)]
        out = []
        for i in range(0, len(exs), bs):
            b = self.collate(exs[i:i + bs])
            out += sequence_scores(self.model, to_device(b, eng.device())).tolist()
        return out
