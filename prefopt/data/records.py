"""Raw records -> validated (prompt, responses), including the implicit prompts of the public preference sets.

Shapes understood (field names mapped by `data.fields`; docs/recipes.md states the same rules):

  explicit      {prompt, chosen, rejected} / {prompt, completion}: the prompt a string or messages, each response
                a string or assistant turns. SFT also takes {messages}: the trailing assistant turns are the target.
  conversation  responses are whole conversations sharing their leading turns (UltraFeedback-binarized: a
                `prompt` string, then chosen/rejected = [user turn, assistant turn]). The prompt is the shared
                leading messages up to and including the last non-assistant turn, all turns kept; what follows
                must be assistant turns. A `prompt` field, if present, must repeat them: a string equal to one
                of the prompt's user turns, or messages equal to its first turns.
  transcript    no `prompt`, chosen/rejected strings sharing their beginning (Anthropic HH:
                "\\n\\nHuman: ...\\n\\nAssistant: ..."). The prompt is that shared beginning cut just after the last
                `data.assistant_marker` in it; the responses are the rest.

`data.infer_prompt: false` turns the last two off: then a missing prompt or a non-assistant response turn is a
bad row. Prompt messages must use a role in `data.chat_roles`. Every rejection goes through `BadRows`, so it
names `file:line` and is counted per reason.
"""

from __future__ import annotations

from typing import Any

from prefopt.data.sources import BadRows
from prefopt.schema import DataConfig

EXPLICIT, CONVERSATION, TRANSCRIPT = "explicit prompt", "prompt from shared conversation turns", \
    "prompt from shared transcript beginning"
RESPONSES = {"preference": ("chosen", "rejected"), "sft": ("completion",), "unpaired": ("completion",), "prompt": ()}


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _field(rec: dict, key: str, what: str, where: str, bad: BadRows) -> Any:
    """The field as a non-empty string or a list of {role, content: str} messages; None after rejecting the row."""
    if rec.get(key) is None:
        bad.reject(where, "missing field", f"`{key}` ({what})")
        return None
    value = rec[key]
    if isinstance(value, str):
        if not value.strip():
            bad.reject(where, "empty field", f"`{key}`")
            return None
        return value
    if _is_messages(value):
        if not all(isinstance(m.get("content"), str) and isinstance(m["role"], str) for m in value):
            bad.reject(where, "wrong type", f"`{key}` messages need string `role` and `content`")
            return None
        return [{"role": m["role"], "content": m["content"]} for m in value]
    bad.reject(where, "wrong type", f"`{key}` should be a string or a list of {{role, content}}, got {type(value).__name__}")
    return None


def _check_roles(prompt: Any, responses: dict, cfg: DataConfig, where: str, bad: BadRows) -> bool:
    """Prompt turns use a known role; response turns are the assistant's."""
    if isinstance(prompt, list):
        for i, m in enumerate(prompt):
            if m["role"] not in cfg.chat_roles:
                bad.reject(where, "unknown role", f"prompt message {i} has role `{m['role']}` "
                                                  f"(known: {', '.join(cfg.chat_roles)}; widen with data.chat_roles)")
                return False
    for name, value in responses.items():
        if isinstance(value, list):
            for i, m in enumerate(value):
                if m["role"] != "assistant":
                    bad.reject(where, "not an assistant turn",
                               f"`{name}` message {i} has role `{m['role']}`; a response must be assistant turns")
                    return False
    return True


def _split_conversations(convs: list[list[dict]]) -> tuple[list[dict], list[list[dict]]]:
    """Shared leading turns up to the last non-assistant one (the prompt), and each conversation's remainder."""
    shared = 0
    while all(len(c) > shared for c in convs) and all(c[shared] == convs[0][shared] for c in convs):
        shared += 1
    cut = max((i + 1 for i in range(shared) if convs[0][i]["role"] != "assistant"), default=0)
    return convs[0][:cut], [c[cut:] for c in convs]


def _prompt_repeated(explicit: Any, implicit: list[dict]) -> bool:
    """Does the record's own prompt field say the same as the conversations' shared turns?"""
    if isinstance(explicit, str):
        return any(m["role"] == "user" and m["content"].strip() == explicit.strip() for m in implicit)
    return implicit[:len(explicit)] == explicit


