"""Variable-length attention for the packed layout: every sequence attends only to itself, and no work is spent on
padding or on the masked-out blocks between sequences.

prefopt registers one attention implementation with transformers, `prefopt_varlen`, and loads models with it
unless the recipe names another (`model.attn_implementation`). A packed batch (prefopt/data/collate.py) carries
`cu_seq_lens_q` (cumulative sequence lengths), which transformers passes down to every attention call:
  GPU   torch's own variable-length flash attention (`torch.nn.attention.varlen.varlen_attn`), told explicitly
        to be causal (its default is bidirectional);
  CPU   PyTorch SDPA once per sequence, causal, on its slice of the row (no cross-sequence mask is ever built);
        also on a GPU for fp32 (`train.precision: fp32`), attention dropout, or a torch whose `varlen_attn` is
        missing or lacks a keyword the call needs (`kernel_options`).
Grouped-query K/V heads are read in place on both paths (`enable_gqa`), never repeated per query group, and a
packed forward reads no device value back to the host (`packed_mask`, the collator's host lengths).
A `shared_prompt` batch adds `shared_kv_index` and `cu_seq_lens_k`: every block's keys are gathered (a rejected
response's: its prompt's, then its own), and a block with more keys than queries is causal from the bottom right.
Sliding-window layers (Mistral, Gemma) keep their window in both paths, with transformers' rule.
Any other call (padded batches, generation with a KV cache) is transformers' SDPA, unchanged. No kernel is
written here: both paths are PyTorch's.
"""

from __future__ import annotations

import functools
import inspect

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "prefopt_varlen"


def varlen_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: query [B, H, T, D] -> output [B, T, H, D]."""
    cu = kwargs.pop("cu_seq_lens_q", None)
    prepared = attention_mask is None or attention_mask.numel() == 0  # None, or PACKED (packed_mask below)
    if cu is None or not prepared or kwargs.get("past_key_values") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    cu_k, longest_q, longest_k = kwargs.get("cu_seq_lens_k", cu), kwargs.get("max_length_q"), kwargs.get("max_length_k")
    kv_index = kwargs.get("shared_kv_index")
    if kv_index is not None:  # shared prompts (collate.py): each block's keys are its prompt's and its own
        key, value = key[:, :, kv_index], value[:, :, kv_index]
    window = kwargs.get("sliding_window")  # a sliding-window layer (Mistral, Gemma): the last `window` keys only
    flash_ok = query.is_cuda and query.dtype in (torch.bfloat16, torch.float16) and dropout == 0.0
    kernel = _flash_kernel() if flash_ok else None  # the flash kernel takes half precision only, and no dropout
    options = kernel_options(kernel, window, scaling, query.shape[-1]) if kernel is not None else None
    if options is not None:
        return flash_varlen(kernel, query, key, value, cu, cu_k, longest_q, longest_k, options), None
    # `split`, not a slice per sequence: one slice's backward writes a zero tensor the size of the whole row. The
    # sizes come from the collator as host integers; reading them off `cu` would wait on the device.
    q_sizes = list(kwargs.get("seq_lens_q") or _lengths(cu))
    k_sizes = list(kwargs.get("seq_lens_k") or (q_sizes if cu_k is cu else _lengths(cu_k)))
    parts = []
    for q, k, v in zip(query.split(q_sizes, dim=2), key.split(k_sizes, dim=2), value.split(k_sizes, dim=2)):
        queries, keys = q.shape[2], k.shape[2]
        plain = queries == keys and (window is None or keys <= window)  # SDPA's own causal mask is enough
        mask = None if plain else block_mask(queries, keys, window, query.device)
        parts.append(sdpa(q, k, v, mask, plain, dropout, scaling))
    return torch.cat(parts, dim=1), None


def sdpa(query, key, value, mask, causal: bool, dropout: float, scaling) -> torch.Tensor:
    """PyTorch SDPA on [B, H, T, D] -> [B, T, H, D], grouped-query heads read in place (`enable_gqa`: no K/V
    copy per query group, with or without a mask; transformers' wrapper repeats them whenever there is a mask)."""
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, dropout_p=dropout, is_causal=causal, scale=scaling,
        enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2)


