"""The packed layout's attention: the GPU kernel call is causal under either torch signature, and agrees with the
per-sequence SDPA path (run here on the CPU with a reference kernel standing in for torch's flash kernel)."""

import pytest
import torch

from prefopt import attention


def _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, causal):
    """Straightforward variable-length attention: one explicit softmax per sequence, [T, H, D] in and out."""
    out = torch.empty_like(query)
    bounds = cu_seq_q.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        q, k, v = (x[a:b].transpose(0, 1) for x in (query, key, value))  # [H, n, D]
        scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
        if causal:
            scores = scores.masked_fill(torch.ones(b - a, b - a, dtype=torch.bool).triu(1), float("-inf"))
        out[a:b] = (scores.softmax(-1) @ v).transpose(0, 1)
    return out


def newer_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, window_size=(-1, -1)):
    """torch's newer signature: causal iff window_size == (-1, 0)."""
    return _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, tuple(window_size) == (-1, 0))


def older_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, *, scale=None):
    """torch's older signature: causal iff is_causal."""
    return _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal)


def test_causal_keyword_for_each_torch_signature():
    assert attention.causal_keyword(newer_varlen_attn) == {"window_size": (-1, 0)}
    assert attention.causal_keyword(older_varlen_attn) == {"is_causal": True}
    with pytest.raises(RuntimeError, match="neither window_size nor is_causal"):
        attention.causal_keyword(lambda query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=None: None)


@pytest.mark.parametrize("kernel", [newer_varlen_attn, older_varlen_attn])
def test_flash_call_equals_per_sequence_sdpa(kernel, monkeypatch):
    """Three sequences (lengths 3, 5, 2) in one row, 4 query heads over 2 K/V heads: the kernel call gives what
    SDPA gives sequence by sequence (fp32, 1e-5). Without the causal keyword the kernel attends both ways and the
    first two sequences differ."""
    torch.manual_seed(0)
    query, key, value = torch.randn(1, 4, 10, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    cu = torch.tensor([0, 3, 8, 10], dtype=torch.int32)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    expected, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=cu)  # CPU: per sequence
    got = attention.flash_varlen(kernel, query, key, value, cu, None, None)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    monkeypatch.setattr(attention, "causal_keyword", lambda kernel: {})  # the call as it was before 2026-11-24
    bidirectional = attention.flash_varlen(kernel, query, key, value, cu, None, None)
    last = [2, 7, 9]  # a sequence's last token sees the whole sequence either way; every other token does not
    torch.testing.assert_close(bidirectional[:, last], expected[:, last], atol=1e-5, rtol=0)
    for t in (0, 1, 3, 4, 5, 6, 8):
        assert not torch.allclose(bidirectional[:, t], expected[:, t], atol=1e-3), t
