"""MasterWeightAdamW: AdamW on fp32 masters of bf16 weights, a bounded slice of fp32 gradients at a time."""

import collections
import copy

import pytest
import torch

from prefopt.masters import MasterWeightAdamW, _slices

LR, BETAS, EPS, WD = 1e-2, (0.9, 0.999), 1e-8, 0.1


def bf16_weights(*shapes):
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape).to(torch.bfloat16)) for shape in shapes]


def optimizer(weights, max_grad_norm=0.0, chunk_elements=12):
    return MasterWeightAdamW(weights, max_grad_norm, chunk_elements, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)


def test_slices_hold_at_most_the_budget_or_one_larger_parameter():
    """Budget 12: 6+6 fit, the next 6 would make 18 so it opens a slice, 20 exceeds the budget alone."""
    assert _slices([6, 6, 6, 20, 1], 12) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert _slices([3], 12) == [(0, 1)] and _slices([], 12) == []


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.5])
def test_steps_as_adamw_on_fp32_masters_and_rounds_them_into_the_weights(max_grad_norm):
    """Written out per element, in fp64 from the same bf16 gradients (a missing gradient counts as zero):
    g ← g·min(1, c / (‖g‖ + 1e-6)) with the norm over all parameters; p ← p(1 − lr·wd);
    m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; p ← p − lr·(m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε).
    The weights are the masters rounded to bf16 after every step."""
    weights = bf16_weights((4, 3), (7,), (2, 5), (9,))
    opt = optimizer(weights, max_grad_norm)
    masters = [w.detach().double() for w in weights]
    exp_avg, exp_avg_sq = [torch.zeros_like(m) for m in masters], [torch.zeros_like(m) for m in masters]
    for t in range(1, 5):
        grads = [torch.randn(w.shape).to(torch.bfloat16) for w in weights]
        grads[1] = None if t == 2 else grads[1]
        for w, g in zip(weights, grads):
            w.grad = None if g is None else g.clone()
        opt.step()
        grads = [torch.zeros_like(m) if g is None else g.double() for m, g in zip(masters, grads)]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        clip = min(1.0, max_grad_norm / (float(norm) + 1e-6)) if max_grad_norm else 1.0
        for i, g in enumerate(grads):
            g = g * clip
            masters[i] *= 1 - LR * WD
            exp_avg[i] = BETAS[0] * exp_avg[i] + (1 - BETAS[0]) * g
            exp_avg_sq[i] = BETAS[1] * exp_avg_sq[i] + (1 - BETAS[1]) * g * g
            masters[i] -= LR * (exp_avg[i] / (1 - BETAS[0] ** t)) / ((exp_avg_sq[i] / (1 - BETAS[1] ** t)).sqrt() + EPS)
        torch.testing.assert_close(opt.masters, [m.float() for m in masters], atol=1e-6, rtol=0)
        assert all(torch.equal(w, m.to(torch.bfloat16)) for w, m in zip(weights, opt.masters))
        torch.testing.assert_close(float(opt._global_grad_norm), float(norm), rtol=1e-6, atol=0)


def test_a_step_converts_one_slice_of_gradients_to_fp32_at_a_time():
    """DeepSpeed's wrapper held every fp32 gradient at once; here at most a slice (12 elements, or one larger
    parameter) is alive when AdamW steps, and the bf16 gradients stay as they were until zero_grad."""
    weights = bf16_weights((6,), (6,), (6,), (20,))
    opt = optimizer(weights, chunk_elements=12)
    alive, inner_step = [], opt.optimizer.step

    def spy(*args, **kwargs):
        alive.append(sum(m.numel() for m in opt.masters if m.grad is not None))
        return inner_step(*args, **kwargs)

    opt.optimizer.step = spy
    for w in weights:
        w.grad = torch.ones_like(w)
    opt.step()
    assert alive == [12, 6, 20]
    assert all(m.grad is None for m in opt.masters) and all(w.grad is not None for w in weights)
    opt.zero_grad()
    assert all(w.grad is None for w in weights)