def packed_mask(device) -> torch.Tensor:
    """The `attention_mask` of a packed forward: an empty 4-D mask, which transformers passes through as prepared
    (so it neither builds a mask nor scans `position_ids` for packed sequences, a host read) and which
    `varlen_attention` reads as "no mask: the sequence bounds say it all"."""
    return torch.ones(1, 1, 0, 0, dtype=torch.bool, device=device)


def _lengths(cu: torch.Tensor) -> list[int]:
    """Sequence lengths from cumulative bounds [0, n1, n1 + n2, ...], for callers that give no host lengths."""
    bounds = cu.tolist()
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


def block_mask(queries: int, keys: int, window: int | None, device=None) -> torch.Tensor:
    """Which keys each query of a block sees, [queries, keys]: the queries are the block's last keys, so causal
    from the bottom right (SDPA's is_causal is top-left), and within a sliding window the last `window` keys only
    (transformers' rule: key > query - window).

    >>> block_mask(2, 4, None).int()
    tensor([[1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    >>> block_mask(2, 4, 2).int()
    tensor([[0, 1, 1, 0],
            [0, 0, 1, 1]], dtype=torch.int32)
    """
    query_at = torch.arange(queries, device=device)[:, None] + (keys - queries)
    key_at = torch.arange(keys, device=device)[None, :]
    seen = key_at <= query_at
    return seen if window is None else seen & (key_at > query_at - window)


def flash_varlen(kernel, query, key, value, cu_q, cu_k, longest_q, longest_k, options: dict):
    """One causal call of torch's variable-length flash kernel over the packed row: [1, H, T, D] -> [1, T, H, D].

    Where a block has more keys than queries (a rejected response after its shared prompt), the kernel's causal
    mask is aligned to the bottom right, as flash attention defines it; benchmarks/gpu_check.py checks this.
    `options` come from `kernel_options`; grouped-query K/V heads are repeated only for a kernel without
    `enable_gqa` (older torch), and the longest blocks are the collator's host integers.
    """
    groups = query.shape[1] // key.shape[1]
    if groups > 1 and "enable_gqa" in _parameters(kernel):
        options = {**options, "enable_gqa": True}
    elif groups > 1:
        key, value = (x.repeat_interleave(groups, dim=1) for x in (key, value))
    longest_q = int(longest_q or (cu_q[1:] - cu_q[:-1]).max())
    longest_k = int(longest_k or (cu_k[1:] - cu_k[:-1]).max())
    out = kernel(query[0].transpose(0, 1), key[0].transpose(0, 1), value[0].transpose(0, 1), cu_q.to(torch.int32),
                 cu_k.to(torch.int32), longest_q, longest_k, **options)
    return out.unsqueeze(0)


def kernel_options(kernel, window: int | None, scaling: float | None, head_dim: int) -> dict | None:
    """The keyword arguments that make torch's `varlen_attn` compute what SDPA would here, or None where this
    torch's kernel cannot (then SDPA per sequence).

    Every release defaults to full (bidirectional) attention, and the keywords changed: older releases take
    `is_causal=True`, newer ones `window_size=(-1, 0)`; a sliding window of W keys is `window_size=(W - 1, 0)`
    (newer only); the oldest take no `scale`, so only the default 1/√d.
    """
    params = _parameters(kernel)
    if window is not None:
        if "window_size" not in params:
            return None
        options = {"window_size": (window - 1, 0)}
    elif "window_size" in params:
        options = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        options = {"is_causal": True}
    else:
        return None
    if scaling is not None:
        if "scale" in params:
            options["scale"] = scaling
        elif abs(scaling - head_dim ** -0.5) > 1e-9 * head_dim ** -0.5:
            return None
    return options


@functools.cache
def _parameters(kernel) -> frozenset[str]:
    return frozenset(inspect.signature(kernel).parameters)


@functools.cache
def _flash_kernel():
    """torch's variable-length flash attention, or None where this torch has none (then SDPA per sequence)."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def _mask(*args, **kwargs):
    """No mask for a packed row (the attention above keeps sequences apart); SDPA's mask for everything else."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("attention_mask") is None and kwargs.get("batch_size", 0) == 1:
        return None
    return sdpa_mask(*args, **kwargs)


def register() -> str:
    """Make `prefopt_varlen` a name transformers' `attn_implementation` accepts; returns it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, _mask)
    return NAME
