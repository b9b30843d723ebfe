"""Record shapes: explicit prompts, HH transcripts, UltraFeedback-style conversations; role checks with file:line."""

import pytest

from prefopt.data.records import CONVERSATION, EXPLICIT, TRANSCRIPT, normalize
from prefopt.data.sources import BadRows
from prefopt.errors import UserError
from prefopt.schema import DataConfig


def msg(role, content):
    return {"role": role, "content": content}


def norm(rec, kind="preference", policy="error", **cfg):
    bad = BadRows(policy)
    return normalize(rec, "d.jsonl:7", kind, DataConfig(**cfg), bad), bad


def test_hh_transcripts_split_after_the_last_shared_assistant_marker():
    rec = {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5"}
    (ex, shape), _ = norm(rec)
    assert shape == TRANSCRIPT
    assert ex == {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": " 4", "rejected": " 5"}
    # multi-turn: every earlier turn stays in the prompt; responses sharing their first words are cut at the marker
    rec = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: 2+2?\n\nAssistant: It is 4.",
           "rejected": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: 2+2?\n\nAssistant: It is 5."}
    (ex, _), _ = norm(rec)
    assert ex == {"prompt": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: 2+2?\n\nAssistant:",
                  "chosen": " It is 4.", "rejected": " It is 5."}


def test_ultrafeedback_prompt_string_plus_whole_conversations():
    rec = {"prompt": "What is 2+2?", "chosen": [msg("user", "What is 2+2?"), msg("assistant", "4")],
           "rejected": [msg("user", "What is 2+2?"), msg("assistant", "5")], "score_chosen": 9.0}
    (ex, shape), _ = norm(rec)
    assert shape == CONVERSATION
    assert ex == {"prompt": [msg("user", "What is 2+2?")], "chosen": [msg("assistant", "4")],
                  "rejected": [msg("assistant", "5")]}


def test_multi_turn_conversations_keep_every_prompt_turn():
    head = [msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "2+2?")]
    rec = {"chosen": head + [msg("assistant", "4")], "rejected": head + [msg("assistant", "5")]}
    (ex, shape), _ = norm(rec)
    assert (shape, ex) == (CONVERSATION, {"prompt": head, "chosen": [msg("assistant", "4")],
                                          "rejected": [msg("assistant", "5")]})
    (ex, _), _ = norm({"prompt": head[:2], **rec})  # a message prompt repeating the first turns
    assert ex["prompt"] == head


def test_explicit_prompts_are_left_as_they_are():
    rec = {"prompt": [msg("user", "2+2?")], "chosen": [msg("assistant", "4")], "rejected": "5"}
    (ex, shape), _ = norm(rec)
    assert shape == EXPLICIT and ex == rec


@pytest.mark.parametrize("rec, reason", [
    ({"prompt": [msg("user", "q")], "chosen": [msg("user", "4")], "rejected": [msg("assistant", "5")]},
     "not an assistant turn: `chosen` message 0 has role `user`"),
    ({"prompt": [msg("narrator", "q")], "chosen": "4", "rejected": "5"},
     "unknown role: prompt message 0 has role `narrator`"),
    ({"prompt": "other question", "chosen": [msg("user", "q"), msg("assistant", "4")],
      "rejected": [msg("user", "q"), msg("assistant", "5")]}, "prompt mismatch"),
    ({"chosen": "Human: a", "rejected": "Human: b"}, "missing field: `prompt`"),
    ({"chosen": [msg("assistant", "4")], "rejected": [msg("user", "q"), msg("assistant", "5")]}, "no prompt"),
])
def test_bad_chat_rows_name_file_line_and_reason(rec, reason):
    with pytest.raises(UserError, match=rf"^d\.jsonl:7: {reason}"):
        norm(rec)
    found, bad = norm(rec, policy="skip")
    assert found is None and bad.total == 1 and reason.split(":")[0] in bad.counts


def test_inference_can_be_turned_off_and_roles_widened():
    rec = {"chosen": "\n\nHuman: q\n\nAssistant: 4", "rejected": "\n\nHuman: q\n\nAssistant: 5"}
    with pytest.raises(UserError, match="missing field: `prompt`"):
        norm(rec, infer_prompt=False)
    conv = {"prompt": "q", "chosen": [msg("user", "q"), msg("assistant", "4")],
            "rejected": [msg("user", "q"), msg("assistant", "5")]}
    with pytest.raises(UserError, match="not an assistant turn"):
        norm(conv, infer_prompt=False)
    (ex, _), _ = norm({"prompt": [msg("narrator", "q")], "chosen": "4", "rejected": "5"},
                      chat_roles=["user", "assistant", "narrator"])
    assert ex["prompt"] == [msg("narrator", "q")]


def test_sft_messages_target_is_the_trailing_assistant_turn():
    conv = [msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "2+2?"), msg("assistant", "4")]
    (ex, shape), _ = norm({"messages": conv, "answer": "4"}, kind="sft")
    assert (shape, ex) == (EXPLICIT, {"prompt": conv[:3], "completion": conv[3:], "answer": "4"})
    with pytest.raises(UserError, match="empty field: a conversation has no assistant turn"):
        norm({"messages": conv[:3]}, kind="sft")


@pytest.mark.parametrize("rec,reason", [
    ({"prompt": "Q", "completion": "A"}, "missing field"),
    ({"prompt": "Q", "completion": "A", "label": "yes"}, "wrong type"),
    ({"prompt": "Q", "completion": "A", "label": 1}, "wrong type"),
    ({"prompt": "Q", "label": True}, "missing field"),
])
def test_unpaired_feedback_needs_a_completion_and_a_boolean_label(rec, reason):
    with pytest.raises(UserError, match=f"d.jsonl:7: {reason}"):
        norm(rec, kind="unpaired")
    (ex, _), _ = norm({"prompt": "Q", "completion": "A", "label": False}, kind="unpaired")
    assert ex == {"prompt": "Q", "completion": "A", "label": False}


def test_pair_scores_are_kept_as_numbers_and_checked():
    (ex, _), _ = norm({"prompt": "Q", "chosen": "A", "rejected": "B", "score_chosen": 5, "score_rejected": 2.5})
    assert (ex["score_chosen"], ex["score_rejected"]) == (5.0, 2.5)
    (ex, _), _ = norm({"prompt": "Q", "chosen": "A", "rejected": "B", "score_chosen": None, "score_rejected": 2})
    assert "score_chosen" not in ex  # a judge pair whose chosen is the dataset's solution: no offset available
    with pytest.raises(UserError, match="d.jsonl:7: wrong type"):
        norm({"prompt": "Q", "chosen": "A", "rejected": "B", "score_chosen": "high", "score_rejected": 2})
