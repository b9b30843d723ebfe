"""CPU arithmetic that gives the same numbers on every x86-64 machine with AVX2, for the embedded bases and the demo.

Torch picks its vector kernels (ATen) and MKL its matrix-product code path by the CPU it runs on, so one recipe
trains another model on another processor: a 150-step SFT of the arithmetic base on this project's AVX-512 machine
differed by 0.004 in a weight between the AVX-512 and the AVX2 paths, and after the base's 1,700 steps seed 0's base
answered 54.5 % of the test problems on one machine and 18.8 % on another (2026-12-02). Pinned to AVX2 (which every
x86-64 server CPU since 2013 has) and to MKL's strict reproducible mode, the same build is the same on this machine
whatever the parent's settings and threads, and costs no time here (34 s for both paths). A CPU without AVX2 falls
back to what it has and gets other numbers; on other processors (ARM) nothing is pinned. Set before torch starts:
in a child's environment or at the top of a script; it has no effect on GPUs.
"""

from __future__ import annotations

import os
import platform

X86 = platform.machine().lower() in ("x86_64", "amd64")
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT"} if X86 else {}


def pin() -> None:
    """Pin this process's CPU arithmetic (call before torch is imported: both variables are read once)."""
    os.environ.update(PINNED)


if __name__ == "__main__":  # a shell script pins its commands with: eval "$(python -m prefopt.cpu_pin)"
    print(" ".join(f"export {name}='{value}';" for name, value in PINNED.items()))