def _split_transcript(chosen: str, rejected: str, marker: str) -> tuple[str, str, str] | None:
    """HH transcripts: the shared beginning cut just after its last assistant marker; None when it has none."""
    shared = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        shared += 1
    end = chosen.rfind(marker, 0, shared)
    if end < 0:
        return None
    cut = end + len(marker)
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _side_fields(rec: dict, kind: str, f, out: dict, where: str, bad: BadRows) -> bool:
    """KTO's `label` (required, a bool) and a pair's judge scores (optional numbers; ODPO's offset) into `out`."""
    if kind == "unpaired":
        label = rec.get(f.label)
        if label is None:
            bad.reject(where, "missing field", f"`{f.label}` (true: desirable completion, false: undesirable)")
            return False
        if not isinstance(label, bool):
            bad.reject(where, "wrong type", f"`{f.label}` must be true or false, got {label!r}")
            return False
        out["label"] = label
    if kind == "preference":
        scores = [rec.get(f.score_chosen), rec.get(f.score_rejected)]
        if any(s is not None and (isinstance(s, bool) or not isinstance(s, (int, float))) for s in scores):
            bad.reject(where, "wrong type", f"`{f.score_chosen}` and `{f.score_rejected}` must be numbers, got {scores}")
            return False
        if None not in scores:  # a judge pair whose chosen is the dataset's solution has no chosen score
            out["score_chosen"], out["score_rejected"] = float(scores[0]), float(scores[1])
    return True


def normalize(rec: Any, where: str, kind: str, cfg: DataConfig, bad: BadRows) -> tuple[dict, str] | None:
    """Check one raw record and map it onto prefopt's names; (example, shape) or None when the row was rejected."""
    f = cfg.fields
    if not isinstance(rec, dict):
        bad.reject(where, "wrong type", f"a record must be a JSON object, got {type(rec).__name__}")
        return None
    names = dict(zip(RESPONSES[kind], (f.chosen, f.rejected) if kind == "preference" else (f.completion,)))
    sft_messages = kind == "sft" and f.messages in rec and f.prompt not in rec
    if sft_messages:  # {messages}: the conversation's trailing assistant turns are the target
        names = {"completion": f.messages}
    responses = {}
    for ours, theirs in names.items():
        responses[ours] = _field(rec, theirs, ours, where, bad)
        if responses[ours] is None:
            return None
    shape, prompt = EXPLICIT, None
    if sft_messages and not isinstance(responses["completion"], list):
        bad.reject(where, "wrong type", f"`{f.messages}` should be a list of {{role, content}} messages")
        return None
    convs = [v for v in responses.values() if isinstance(v, list)]
    whole = cfg.infer_prompt and convs and len(convs) == len(responses) and \
        any(m["role"] != "assistant" for c in convs for m in c)
    shared, rest = _split_conversations(convs) if sft_messages or whole else ([], [])
    if not shared and (sft_messages or whole and f.prompt not in rec):
        bad.reject(where, "no prompt", "the conversations share no leading user turn to use as the prompt")
        return None
    if shared:  # whole conversations (a response with a stray user turn next to its own prompt is checked below)
        shape, prompt = EXPLICIT if sft_messages else CONVERSATION, shared
        if not sft_messages and f.prompt in rec:
            given = _field(rec, f.prompt, "the prompt", where, bad)
            if given is None:
                return None
            if not _prompt_repeated(given, prompt):
                bad.reject(where, "prompt mismatch", f"`{f.prompt}` is not the conversations' shared leading turns")
                return None
        responses = dict(zip(responses, rest))
        if any(not r for r in responses.values()):
            bad.reject(where, "empty field", "a conversation has no assistant turn after the prompt")
            return None
    elif cfg.infer_prompt and kind == "preference" and f.prompt not in rec and not convs:
        split = _split_transcript(responses["chosen"], responses["rejected"], cfg.assistant_marker)
        if split is None:
            bad.reject(where, "missing field", f"`{f.prompt}` (and chosen/rejected share no "
                                               f"{cfg.assistant_marker!r} turn boundary to infer it from)")
            return None
        shape, (prompt, responses["chosen"], responses["rejected"]) = TRANSCRIPT, split
        if not responses["chosen"].strip() or not responses["rejected"].strip():
            bad.reject(where, "empty field", "a transcript has nothing after the shared prompt")
            return None
    else:
        prompt = _field(rec, f.prompt, "the prompt", where, bad)
        if prompt is None:
            return None
    if not _check_roles(prompt, responses, cfg, where, bad):
        return None
    out = {"prompt": prompt, **responses}
    if f.answer in rec:
        out["answer"] = rec[f.answer]
    if not _side_fields(rec, kind, f, out, where, bad):
        return None
    if kind == "preference" and out["chosen"] == out["rejected"]:
        same = "prompt == chosen == rejected" if out["prompt"] == out["chosen"] else "chosen == rejected"
        bad.reject(where, "identical responses", f"{same}: no preference to learn")
        return None
    return out, shape
