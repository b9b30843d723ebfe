"""Iterative on-policy training: R rounds of generate → judge → train, each round sampling from the last one's model.

One recipe holds every section the three steps read (model, data, generate, judge, loss, optim, train, eval);
round r (from 0) runs, under `<out>/round<r>/`:
  generate  `generate.n` candidates for the round's prompts (`prompts` with `{round}` replaced by r, so every
            round meets new prompts) from the current model: the base in round 0, then the last round's model;
  judge     best/worst pairs (mode pairs), and best.jsonl;
  train     the command (`dpo` by default; `loss.variant` picks the loss) on those pairs (`sft`: on the judged-best
            answers, the control that tells alignment from more training), from the current model,
            against a reference that is the current model (`reference: previous`, on-policy DPO's usual choice)
            or the base (`reference: base`); its eval set is the round's own pairs, so eval/3d/* show what the
            round did to the likelihoods of what it trained on, and `eval.prompts` (when set) logs accuracy.
Each round's pairs, accuracy and 3D metrics go to `<out>/rounds.json`, `<out>/rounds.md` and `<out>/rounds.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefopt import api
from prefopt.compare import final
from prefopt.rundir import read_metrics

COLUMNS = ("eval/accuracy", "eval/3d/delta_chosen", "eval/3d/delta_rejected", "eval/3d/chosen_below_ref_frac",
           "eval/rewards/accuracies")


def run_rounds(recipe, prompts: str, rounds: int, out: Path, command: str = "dpo", reference: str = "previous",
               overrides=()) -> list[dict]:
    """Run the rounds; returns one summary per round (also written to `out`)."""
    out.mkdir(parents=True, exist_ok=True)
    base = api.load(recipe, overrides).model.path
    current, summaries = base, []
    for r in range(rounds):
        here = out / f"round{r}"
        sets = [*overrides, f"model.path={current}"]
        generations = api.generate(recipe, [*sets, f"data.train={prompts.format(round=r)}",
                                            f"train.output_dir={here / 'generate'}", "generate.output=null"])
        counts = api.judge(recipe, [*sets, "judge.mode=pairs", f"judge.input={generations}", "judge.output=null",
                                    f"train.output_dir={here / 'judge'}"])
        pairs = here / "judge" / "pairs.jsonl"
        data = [f"data.train={here / 'judge' / 'best.jsonl'}", "data.eval=null"] if command == "sft" else \
            [f"data.train={pairs}", f"data.eval={pairs}"]  # sft: the control, continued SFT on the best answers
        run = api.train(recipe, [*sets, f"model.ref_path={current if reference == 'previous' else base}", *data,
                                 f"train.output_dir={here / 'train'}"], command=command)
        rows = read_metrics(run)
        summary = {"round": r, "model": str(run / "model"), "pairs": int(counts.get("kept", 0)),
                   "start/eval/accuracy": rows[0].get("eval/accuracy")}
        summary.update({key: final(rows, key, eval_fallback=False) for key in COLUMNS})
        summaries.append(summary)
        current = str(run / "model")
        _write(out, summaries)
    return summaries


def _write(out: Path, summaries: list[dict]) -> None:
    (out / "rounds.json").write_text(json.dumps(summaries, indent=2) + "\n")
    fmt = lambda v: "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
    head = ["round", "pairs", "accuracy before", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(s[k]) for k in ("round", "pairs", "start/eval/accuracy", *COLUMNS)) + " |"
              for s in summaries]
    (out / "rounds.md").write_text("\n".join(lines) + "\n")
    from matplotlib.ticker import MaxNLocator

    from prefopt.plots import plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    rounds = [s["round"] for s in summaries]
    accuracy = [summaries[0]["start/eval/accuracy"]] + [s["eval/accuracy"] for s in summaries]
    if all(a is not None for a in accuracy):
        axes[0].plot(range(len(accuracy)), accuracy, marker="o")
    axes[0].set(title="eval/accuracy after each round (0: the base)", xlabel="rounds done")
    for key in ("eval/3d/delta_chosen", "eval/3d/delta_rejected"):
        axes[1].plot(rounds, [s[key] for s in summaries], marker="o", label=key.split("/")[-1])
    axes[1].set(title="log π - log π_ref on the round's pairs", xlabel="round")
    axes[1].legend()
    for ax in axes:  # rounds are whole numbers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(out / "rounds.png", dpi=80)
    plt.close(fig)
