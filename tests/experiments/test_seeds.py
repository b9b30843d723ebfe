"""prefopt/experiments/seeds.py: each seed in its own process, with the pinned CPU arithmetic."""

from __future__ import annotations

import os
from pathlib import Path

from prefopt import cpu_pin
from prefopt.experiments.seeds import side_by_side


def arithmetic(seed, root):
    """What one seed's process computes with: its pin variables and torch's vector kernels."""
    import torch

    return seed, {name: os.environ.get(name) for name in cpu_pin.PINNED}, torch.backends.cpu.get_cpu_capability()


def test_every_seed_process_starts_with_the_pinned_cpu_arithmetic(tmp_path, monkeypatch):
    """A page's numbers must not hang on the CPU's vector width: each seed's process starts pinned to AVX2 kernels
    (on a CPU that has them) and MKL's strict mode, whatever the parent had."""
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    results = side_by_side(arithmetic, [0, 1], tmp_path)
    assert [seed for seed, _, _ in results] == [0, 1]
    assert all(variables == cpu_pin.PINNED for _, variables, _ in results)
    cpu = Path("/proc/cpuinfo")
    if cpu.exists() and " avx2" in cpu.read_text():  # elsewhere torch falls back to what the CPU has
        assert {capability for _, _, capability in results} == {"AVX2"}
    assert (tmp_path / "seed1" / "commands.log").exists()
