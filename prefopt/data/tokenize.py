"""Validated examples -> token ids: the prompt/response boundary, exactly one end marker, truncation accounting.

The boundary is where generation starts: the prompt is tokenized alone (a chat prompt rendered with the
generation cue), then the response alone, so the ids are the ones `generate` feeds and samples. Every response
ends with exactly one end marker, decided by `response_ids` for training pairs, SFT targets, the dispersion probe
and the reward-model judge alike:
  plain text  EOS is appended unless the ids already end with it (whitespace after a final EOS is dropped);
  chat        the template's own end of turn (its last special token) ends the response and nothing is added;
              what the template writes after it (e.g. the newline after `<|im_end|>`) is never generated, so it
              is dropped, and a response whose content already ends with that token keeps one, not two. A
              template that closes the assistant turn with no special token gets EOS appended, and the load
              report says so once.
The prompt keeps its last `max_prompt_length` tokens (left truncation); responses keep their first tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

from prefopt.data.records import normalize
from prefopt.data.sources import BadRows
from prefopt.schema import DataConfig

KINDS = ("preference", "sft", "unpaired", "prompt")
# Bump when the rules above change what ids a record gives: reference log-prob caches built before are stale.
TOKENIZATION_VERSION = 3  # 3: a chat response that already ends its turn gets no second end marker
NO_END_TOKEN = "the chat template closes the assistant turn with no end token: EOS appended to each response"


class Unrenderable(ValueError):
    """A record the chat template cannot render as prompt, then prompt + response."""


@dataclass
class LoadStats:
    """What loading found besides bad rows: record shapes, truncated rows, and one-off notes for the report."""

    truncated: Counter = field(default_factory=Counter)
    shapes: Counter = field(default_factory=Counter)
    notes: set = field(default_factory=set)

    def summary(self) -> str:
        """E.g. `64 explicit prompt; 1 prompt truncated`, then the notes."""
        parts = ["; ".join(f"{n} {shape}" for shape, n in self.shapes.most_common()) or "no rows",
                 ", ".join(f"{n} {what}" for what, n in sorted(self.truncated.items())) or "none truncated"]
        return "; ".join(parts + sorted(self.notes))

    def as_metrics(self, prefix: str = "data") -> dict[str, float]:
        """`data/rows` and `data/truncated/{prompt,response}` (zeros included, so every run has the keys)."""
        out = {f"{prefix}/rows": float(sum(self.shapes.values()))}
        for what in ("prompt", "response"):
            out[f"{prefix}/truncated/{what}"] = float(self.truncated[f"{what} truncated"])
        return out


def special_ids(tokenizer) -> frozenset[int]:
    """Every special token id: the named ones and added tokens marked special (e.g. `<|im_end|>`)."""
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(t, "special", False))
    return frozenset(ids)


def response_ids(text: str, tokenizer, chat: bool, stats: LoadStats | None = None) -> list[int]:
    """Token ids of one response ending in exactly one end marker (the module docstring states the rule)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    last = len(ids) - 1
    while last >= 0 and not tokenizer.decode(ids[last:last + 1]).strip():
        last -= 1  # trailing whitespace tokens
    if last >= 0 and (ids[last] in special_ids(tokenizer) if chat else ids[last] == eos):
        while chat and last >= 1 and ids[last - 1] == ids[last]:
            last -= 1  # the content ended its own turn (`...<|im_end|>`) before the template's: keep one
        return ids[:last + 1]
    if chat and stats is not None:
        stats.notes.add(NO_END_TOKEN)
    return ids if eos is None else ids + [eos]  # the toy's vocabulary has no EOS


def render(prompt: Any, response: Any, tokenizer) -> tuple[str, str, bool]:
    """(prompt text, response text, chat?); message lists go through the tokenizer's chat template."""
    if isinstance(prompt, str) and isinstance(response, str):
        return prompt, response, False
    msgs = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    resp = response if isinstance(response, list) else [{"role": "assistant", "content": response}]
    head, full = _template(tokenizer, msgs, True), _template(tokenizer, msgs + resp, False)
    if not full.startswith(head):
        raise Unrenderable("chat template does not render the prompt as a prefix of prompt+response")
    return head, full[len(head):], True


def _template(tokenizer, messages: list[dict], generation_cue: bool) -> str:
    """apply_chat_template, with its failures (no template, a template's own raise) as Unrenderable."""
    if not getattr(tokenizer, "chat_template", None):
        raise Unrenderable("the tokenizer has no chat template (set one, or give prompt and responses as strings)")
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_cue)
    except Exception as e:  # jinja2's TemplateError and whatever a template raises: the row's problem
        raise Unrenderable(f"chat template raised {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None


def encode_prompt(prompt: Any, tokenizer) -> list[int]:
    """Token ids of a prompt (BOS first when the tokenizer has one); chat prompts end with the generation cue."""
    text = _template(tokenizer, prompt, True) if isinstance(prompt, list) else prompt
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None and (not ids or ids[0] != bos) else []) + ids


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end a generated response: EOS, and the chat template's end of turn when it has another."""
    out = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    try:
        _, text, _ = render([{"role": "user", "content": "1"}], [{"role": "assistant", "content": "2"}], tokenizer)
    except Unrenderable:
        return out
    end = response_ids(text, tokenizer, chat=True)[-1]
    return out + [end] if end not in out and end in special_ids(tokenizer) else out


def encode_example(ex: dict, tokenizer, max_length: int, max_prompt_length: int, stats: LoadStats,
                   where: str, bad: BadRows) -> dict | None:
    """Tokenize one normalized example: prompt ids plus one id list per response, each with one end marker."""
    responses = [k for k in ("chosen", "rejected", "completion") if k in ex]
    texts, prompt_text, chat = {}, ex["prompt"], False
    for k in responses:
        prompt_text, texts[k], chat = render(ex["prompt"], ex[k], tokenizer)
    prompt_ids = encode_prompt(prompt_text, tokenizer)
    out = {"prompt_ids": prompt_ids}
    if len(prompt_ids) > max_prompt_length:
        out["prompt_ids"] = prompt_ids = prompt_ids[-max_prompt_length:]
        stats.truncated["prompt truncated"] += 1
    budget = max_length - len(prompt_ids)
    if responses and budget < 1:
        bad.reject(where, "too long", f"the prompt leaves no room for a response within max_length={max_length}")
        return None
    cut = False
    for k in responses:
        ids = response_ids(texts[k], tokenizer, chat, stats)
        cut |= len(ids) > budget
        out[f"{k}_ids"] = ids[:budget]
    if cut:
        stats.truncated["response truncated"] += 1
    if not responses:  # prompt-only records (generation, PPO): the reward scorers read the prompt as given
        out["prompt"] = ex["prompt"]
    for key in ("answer", "label", "score_chosen", "score_rejected"):
        if key in ex:
            out[key] = ex[key]
    return out


def iter_examples(records: Iterator[tuple[str, Any]], kind: str, tokenizer, cfg: DataConfig, bad: BadRows,
                  stats: LoadStats) -> Iterator[dict]:
    """Records in, tokenized examples out (each with a stable `idx`: its rank among the kept rows)."""
    idx = 0
    for where, rec in records:
        found = normalize(rec, where, kind, cfg, bad)
        if found is None:
            continue
        ex, shape = found
        try:
            enc = encode_example(ex, tokenizer, cfg.max_length, cfg.max_prompt_length, stats, where, bad)
        except Unrenderable as e:
            bad.reject(where, "unrenderable", str(e))
            continue
        if enc is None:
            continue
        stats.shapes[shape] += 1
        enc["idx"] = idx
        idx += 1
        yield enc
