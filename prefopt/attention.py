"""Variable-length attention for the packed layout: every sequence attends only to itself, and no work is spent on
padding or on the masked-out blocks between sequences.

prefopt registers one attention implementation with transformers, `prefopt_varlen`, and loads models with it
unless the recipe names another (`model.attn_implementation`). A packed batch (prefopt/data/collate.py) carries
`cu_seq_lens_q` (cumulative sequence lengths), which transformers passes down to every attention call:
  GPU   torch's own variable-length flash attention (`torch.nn.attention.varlen.varlen_attn`);
  CPU   PyTorch SDPA once per sequence, causal, on its slice of the row (no cross-sequence mask is ever built).
Any other call (padded batches, generation with a KV cache) is transformers' SDPA, unchanged. No kernel is
written here: both paths are PyTorch's.
"""

from __future__ import annotations

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "prefopt_varlen"


def varlen_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: query [B, H, T, D] -> output [B, T, H, D]."""
    cu = kwargs.pop("cu_seq_lens_q", None)
    if cu is None or attention_mask is not None or kwargs.get("past_key_values") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if query.is_cuda:
        from torch.nn.attention.varlen import varlen_attn

        groups = query.shape[1] // key.shape[1]  # grouped-query attention: repeat the shared K/V heads
        k, v = (x.repeat_interleave(groups, dim=1) if groups > 1 else x for x in (key, value))
        longest = int(kwargs.get("max_length_q") or (cu[1:] - cu[:-1]).max())
        out = varlen_attn(query[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1),
                          cu.to(torch.int32), cu.to(torch.int32), longest, longest, scale=scaling)
        return out.unsqueeze(0), None
    bounds = cu.tolist()
    parts = [sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None,
                                    dropout=dropout, scaling=scaling, is_causal=True)[0]
             for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(parts, dim=1), None


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
