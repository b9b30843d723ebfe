"""A deliberately plain reimplementation of what prefopt computes, for tests to compare against.

Nothing here imports prefopt's data, collator or log-prob code: tokenization follows the rules as stated in
docs/recipes.md, and each sequence gets its own unpadded Hugging Face forward over the whole sequence.
"""

import torch
import torch.nn.functional as F


def tokenize(tokenizer, rec: dict, side: str, max_length: int, max_prompt_length: int) -> tuple[list, list]:
    """(prompt ids, response ids) of one record: one end marker, prompt cut on the left, response on the right."""
    prompt, response = rec["prompt"], rec[side]
    if isinstance(prompt, list):  # chat: prompt with the generation cue, then the rest of the rendered conversation
        head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(prompt + response, tokenize=False)
        p_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(full[len(head):], add_special_tokens=False)["input_ids"]
        assert r_ids[-1] == tokenizer.eos_token_id  # the tiny template closes turns with EOS
    else:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if r_ids[-1] != tokenizer.eos_token_id:
            r_ids = r_ids + [tokenizer.eos_token_id]
    p_ids = [tokenizer.bos_token_id] + p_ids
    p_ids = p_ids[-max_prompt_length:]
    return p_ids, r_ids[:max_length - len(p_ids)]


def sequence_logp(model, prompt_ids: list, response_ids: list) -> torch.Tensor:
    """Σ log π(response | prompt) from full-vocabulary logits of one unpadded forward."""
    ids = torch.tensor([prompt_ids + response_ids])
    logits = model(input_ids=ids).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    return logp[len(prompt_ids) - 1:].sum()


def logps(model, pairs: list[tuple]) -> torch.Tensor:
    """[chosen log-probs..., rejected log-probs...] for tokenized pairs ((p, chosen), (p, rejected))."""
    return torch.stack([sequence_logp(model, *pair[side]) for side in (0, 1) for pair in pairs])


def dpo_steps(policy, reference, pairs: list[tuple], beta: float, lr: float, steps: int) -> list[dict]:
    """Full-batch DPO with AdamW at a constant lr; per step (before its update) loss, margin and log-probs."""
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    n, out = len(pairs), []
    with torch.no_grad():
        ref = logps(reference, pairs)
    for _ in range(steps):
        pol = logps(policy, pairs)
        chosen, rejected = pol[:n] - ref[:n], pol[n:] - ref[n:]
        loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
        out.append({"loss": loss.item(), "rewards/margins": (beta * (chosen - rejected)).mean().item(),
                    "logps/chosen": pol[:n].mean().item(), "logps/rejected": pol[n:].mean().item()})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return out


def tokenize_chatml(tokenizer, rec: dict, side: str) -> tuple[list, list]:
    """(prompt ids, response ids) of a chat record under a ChatML template (`<|im_start|>role\\n...<|im_end|>\\n`),
    no truncation: the prompt is the conversation with the generation cue, the response what the model would
    generate after it, up to and including its `<|im_end|>` (the newline after it is never generated)."""
    head = tokenizer.apply_chat_template(rec["prompt"], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(rec["prompt"] + rec[side], tokenize=False)
    assert full.startswith(head)
    tail = full[len(head):]
    tail = tail[:tail.rindex("<|im_end|>") + len("<|im_end|>")]
    return tokenizer(head, add_special_tokens=False)["input_ids"], tokenizer(tail, add_special_tokens=False)["input_ids"]
