"""The packed layout's attention: the GPU kernel call is causal under either torch signature, and agrees with the
per-sequence SDPA path (run here on the CPU with a reference kernel standing in for torch's flash kernel)."""

import pytest
import torch

from prefopt import attention


def _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, causal, left=-1, scale=None):
    """Straightforward variable-length attention: one explicit softmax per block, [T, H, D] in and out; causal is
    aligned to the bottom right where a block has more keys than queries, as flash attention defines it, and a
    query sees at most `left` keys before its own (-1: all)."""
    out = torch.empty_like(query)
    q_bounds, k_bounds = cu_seq_q.tolist(), cu_seq_k.tolist()
    for a, b, c, d in zip(q_bounds[:-1], q_bounds[1:], k_bounds[:-1], k_bounds[1:]):
        q, k, v = query[a:b].transpose(0, 1), key[c:d].transpose(0, 1), value[c:d].transpose(0, 1)  # [H, n, D]
        scores = q @ k.transpose(1, 2) * (scale or q.shape[-1] ** -0.5)
        if causal:
            scores = scores.masked_fill(torch.ones(b - a, d - c, dtype=torch.bool).triu(d - c - (b - a) + 1),
                                        float("-inf"))
        if left >= 0:
            scores = scores.masked_fill(torch.ones(b - a, d - c, dtype=torch.bool).tril(d - c - (b - a) - left - 1),
                                        float("-inf"))
        out[a:b] = (scores.softmax(-1) @ v).transpose(0, 1)
    return out


def newer_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, window_size=(-1, -1)):
    """torch's newer signature: causal iff the right window is 0; the left window bounds how far back a query sees."""
    left, right = window_size
    return _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, right == 0, left, scale)


def older_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, *, scale=None):
    """torch's older signature: causal iff is_causal."""
    return _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal, scale=scale)


def oldest_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False):
    """torch's first signature: causal iff is_causal, no scale (always 1/√d)."""
    return _reference_kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal)


def test_kernel_options_for_each_torch_signature():
    """Causal under each signature; a window and a custom scale only where the kernel takes them (else None: SDPA
    per sequence); the oldest signature takes the default scale 1/√d, and no other."""
    opts = attention.kernel_options
    assert opts(newer_varlen_attn, None, 0.125, 64) == {"window_size": (-1, 0), "scale": 0.125}
    assert opts(newer_varlen_attn, 4, None, 64) == {"window_size": (3, 0)}
    assert opts(older_varlen_attn, None, 0.125, 64) == {"is_causal": True, "scale": 0.125}
    assert opts(older_varlen_attn, 4, 0.125, 64) is None
    assert opts(oldest_varlen_attn, None, 0.125, 64) == {"is_causal": True}
    assert opts(oldest_varlen_attn, None, 0.1, 64) is None
    assert opts(lambda query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=None: None, None, None, 64) is None


@pytest.mark.parametrize("kernel", [newer_varlen_attn, older_varlen_attn, oldest_varlen_attn])
def test_flash_call_equals_per_sequence_sdpa(kernel):
    """Three sequences (lengths 3, 5, 2) in one row, 4 query heads over 2 K/V heads: the kernel call gives what
    SDPA gives sequence by sequence (fp32, 1e-5). Without the causal keyword the kernel attends both ways and the
    first two sequences differ."""
    torch.manual_seed(0)
    query, key, value = torch.randn(1, 4, 10, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    cu = torch.tensor([0, 3, 8, 10], dtype=torch.int32)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    expected, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=cu)  # CPU: per sequence
    got = attention.flash_varlen(kernel, query, key, value, cu, cu, None, None,
                                 attention.kernel_options(kernel, None, 8 ** -0.5, 8))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    bidirectional = attention.flash_varlen(kernel, query, key, value, cu, cu, None, None, {})  # as before 2026-11-24
    last = [2, 7, 9]  # a sequence's last token sees the whole sequence either way; every other token does not
    torch.testing.assert_close(bidirectional[:, last], expected[:, last], atol=1e-5, rtol=0)
    for t in (0, 1, 3, 4, 5, 6, 8):
        assert not torch.allclose(bidirectional[:, t], expected[:, t], atol=1e-3), t


@pytest.mark.parametrize("kernel", [newer_varlen_attn, older_varlen_attn, oldest_varlen_attn])
def test_shared_prompt_blocks_attend_to_their_prompt_then_causally(kernel):
    """A prompt‖chosen block (positions 0-4: prompt 0-1) and the rejected block after it (5-7), whose keys are the
    prompt's and its own. Each rejected query equals what it would be in an unshared prompt‖rejected sequence, on
    the CPU path and through the kernel call."""
    torch.manual_seed(1)
    query, key, value = torch.randn(1, 4, 8, 8), torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    shared = dict(cu_seq_lens_q=torch.tensor([0, 5, 8]), shared_kv_index=torch.tensor([0, 1, 2, 3, 4, 0, 1, 5, 6, 7]),
                  cu_seq_lens_k=torch.tensor([0, 5, 10]), max_length_q=5, max_length_k=5)
    cpu, _ = attention.varlen_attention(module, query, key, value, None, **shared)
    rejected = [0, 1, 5, 6, 7]  # the unshared sequence: prompt, then the rejected response
    unshared, _ = attention.varlen_attention(module, query[:, :, rejected], key[:, :, rejected],
                                             value[:, :, rejected], None, cu_seq_lens_q=torch.tensor([0, 5]))
    whole, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=torch.tensor([0, 5, 8]))
    torch.testing.assert_close(cpu[:, 5:], unshared[:, 2:], atol=1e-6, rtol=0)
    torch.testing.assert_close(cpu[:, :5], whole[:, :5], atol=1e-6, rtol=0)
    index, cu_k = shared["shared_kv_index"], shared["cu_seq_lens_k"]
    flash = attention.flash_varlen(kernel, query, key[:, :, index], value[:, :, index], shared["cu_seq_lens_q"], cu_k,
                                   5, 5, attention.kernel_options(kernel, None, None, 8))
    torch.testing.assert_close(flash, cpu, atol=1e-5, rtol=0)


