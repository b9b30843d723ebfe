"""The 3D curves of a run as a PNG: log-probs of chosen, rejected and unseen responses, and gradient magnitudes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, skipping rows without it."""
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def _train_or_eval(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """The training metric, or its eval-set value where a run logs none in training (PPO trains on rollouts)."""
    steps, values = series(rows, key)
    return (steps, values) if steps else series(rows, f"eval/{key}")


def plot_3d(rows: list[dict], out: Path, title: str = "") -> Path:
    """Write plots/3d.png: per-token log-probs (chosen, rejected, unseen probe) and log|∂L/∂π| over steps."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    series_of = lambda key: _train_or_eval(rows, key)
    ax = axes[0]
    for key, label in (("logps/chosen_per_token", "chosen"), ("logps/rejected_per_token", "rejected"),
                       ("3d/unseen_logp", "unseen (probe)")):
        ax.plot(*series_of(key), label=label)
    ax.set(title="log-prob per token", xlabel="step")
    ax.legend()
    ax = axes[1]
    for key, label in (("3d/delta_chosen", "Δ chosen"), ("3d/delta_rejected", "Δ rejected")):
        ax.plot(*series_of(key), label=label)
    ax.set(title="log π - log π_ref (sequence)", xlabel="step")
    ax.legend()
    ax = axes[2]
    for key, label in (("3d/log_grad_chosen", "log|∂L/∂π(y_w)|"), ("3d/log_grad_rejected", "log|∂L/∂π(y_l)|")):
        ax.plot(*series_of(key), label=label)
    ax.set(title="gradient magnitude (Corollary 1)", xlabel="step")
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
