"""Fault injection for tests of preemption and crash recovery (never set in normal use).

PREFOPT_FAULT=sigterm@N or sigkill@N sends that signal to this process after step (or batch) N, on rank 0.
"""

import os
import signal


def inject(step: int, rank: int = 0) -> None:
    """Deliver the configured signal once `step` is reached."""
    kind, _, at = os.environ.get("PREFOPT_FAULT", "").partition("@")
    if kind and rank == 0 and at.isdigit() and int(at) == step:
        os.kill(os.getpid(), {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[kind])