def test_a_sliding_window_is_the_same_through_the_kernel_and_per_sequence():
    """Window of 3 keys over sequences of 6 and 4 (shared-prompt block included): the kernel's window (2, 0) gives
    the CPU path's explicit mask; both differ from plain causal attention once a sequence outgrows the window."""
    torch.manual_seed(2)
    query, key, value = torch.randn(1, 4, 10, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    cu = torch.tensor([0, 6, 10])
    windowed, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=cu, sliding_window=3)
    causal, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=cu)
    torch.testing.assert_close(windowed[:, :3], causal[:, :3], atol=1e-6, rtol=0)  # within the window: the same
    assert not torch.allclose(windowed[:, 3:6], causal[:, 3:6], atol=1e-3)
    got = attention.flash_varlen(newer_varlen_attn, query, key, value, cu, cu, None, None,
                                 attention.kernel_options(newer_varlen_attn, 3, None, 8))
    torch.testing.assert_close(got, windowed, atol=1e-5, rtol=0)


def gqa_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, window_size=(-1, -1),
                    enable_gqa=False):
    """torch's newest signature: K/V may have fewer heads than the query when enable_gqa (each serves a group)."""
    gqa_varlen_attn.key_heads.append(key.shape[1])
    assert enable_gqa or key.shape[1] == query.shape[1]
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)  # the reference only
    return newer_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=scale, window_size=window_size)


gqa_varlen_attn.key_heads = []


def test_a_kernel_with_gqa_gets_the_shared_heads_unrepeated():
    """4 query heads over 2 K/V heads: a kernel that takes `enable_gqa` is handed the 2 heads (no copy per group)
    and gives what the per-sequence SDPA path gives; one without it still gets them repeated."""
    torch.manual_seed(3)
    query, key, value = torch.randn(1, 4, 10, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    cu = torch.tensor([0, 3, 8, 10], dtype=torch.int32)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    expected, _ = attention.varlen_attention(module, query, key, value, None, cu_seq_lens_q=cu)
    gqa_varlen_attn.key_heads.clear()
    got = attention.flash_varlen(gqa_varlen_attn, query, key, value, cu, cu, 5, 5,
                                 attention.kernel_options(gqa_varlen_attn, None, None, 8))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert gqa_varlen_attn.key_heads == [2]
    older = attention.flash_varlen(newer_varlen_attn, query, key, value, cu, cu, 5, 5,
                                   attention.kernel_options(newer_varlen_attn, None, None, 8))
    torch.testing.assert_close(older, expected, atol=1e-5, rtol=0)


def _live_bytes():
    """benchmarks/live_bytes.py's counter of the tensor memory created under it (it works on the CPU)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "live_bytes.py"
    spec = importlib.util.spec_from_file_location("live_bytes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LiveBytes


@pytest.mark.parametrize("layout", ["packed", "shared_prompt"])
def test_attention_memory_does_not_grow_with_the_query_groups(layout):
    """16 query heads over 16, 4 or 1 K/V heads (groups of 1, 4, 16), forward and backward of the packed CPU path,
    the inputs' own gradients not counted. K/V read in place cost memory by their own heads, so sharing them saves
    at least one [16, T, D] copy; repeated per group (as transformers' SDPA wrapper does under a mask, and as the
    flash call did), every group count costs what 16 K/V heads cost (measured so: 2.58 MiB at 1, 4 and 16 groups)."""
    heads, length, dim = 16, 256, 32
    bounds = dict(cu_seq_lens_q=torch.tensor([0, 96, 160, 256]), seq_lens_q=(96, 64, 96))
    if layout == "shared_prompt":  # block 2 is a rejected response whose keys are block 1's first 32, then its own
        index = torch.cat([torch.arange(160), torch.arange(96, 128), torch.arange(160, 256)])
        bounds.update(shared_kv_index=index, cu_seq_lens_k=torch.tensor([0, 96, 160, 288]), seq_lens_k=(96, 64, 128))
    live_bytes, peaks = _live_bytes(), {}
    for kv_heads in (16, 4, 1):
        module = torch.nn.Module()
        module.num_key_value_groups, module.is_causal = heads // kv_heads, True
        query = torch.randn(1, heads, length, dim, requires_grad=True)
        key, value = (torch.randn(1, kv_heads, length, dim, requires_grad=True) for _ in range(2))
        meter = live_bytes((query, key, value))
        with meter:
            out, _ = attention.varlen_attention(module, query, key, value, None, **bounds)
            out.sum().backward()
        peaks[heads // kv_heads] = meter.peak
    one_copy = heads * length * dim * 4
    assert peaks[4] <= peaks[1] - one_copy, peaks
    assert peaks[16] <= peaks[4], peaks
