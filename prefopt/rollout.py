"""Rollouts for the RL objectives (`ppo`, `grpo`): sample responses from the policy, score them, share them.

Both objectives draw prompts the same way (this rank's chunks of the global rollout, from the data stream), sample
every chunk with a seed of (train.seed, update, global chunk index) from the one sampler, score the decoded text
with `judge`'s scorers (rule, llm, or a `prefopt rm` model), and all-gather the result, so that every rank holds
the same rollout and a run's numbers do not depend on how many ranks share it.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist

from prefopt import models
from prefopt.data.batch import Batch
from prefopt.data.collate import Collator
from prefopt.data.loader import BatchStream
from prefopt.data.tokenize import stop_ids
from prefopt.errors import UserError
from prefopt.logprobs import to_device
from prefopt.rl import response_mask
from prefopt.sampling import sample
from prefopt.steps import Step


class RolloutStep(Step):
    """What the RL steps share: the rules a rollout needs, the stream of prompt chunks (this rank's part of each
    update's prompts, resumable), the stop tokens and the reward. Subclasses set `name` and call `_setup`."""

    name = "?"

    def _setup(self, context, reward) -> None:
        self.context, self.stop = context, stop_ids(context.tokenizer)
        self.score = make_reward(context.recipe, reward, context.run_dir, context.world)
        self.collate = Collator(context.tokenizer.pad_token_id)  # rollouts stay padded: per-row token masks

    def _sample(self, update: int, chunks: list[list[dict]], n: int, max_new_tokens: int, temperature: float,
                top_p: float = 1.0) -> list[dict]:
        """`n` responses for each prompt of this rank's chunks; chunk c is global chunk rank·len(chunks) + c."""
        context = self.context
        return sample_chunks(context.engine, context.tokenizer, chunks, context.rank * len(chunks), update,
                             seed=context.recipe.train.seed, n=n, stop=self.stop, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=top_p)

    def _start(self, data_state: dict | None, chunk: int, prompts: int) -> None:
        """Stream `prompts` prompts an update (all ranks) in chunks of `chunk`: this rank's chunks of each."""
        context, recipe = self.context, self.context.recipe
        self.stream = BatchStream(context.train_data, list, chunk, prompts // (chunk * context.world), context.world,
                                  context.rank, recipe.train.seed, recipe.data.shuffle, recipe.data.shuffle_buffer,
                                  data_state)
        self.batches = iter(self.stream)


def make_reward(recipe, reward, run_dir, world: int):
    """[(prompt, response text, reference answer)] -> [score or None], from `reward` (a RewardConfig) through
    `judge`'s scorers; an rm reward is loaded frozen (and sharded like the reference under ZeRO-3)."""
    from prefopt.judging import make_scorer

    judged = dataclasses.replace(recipe, judge=dataclasses.replace(recipe.judge, kind=reward.kind,
                                                                   rm_path=reward.path or recipe.judge.rm_path))
    if reward.kind != "rm":
        scorer = make_scorer(judged, run_dir)
        return _with_partial_credit(scorer, reward.partial_credit) if reward.partial_credit else scorer
    from prefopt.judging.rm import RMJudge

    return RMJudge(judged, models.load_reward(judged, world)).score_all


def _with_partial_credit(scorer, credit: float):
    """The rule scorer plus `credit` × closeness for wrong answers: two wrong answers to a problem then differ, so
    a group of them has an advantage (a near miss over a far one) where the rubric alone gives none."""
    from prefopt.judging import rule

    def score(items):
        return [None if value is None else value + (credit * rule.closeness(response, reference) if value == 2 else 0.0)
                for value, (_, response, reference) in zip(scorer(items), items)]
    return score


def chunk_seed(seed: int, update: int, chunk: int) -> int:
    """The sampling seed of one global chunk of one update: the same whatever the number of ranks."""
    return (seed * 1_000_003 + update) * 10_007 + chunk


def sample_chunks(engine, tok, chunks: list[list[dict]], first_chunk: int, update: int, *, seed: int, n: int,
                  stop: list[int], max_new_tokens: int, temperature: float, top_p: float = 1.0) -> list[dict]:
    """`n` responses for each prompt of this rank's chunks (chunk c is global chunk `first_chunk + c`).

    One record per response, in prompt order then sample order: prompt ids and text, the response ids up to and
    including its first stop token, whether it stopped, the reference answer, and `group` (the prompt's index
    within this rank's part, so that a group's n responses stay together).
    """
    out, group = [], 0
    for c, examples in enumerate(chunks):
        responses = sample(engine, [ex["prompt_ids"] for ex in examples], pad_id=tok.pad_token_id, stop_ids=stop,
                           max_new_tokens=max_new_tokens, seed=chunk_seed(seed, update, first_chunk + c),
                           temperature=temperature, top_p=top_p, n=n).cpu()
        mask, ended = response_mask(responses, stop)
        for row, (ids, length, end) in enumerate(zip(responses, mask.sum(-1).tolist(), ended.tolist())):
            ex = examples[row // n]
            out.append({"prompt_ids": ex["prompt_ids"], "completion_ids": ids[:length].tolist(), "ended": end,
                        "prompt": ex["prompt"], "answer": ex.get("answer"), "group": group + row // n})
        group += len(examples)
    return out


def require_answers(samples: list[dict], reward_kind: str, key: str) -> None:
    """The rule judge compares with a reference answer: every prompt must carry one (`key` names the section)."""
    if reward_kind == "rule" and any(s["answer"] is None for s in samples):
        raise UserError(f"{key}.reward.kind: rule needs the reference `answer` field in every data.train record")


def score(samples: list[dict], tok, scorer, reward_kind: str, missing_eos_penalty: float, key: str) -> None:
    """Set each sample's `score` (the judge's, minus `missing_eos_penalty` without a stop token), `judged` (the
    judge's own) and `failed` (a judge that kept failing: scored 0 and counted, never dropped)."""
    require_answers(samples, reward_kind, key)
    texts = tok.batch_decode([s["completion_ids"] for s in samples], skip_special_tokens=True)
    scores = scorer([(s["prompt"], text, "" if s["answer"] is None else str(s["answer"]))
                     for s, text in zip(samples, texts)])
    for s, value in zip(samples, scores):
        s["failed"] = value is None
        s["judged"] = 0.0 if value is None else float(value)
        s["score"] = s["judged"] - (0.0 if s["ended"] else missing_eos_penalty)


def all_gather(samples: list[dict], world: int) -> list[dict]:
    """Every rank's samples, in rank order (which is global chunk order), as one list."""
    if world == 1:
        return list(samples)
    gathered = [None] * world
    dist.all_gather_object(gathered, samples)
    offset, out = 0, []
    for part in gathered:  # group indices become global: rank r's groups follow those of ranks < r
        groups = 1 + max((s["group"] for s in part), default=-1)
        out += [{**s, "group": s["group"] + offset} for s in part]
        offset += groups
    return out


def collate(samples: list[dict], collator: Collator, device) -> Batch:
    """A padded batch of (prompt, response) rows, on the device: rollouts keep per-row token masks."""
    examples = [{"idx": i, "prompt_ids": s["prompt_ids"], "completion_ids": s["completion_ids"]}
                for i, s in enumerate(samples)]
    return to_device(collator(examples), device)


def padded(samples: list[dict], key: str) -> torch.Tensor:
    """Per-token tensors of every sample, right-padded with zeros to [samples, longest]."""
    return torch.nn.utils.rnn.pad_sequence([s[key] for s in samples], batch_first=True)
