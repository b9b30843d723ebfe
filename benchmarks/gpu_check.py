"""Run first in a GPU session, before any figure: the packed layout's attention is right on this GPU.

CI has no GPU, so the flash path of prefopt/attention.py is tested there only through a reference kernel. Here it
meets torch's real `varlen_attn` in bf16: one packed row (GQA, 14 query heads over 2 K/V heads, sequence lengths
1-512) against SDPA sequence by sequence. It also prints what the same call gives without the causal keyword, so
a pass is seen to mean something. Then `train.layout: shared_prompt`: a block with more keys than queries must be
causal from the bottom right, and a sliding window must follow transformers' rule. Exits 1 on a mismatch;
`benchmarks/vs_trl.sh` runs it before any GPU row.

    python benchmarks/gpu_check.py
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

TOLERANCE = 3e-2  # bf16 outputs of unit scale: a few ulps (2^-8) after two bf16 matmuls and a softmax


def per_sequence(query, key, value, bounds, causal=True, window=None):
    """SDPA on each sequence's slice, K/V heads repeated: the reference, [1, H, T, D] -> [1, T, H, D]. With a
    window, transformers' sliding-window rule (`block_mask`) instead of plain causal."""
    from prefopt.attention import block_mask

    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        mask = block_mask(b - a, b - a, window, query.device) if window else None
        parts.append(F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                                    attn_mask=mask, is_causal=causal and mask is None))
    return torch.cat(parts, dim=2).transpose(1, 2)


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no GPU here; nothing to check")
        return 0
    from prefopt import attention

    kernel = attention._flash_kernel()
    if kernel is None:
        print(f"gpu_check: torch {torch.__version__} has no varlen_attn: packed rows use SDPA per sequence")
        return 0
    if attention.kernel_options(kernel, None, None, 64) is None:
        print(f"gpu_check: torch {torch.__version__}'s varlen_attn cannot be made causal: packed rows use SDPA")
        return 0
    torch.manual_seed(0)
    lengths = [300, 17, 512, 1, 100, 64]
    bounds = [0]
    for n in lengths:
        bounds.append(bounds[-1] + n)
    total = bounds[-1]
    query = torch.randn(1, 14, total, 64, device="cuda", dtype=torch.bfloat16)
    key, value = (torch.randn(1, 2, total, 64, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    cu = torch.tensor(bounds, device="cuda", dtype=torch.int32)
    want = per_sequence(query, key, value, bounds).float()
    got = attention.flash_varlen(kernel, query, key, value, cu, cu, max(lengths), max(lengths),
                                 attention.kernel_options(kernel, None, None, 64)).float()
    gap = float((got - want).abs().max())
    bidirectional = per_sequence(query, key, value, bounds, causal=False).float()
    wrong = float((bidirectional - want).abs().max())
    print(f"gpu_check: torch {torch.__version__} on {torch.cuda.get_device_name()}: "
          f"varlen_attn {attention.kernel_options(kernel, None, None, 64)} vs SDPA per sequence, max |gap| {gap:.2e} "
          f"(tolerance {TOLERANCE:.0e}; attending both ways would give {wrong:.2e})")
    shared_gap = shared_prompt_gap(kernel, query, key, value)
    print(f"gpu_check: train.layout shared_prompt (a rejected block after its prompt, causal from the bottom right): "
          f"max |gap| {shared_gap:.2e}")
    window_gap = sliding_window_gap(kernel, query, key, value, bounds, cu, max(lengths))
    print(f"gpu_check: a 128-key sliding window: max |gap| {window_gap:.2e}" if window_gap is not None else
          "gpu_check: this torch's varlen_attn takes no window: sliding-window layers use SDPA per sequence")
    if gap > TOLERANCE:
        print("gpu_check: FAILED: the packed layout's attention differs from SDPA; train with train.layout: padded")
        return 1
    if window_gap is not None and window_gap > TOLERANCE:
        print("gpu_check: FAILED: the kernel's sliding window differs from transformers' rule; use layout: padded")
        return 1
    if shared_gap > TOLERANCE:
        print("gpu_check: FAILED: shared_prompt differs from SDPA on the unshared sequence; use train.layout: packed")
        return 1
    return 0


def sliding_window_gap(kernel, query, key, value, bounds, cu, longest, window=128) -> float | None:
    """The kernel with a window of 128 keys against SDPA with transformers' sliding-window mask, per sequence."""
    from prefopt import attention

    options = attention.kernel_options(kernel, window, None, query.shape[-1])
    if options is None:
        return None
    got = attention.flash_varlen(kernel, query, key, value, cu, cu, longest, longest, options).float()
    return float((got - per_sequence(query, key, value, bounds, window=window).float()).abs().max())


def shared_prompt_gap(kernel, query, key, value, prompt=100, chosen=200, rejected=150) -> float:
    """Row = prompt‖chosen, then rejected alone; the rejected block's keys are the prompt's and its own. Its output
    must equal SDPA's over the unshared prompt‖rejected sequence."""
    from prefopt import attention

    total = prompt + chosen + rejected
    q, k, v = (x[:, :, :total] for x in (query, key, value))
    index = torch.cat([torch.arange(prompt + chosen), torch.arange(prompt), torch.arange(prompt + chosen, total)])
    cu_q = torch.tensor([0, prompt + chosen, total], device="cuda", dtype=torch.int32)
    cu_k = torch.tensor([0, prompt + chosen, total + prompt], device="cuda", dtype=torch.int32)
    index = index.cuda()
    got = attention.flash_varlen(kernel, q, k[:, :, index], v[:, :, index], cu_q, cu_k, prompt + chosen,
                                 prompt + rejected, attention.kernel_options(kernel, None, None, 64)).float()
    unshared = torch.cat([torch.arange(prompt), torch.arange(prompt + chosen, total)]).cuda()
    want = per_sequence(q[:, :, unshared], k[:, :, unshared], v[:, :, unshared], [0, prompt + rejected]).float()
    return float((got[:, prompt + chosen:] - want[:, prompt:]).abs().max())


if __name__ == "__main__":
    sys.exit(main())
