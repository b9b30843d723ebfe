"""The embedded arithmetic task in chat form, for pretrained chat models (`builtin:arith-chat/...`).

A plain record's prompt `Q: 12 + 35 = ?\\n` becomes one user turn that asks for the working and a last line
`Answer: <number>`; its responses become assistant turns. The rule judge (prefopt/judging/rule.py) reads the final
answer however the model phrases it: a `\\boxed{}`, else the number after the last `Answer:`, else the last number in
the response, compared exactly (so `47`, `47.0` and `Answer: 47` are all right for 47).

>>> to_chat({"prompt": "Q: 12 + 35 = ?\\n", "chosen": "12 + 35 = 47. Answer: 47", "rejected": "Answer: 50"})["prompt"]
[{'role': 'user', 'content': "What is 12 + 35? Work it out step by step, then end with a line 'Answer: <number>'."}]
"""

from __future__ import annotations

RESPONSES = ("chosen", "rejected", "completion")


def question(prompt: str) -> str:
    """The bare problem of a plain prompt: `Q: 12 + 35 = ?\\n` -> `12 + 35`."""
    return prompt.strip().removeprefix("Q:").removesuffix("= ?").strip()


def to_chat(record: dict) -> dict:
    """The record with its prompt as a user turn and each response as an assistant turn (other fields kept)."""
    ask = f"What is {question(record['prompt'])}? Work it out step by step, then end with a line 'Answer: <number>'."
    out = {**record, "prompt": [{"role": "user", "content": ask}]}
    for key in RESPONSES:
        if key in out:
            out[key] = [{"role": "assistant", "content": out[key]}]
    return out
