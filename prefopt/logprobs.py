"""Per-token and per-sequence log-probs from hidden states, chunked over response tokens; critic values.

Only positions whose next token is a response token are sent through the LM head, a chunk at a time, and only
each chunk's logits are upcast to fp32: the full [rows, T, vocab] logits tensor, fp32 or not, never exists.
On a GPU each chunk is checkpointed under autograd: backward recomputes its logits (one extra head matmul, a few
ms at a 150k vocabulary) instead of keeping 2.5 GB of fp32 logits per 4096 tokens alive between forward and
backward, and a chunk is small (`chunk_size`), since its backward holds three fp32 [tokens, vocab] tensors while
every layer's activations are still alive. On the CPU host memory is plentiful and the recompute is a quarter of
the head's time (the head is most of a small model's step), so the logits are kept; there a chunk is small enough
for its fp32 logits to stay in cache (`chunk_size`), since log-softmax and its backward are memory-bound passes
over [tokens, vocab].
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from prefopt.attention import NAME as ATTENTION
from prefopt.attention import packed_mask
from prefopt.data.batch import Batch
from prefopt.engine import partitioned
from prefopt.lora import base_model


@dataclass
class SeqLogps:
    """Per-row sums over response tokens: log-prob, token count, and (when asked) entropy."""

    logps: Tensor  # [rows], Σ_t log π(y_t | x, y_<t)
    tokens: Tensor  # [rows], response length
    entropy: Tensor | None = None  # [rows], Σ_t H(π(· | x, y_<t)), detached


def backbone_and_head(model):
    """Split a causal LM into the transformer body (returns hidden states) and its output projection."""
    model = base_model(model)  # a LoRA policy: the transformers model, whose layers carry the adapters
    body = getattr(model, model.base_model_prefix, None) if hasattr(model, "base_model_prefix") else None
    if body is None or body is model:
        raise TypeError(f"{type(model).__name__}: cannot find the transformer body to run without the LM head")
    return body, model.get_output_embeddings()


def to_device(batch: Batch, dev: torch.device) -> Batch:
    """Move a collated batch's tensors to `dev`, adding the response positions computed on the host.

    Finding the response positions is a `nonzero`, which on a GPU waits for the device; done here on the CPU
    copy, the training step never blocks on it.
    """
    if batch.completion_mask.device.type == "cpu":
        source, target = response_positions(batch)
        batch = dataclasses.replace(batch, response_src=source, response_tgt=target)
    return batch.to(dev)


def response_positions(batch: Batch) -> tuple[Tensor, Tensor]:
    """Flat indices into [rows, T] of every scored response token and of the position whose hidden state predicts
    it: the one before it, or the collator's `predictor` (a rejected response after its shared prompt).

    A sequence's first token has nothing before it, so it is never scored, in any layout.
    """
    scored = batch.completion_mask.clone()
    if batch.position_ids is not None:  # packed: a sequence starts wherever its position is 0
        scored[batch.position_ids == 0] = 0
    else:
        scored[:, 0] = 0
    target = scored.flatten().nonzero().squeeze(1)
    source = batch.predictor.flatten()[target] if batch.predictor is not None else target - 1
    return source, target


@dataclass
class TokenLogps:
    """Per response token, in row-major order (row r's tokens are contiguous): log-prob, entropy, row index."""

    logps: Tensor  # [tokens], log π(y_t | x, y_<t) of logits / temperature, fp32
    rows: Tensor  # [tokens], the row each token belongs to
    entropy: Tensor | None = None  # [tokens], H(π(· | x, y_<t)), detached


def token_logps(model, batch: Batch, chunk_tokens: int | None = None, with_entropy: bool = False,
                temperature: float = 1.0) -> TokenLogps:
    """log π of every response token (completion_mask) through the chunked LM head, logits divided by T."""
    body, head = backbone_and_head(model)
    feats, targets, rows = _response_features(body, batch)
    # out_features, not weight.shape: ZeRO-3 leaves a partitioned weight empty; a custom head may have neither
    chunk_tokens = chunk_tokens or chunk_size(feats, getattr(head, "out_features", None))
    token_lp, token_ent = [], []
    grad = torch.is_grad_enabled() and feats.requires_grad
    frozen_weight = frozen_head_weight(head) if grad else None
    fn, weight = (_linear_logps, frozen_weight) if frozen_weight is not None else (_token_logps, head)
    for f, t in zip(feats.split(chunk_tokens), targets.split(chunk_tokens)):
        logits = None
        if grad and recompute_logits(f):  # keep no fp32 logits for backward: recompute them there
            token_lp.append(checkpoint(fn, weight, f, t, temperature, use_reentrant=False))
        else:  # CPU training keeps the logits (and the entropy below reuses them); no_grad needs nothing else
            logits = _scaled(f @ frozen_weight.t() if frozen_weight is not None else head(f), temperature)
            token_lp.append(_logps_of(logits, t))
        if with_entropy:  # detached; on GPU under autograd one more head pass (logging steps only)
            with torch.no_grad():
                token_ent.append(_entropy(_scaled(head(f), temperature) if logits is None else logits.detach()))
    empty = torch.zeros(0, device=feats.device)
    return TokenLogps(torch.cat(token_lp) if token_lp else empty, rows,
                      (torch.cat(token_ent) if token_ent else empty) if with_entropy else None)


def recompute_logits(feats: Tensor) -> bool:
    """Whether backward recomputes each chunk's logits rather than keeping them: on a GPU (see the module docstring)."""
    return feats.is_cuda


def chunk_size(feats: Tensor, vocab: int | None, on_gpu: bool | None = None) -> int:
    """Response tokens per LM-head chunk, so that a chunk's fp32 logits take at most:
    - on a GPU, 256 MiB (441 tokens at a 152k vocabulary): backward recomputes the chunk and holds three
      [tokens, vocab] fp32 tensors at once (log-softmax, its gradient, the logits' gradient) while every layer's
      activations are still alive; 4,096-token chunks made that 7.5 GB at 0.5B (benchmarks/step_memory.py);
    - on the CPU, 32 MiB (262 tokens at 32k), which stays in cache: at the small shape of benchmarks/vs_trl.sh
      it took the head's forward and backward from 2.0-2.5 s to 1.6 s per 4,600 tokens (a 4,096-token chunk's
      0.5 GB of logits is written to fresh pages and read back from memory, several times).
    Between 64 and 4096 tokens; 4096 where the vocabulary is unknown."""
    if not vocab:
        return 4096
    budget = (256 << 20) if (feats.is_cuda if on_gpu is None else on_gpu) else (32 << 20)
    return max(64, min(4096, budget // (4 * vocab)))


def sequence_logps(model, batch: Batch, chunk_tokens: int | None = None, with_entropy: bool = False) -> SeqLogps:
    """Sum of log π over each row's response tokens (completion_mask), with optional detached entropy."""
    per_token = token_logps(model, batch, chunk_tokens, with_entropy)
    n = sequence_count(batch)
    zeros = torch.zeros(n, device=batch.input_ids.device, dtype=torch.float32)
    logps = zeros.index_add(0, per_token.rows, per_token.logps)
    tokens = zeros.index_add(0, per_token.rows, torch.ones_like(per_token.logps))
    entropy = zeros.index_add(0, per_token.rows, per_token.entropy) if with_entropy else None
    return SeqLogps(logps, tokens, entropy)


def token_values(model, batch: Batch) -> Tensor:
    """Critic values V(x, y_<t) for every response token y_t, from a sequence-score model's head at every position."""
    model = base_model(model)
    body = getattr(model, model.base_model_prefix)
    feats, _, _ = _response_features(body, batch)
    return model.score(feats).squeeze(-1).float()


def sequence_count(batch: Batch) -> int:
    """How many sequences a collated batch holds (rows when padded; segments when packed)."""
    return batch.n_seqs if batch.packed else batch.input_ids.shape[0]


def hidden_states(body, batch: Batch) -> Tensor:
    """The transformer body's last hidden states [rows, T, d] for either layout of the one collator (no KV cache:
    nothing is generated here)."""
    if batch.packed:  # no mask: positions and sequence bounds drive the variable-length attention
        bounds = dict(cu_seq_lens_q=batch.cu_seq_lens_q, cu_seq_lens_k=batch.cu_seq_lens_q,
                      max_length_q=batch.max_length_q, max_length_k=batch.max_length_q, seq_lens_q=batch.seq_lens_q,
                      seq_lens_k=batch.seq_lens_q)
        if batch.shared_kv_index is not None:  # shared prompts: each block's keys, gathered
            bounds.update(shared_kv_index=batch.shared_kv_index, cu_seq_lens_k=batch.cu_seq_lens_k,
                          max_length_k=batch.max_length_k, seq_lens_k=batch.seq_lens_k)
        # prefopt's attention takes an empty 4-D mask as "prepared": transformers then skips its scan of
        # position_ids for packed sequences, whose answer it reads back to the host (a sync in every forward).
        # Another attention (model.attn_implementation) gets no mask and that scan, which it relies on.
        implementation = getattr(getattr(body, "config", None), "_attn_implementation", None)
        mask = packed_mask(batch.input_ids.device) if implementation == ATTENTION else None
        return body(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False,
                    attention_mask=mask, **bounds).last_hidden_state
    no_cache = {"use_cache": False} if hasattr(getattr(body, "config", None), "use_cache") else {}  # not the toy
    return body(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **no_cache).last_hidden_state


def _response_features(body, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """Hidden states of the positions that predict response tokens, those tokens, and their sequences."""
    ids = batch.input_ids
    hidden = hidden_states(body, batch)
    source, target = batch.response_src, batch.response_tgt
    if source is None:
        source, target = response_positions(batch)
    rows = batch.segment.flatten()[target] if batch.packed else \
        torch.div(target, ids.shape[1], rounding_mode="floor")
    return hidden.reshape(-1, hidden.shape[-1])[source], ids.flatten()[target], rows


def _scaled(logits: Tensor, temperature: float) -> Tensor:
    logits = logits.float()
    return logits if temperature == 1.0 else logits / temperature


def _token_logps(head, feats: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """log softmax(head(feats) / T)[target] per position, in fp32 (the checkpointed unit)."""
    return _logps_of(_scaled(head(feats), temperature), targets)


def _linear_logps(weight: Tensor, feats: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """The same for a frozen linear head given as a plain tensor (the checkpointed unit of a LoRA run)."""
    return _logps_of(_scaled(feats @ weight.t(), temperature), targets)


def frozen_head_weight(head) -> Tensor | None:
    """A frozen linear head's weight as a plain tensor (gathered and copied under ZeRO-3); None for a trainable head.

    Backward recomputes each chunk's logits. DeepSpeed ZeRO-3 fetches a *trainable* head again for that recompute,
    but releases a frozen one (a LoRA run's head) before it, so the recompute would see an empty shard. Passing the
    weight into the checkpoint as a tensor makes the recompute independent of the hooks.
    """
    weight = getattr(head, "weight", None)
    if not isinstance(head, torch.nn.Linear) or head.bias is not None or weight.requires_grad:
        return None
    if not partitioned([weight]):
        return weight.detach()
    import deepspeed

    with deepspeed.zero.GatheredParameters([weight]) if weight.ds_status.name == "NOT_AVAILABLE" else \
            contextlib.nullcontext():
        return weight.detach().clone()


def _entropy(logits: Tensor) -> Tensor:
    """H(softmax(logits)) per row = -Σ p·log p: log_softmax's fused kernel and one dot product per row (on CPU half
    the time of logsumexp - Σ softmax·logits)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -torch.einsum("ij,ij->i", logp.exp(), logp)


def _logps_of(logits: Tensor, targets: Tensor) -> Tensor:
    """log softmax(logits)[target]: cross-entropy's fused kernels (on CPU about half the time of gather minus
    logsumexp, whose backward makes several passes over [tokens, vocab])."""
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def sequence_scores(model, batch: Batch) -> Tensor:
    """Scalar reward per sequence from a sequence-classification model (its score at the sequence's last token)."""
    if not batch.packed:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        return out.logits.squeeze(-1).float()
    inner = base_model(model)
    hidden = hidden_states(getattr(inner, inner.base_model_prefix), batch)[0]
    last = batch.cu_seq_lens_q[1:batch.n_seqs + 1].long() - 1
    return inner.score(hidden[last]).squeeze(-1).float()
