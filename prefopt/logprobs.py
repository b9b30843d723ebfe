"""Per-sequence log-probs from hidden states, chunked over response tokens.

Only positions whose next token is a response token are sent through the LM head, a chunk at a time, and only
each chunk's logits are upcast to fp32: the full [rows, T, vocab] logits tensor, fp32 or not, never exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SeqLogps:
    """Per-row sums over response tokens: log-prob, token count, and (when asked) entropy."""

    logps: Tensor  # [rows], Σ_t log π(y_t | x, y_<t)
    tokens: Tensor  # [rows], response length
    entropy: Tensor | None = None  # [rows], Σ_t H(π(· | x, y_<t)), detached


def backbone_and_head(model):
    """Split a causal LM into the transformer body (returns hidden states) and its output projection."""
    body = getattr(model, model.base_model_prefix, None) if hasattr(model, "base_model_prefix") else None
    if body is None or body is model:
        raise TypeError(f"{type(model).__name__}: cannot find the transformer body to run without the LM head")
    return body, model.get_output_embeddings()


def sequence_logps(model, batch: dict, chunk_tokens: int = 4096, with_entropy: bool = False) -> SeqLogps:
    """Sum of log π over each row's response tokens (completion_mask), with optional detached entropy."""
    body, head = backbone_and_head(model)
    ids, attn, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    hidden = body(input_ids=ids, attention_mask=attn).last_hidden_state[:, :-1]
    mask = comp[:, 1:].bool()  # position t-1 predicts token t
    rows = mask.nonzero(as_tuple=True)[0]
    feats, targets = hidden[mask], ids[:, 1:][mask]
    token_lp, token_ent = [], []
    for f, t in zip(feats.split(chunk_tokens), targets.split(chunk_tokens)):
        logits = head(f).float()
        lse = torch.logsumexp(logits, dim=-1)
        token_lp.append(logits.gather(-1, t[:, None]).squeeze(-1) - lse)
        if with_entropy:
            with torch.no_grad():
                p = torch.softmax(logits, dim=-1)
                token_ent.append(lse - (p * logits).sum(-1))
    n = ids.shape[0]
    zeros = torch.zeros(n, device=ids.device, dtype=torch.float32)
    logps = zeros.index_add(0, rows, torch.cat(token_lp)) if token_lp else zeros
    tokens = mask.sum(-1).to(torch.float32)
    entropy = zeros.index_add(0, rows, torch.cat(token_ent)) if with_entropy and token_ent else None
    return SeqLogps(logps, tokens, entropy)


def sequence_scores(model, batch: dict) -> Tensor:
    """Scalar reward per row from a sequence-classification model (score at the last non-pad token)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.squeeze(-1).float()