def test_a_non_finite_gradient_skips_the_step_and_clears_the_gradients():
    weights = bf16_weights((3,), (4,))
    opt = optimizer(weights, max_grad_norm=1.0)
    before = [m.clone() for m in opt.masters]
    weights[0].grad = torch.tensor([1.0, float("inf"), 0.0]).to(torch.bfloat16)
    weights[1].grad = torch.ones(4).to(torch.bfloat16)
    opt.step()
    assert opt.overflow and all(torch.equal(a, b) for a, b in zip(opt.masters, before))
    assert all(w.grad is None for w in weights) and not opt.state  # no moment was touched


def test_a_loaded_state_continues_exactly_as_the_saved_optimizer():
    """The masters travel with the moments: a fresh optimizer over rounded weights continues bit for bit."""
    weights, grads = bf16_weights((4, 3), (7,)), [torch.randn(4, 3).to(torch.bfloat16), torch.randn(7).to(torch.bfloat16)]
    opt = optimizer(weights)
    for _ in range(2):
        for w, g in zip(weights, grads):
            w.grad = g.clone()
        opt.step()
    saved = copy.deepcopy(opt.state_dict())  # as through a file: torch's state_dict shares the live tensors
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    resumed = optimizer(copies)
    resumed.load_state_dict(saved)
    for each, params in ((opt, weights), (resumed, copies)):
        for w, g in zip(params, grads):
            w.grad = -g
        each.step()
    assert all(torch.equal(a, b) for a, b in zip(opt.masters, resumed.masters))
    assert resumed.param_groups is resumed.optimizer.param_groups  # the LR schedule still reaches the inner AdamW


def test_a_state_written_by_deepspeeds_stage0_wrapper_loads():
    """prefopt's stage-0 bf16 checkpoints written before masters.py hold DeepSpeed's FP16_UnfusedOptimizer state;
    they resume with its masters and moments."""
    import deepspeed

    from prefopt.engine import setup_distributed

    setup_distributed()
    weights = bf16_weights((4, 3), (7,))
    model = torch.nn.ParameterList(weights)
    engine, *_ = deepspeed.initialize(
        model=model, optimizer=torch.optim.AdamW(weights, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD),
        config={"bf16": {"enabled": True}, "zero_optimization": {"stage": 0}, "train_batch_size": 1},
        dist_init_required=False)
    assert type(engine.optimizer).__name__ == "FP16_UnfusedOptimizer"
    for w in weights:
        w.grad = torch.randn(w.shape).to(torch.bfloat16)
    engine.optimizer.step()
    saved = copy.deepcopy(engine.optimizer.state_dict())
    ours = optimizer([torch.nn.Parameter(w.detach().clone()) for w in weights])
    ours.load_state_dict(saved)
    theirs = engine.optimizer.fp32_groups[0]
    assert all(torch.equal(a, b) for a, b in zip(ours.masters, theirs))
    for mine, their in zip(ours.masters, theirs):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(ours.state[mine][key], engine.optimizer.optimizer.state[their][key])


def test_a_step_launches_as_many_kernels_for_forty_parameters_as_for_four():
    """The step after the first (which creates AdamW's moments): the ops run per slice (a multi-tensor copy into
    fp32, one clip multiply, AdamW's fused step, the copy back) do not multiply with the parameter count; only
    `view`s (metadata, no kernel) do. Per-parameter conversions, as before 2026-12-01, made 4 and 40 differ."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.count[str(func)] += 1
            return func(*args, **(kwargs or {}))

    launched = {}
    for n in (4, 40):
        weights = bf16_weights(*[(5,)] * n)
        # fused, as prefopt/engine.py asks for on a GPU (the CPU's default AdamW loops over the parameters)
        opt = MasterWeightAdamW(weights, 1.0, 2**20, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, fused=True)
        for _ in range(2):
            for w in weights:
                w.grad = torch.randn(5).to(torch.bfloat16)
            with Ops() as ops:
                opt.step()
        launched[n] = {op: k for op, k in ops.count.items() if not op.startswith(("aten.view", "profiler"))}
    assert launched[4] == launched[40], launched
    assert launched[4]["aten._foreach_copy_.default"] == 2
