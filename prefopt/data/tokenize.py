"""Records -> validated examples -> token ids, with truncation accounting.

Three record shapes are understood (field names mapped by `data.fields`):
  preference  {prompt, chosen, rejected}  strings, or lists of {role, content} messages (chat template)
  sft         {prompt, completion} or {messages} (the last assistant message is the completion)
  prompt      {prompt} alone, for generation
The prompt keeps its last `max_prompt_length` tokens (left truncation); responses keep their first tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

from prefopt.data.sources import BadRows
from prefopt.schema import FieldsConfig

KINDS = ("preference", "sft", "prompt")


@dataclass
class Truncation:
    """How many rows lost prompt tokens (left) or response tokens (right)."""

    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items())) or "none truncated"


def _is_messages(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in v)


def _text_or_messages(rec: dict, key: str, where: str, bad: BadRows, role_hint: str) -> Any:
    """Return the field as a non-empty str or message list, or reject the row (returns None)."""
    if key not in rec or rec[key] is None:
        bad.reject(where, "missing field", f"`{key}` ({role_hint})")
        return None
    v = rec[key]
    if isinstance(v, str):
        if not v.strip():
            bad.reject(where, "empty field", f"`{key}`")
            return None
        return v
    if _is_messages(v):
        if not v or not all(isinstance(m["content"], str) for m in v):
            bad.reject(where, "wrong type", f"`{key}` messages need string `content`")
            return None
        return v
    bad.reject(where, "wrong type", f"`{key}` should be a string or a list of {{role, content}}, got {type(v).__name__}")
    return None


def normalize(rec: Any, where: str, kind: str, f: FieldsConfig, bad: BadRows) -> dict | None:
    """Check one raw record and map it onto prefopt's names; None when the row was rejected."""
    if not isinstance(rec, dict):
        bad.reject(where, "wrong type", f"a record must be a JSON object, got {type(rec).__name__}")
        return None
    if kind == "sft" and f.messages in rec and f.prompt not in rec:
        msgs = rec[f.messages]
        if not _is_messages(msgs) or len(msgs) < 2 or msgs[-1]["role"] != "assistant":
            bad.reject(where, "wrong type", f"`{f.messages}` needs >= 2 messages ending with an assistant turn")
            return None
        return {"prompt": msgs[:-1], "completion": [msgs[-1]]}
    prompt = _text_or_messages(rec, f.prompt, where, bad, "the prompt")
    if prompt is None:
        return None
    out = {"prompt": prompt}
    if f.answer in rec:
        out["answer"] = rec[f.answer]
    names = {"preference": (f.chosen, f.rejected), "sft": (f.completion,), "prompt": ()}[kind]
    for ours, theirs in zip(("chosen", "rejected") if kind == "preference" else ("completion",), names):
        value = _text_or_messages(rec, theirs, where, bad, ours)
        if value is None:
            return None
        out[ours] = value
    if kind == "preference":
        if out["chosen"] == out["rejected"]:
            same = "prompt == chosen == rejected" if out["prompt"] == out["chosen"] else "chosen == rejected"
            bad.reject(where, "identical responses", f"{same}: no preference to learn")
            return None
    return out


def render(prompt: Any, response: Any, tokenizer) -> tuple[str, str]:
    """Turn a (prompt, response) into text; message lists go through the tokenizer's chat template."""
    if isinstance(prompt, str) and isinstance(response, str):
        return prompt, response
    msgs = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    resp = response if isinstance(response, list) else [{"role": "assistant", "content": response}]
    head = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(msgs + resp, tokenize=False)
    if not full.startswith(head):
        raise ValueError("chat template does not render the prompt as a prefix of prompt+response")
    return head, full[len(head):]


def encode_prompt(prompt: Any, tokenizer) -> list[int]:
    """Token ids of a prompt (BOS first when the tokenizer has one); chat prompts end with the generation cue."""
    if isinstance(prompt, list):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None and (not ids or ids[0] != bos) else []) + ids


def encode_example(ex: dict, tokenizer, max_length: int, max_prompt_length: int, trunc: Truncation,
                   where: str, bad: BadRows) -> dict | None:
    """Tokenize one normalized example: prompt ids plus one id list per response (EOS appended)."""
    responses = [k for k in ("chosen", "rejected", "completion") if k in ex]
    texts = {}
    for k in responses:
        prompt_text, texts[k] = render(ex["prompt"], ex[k], tokenizer)
    prompt_ids = encode_prompt(prompt_text if responses else ex["prompt"], tokenizer)
    out = {"prompt_ids": prompt_ids}
    if len(prompt_ids) > max_prompt_length:
        out["prompt_ids"] = prompt_ids = prompt_ids[-max_prompt_length:]
        trunc.counts["prompt truncated"] += 1
    budget = max_length - len(prompt_ids)
    if responses and budget < 1:
        bad.reject(where, "too long", f"the prompt leaves no room for a response within max_length={max_length}")
        return None
    cut = False
    for k in responses:
        eos = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]  # the toy's vocab has no EOS
        ids = tokenizer(texts[k], add_special_tokens=False)["input_ids"] + eos
        cut |= len(ids) > budget
        out[f"{k}_ids"] = ids[:budget]
    if cut:
        trunc.counts["response truncated"] += 1
    if "answer" in ex:
        out["answer"] = ex["answer"]
    return out


def iter_examples(records: Iterator[tuple[str, Any]], kind: str, tokenizer, fields: FieldsConfig, max_length: int,
                  max_prompt_length: int, bad: BadRows, trunc: Truncation) -> Iterator[dict]:
    """Records in, tokenized examples out (each with a stable `idx`: its rank among the kept rows)."""
    idx = 0
    for where, rec in records:
        ex = normalize(rec, where, kind, fields, bad)
        if ex is None:
            continue
        try:
            enc = encode_example(ex, tokenizer, max_length, max_prompt_length, trunc, where, bad)
        except ValueError as e:
            bad.reject(where, "unrenderable", str(e))
            continue
        if enc is None:
            continue
        enc["idx"] = idx
        idx += 1
        yield enc
