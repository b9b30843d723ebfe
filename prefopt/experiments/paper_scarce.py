"""docs/paper.md's table of docs/scarce.md's methods: each against its base and its control, read from the summaries
that page was written from (docs/scarce/summaries.json), so that "does a method beat its base and its control?" is
answered on both kinds of base on one page. Left out where that page has not run."""

from __future__ import annotations

import json
from pathlib import Path

from prefopt.experiments import control_pages

# (method, family, run, its control, the longer control): every DPO-family and RL method of docs/scarce.md against
# the control that trains on its problems' best base answers for as many steps, and against that SFT given more
# passes over the same answers (the last row runs for the longer control's steps itself)
ROWS = [("GRPO, 64 problems × 8 an update", "RL", "grpo", "rft_grpo", "rft_long"),
        ("GRPO + SFT term, 64 × 8", "RL", "grpo_sft", "rft_grpo", "rft_long"),
        ("DPO + SFT, on-policy pairs, 3 passes", "DPO family", "dpo_sft", "rft", "rft_long"),
        ("GRPO + SFT term, 1,024 × 2 (docs/paper.md's selected)", "RL", "grpo_1024_sft", "rft_1024", "rft_1024_long"),
        ("DPO + SFT on the pairs of those answers (docs/paper.md's selected)", "DPO family", "dpo_sft_1024", "rft_1024",
         "rft_1024_long"),
        ("GRPO + SFT term, 1,024 × 2, for the longer control's steps", "RL", "grpo_1024_sft_long", "rft_1024_long",
         None)]


def section(docs: Path) -> list[str]:
    """The section's lines: the table, then which methods beat both (none where docs/scarce.md has not run)."""
    path = docs / "scarce" / "summaries.json"
    if not path.exists():
        return []
    page = json.loads(path.read_text())
    summaries, passes = page["seeds"], page["sizes"]["long_passes"]
    lines = ["| method (docs/scarce.md) | family | against its base (pp) | verdict | against its control (pp) | "
             "verdict | against the longer control (pp) | verdict |", "|---|---|---|---|---|---|---|---|"]
    both, beyond = [], []
    for label, family, run, control, longer in ROWS:
        if not (control_pages.has(summaries, run) and control_pages.has(summaries, control)):
            continue  # a row added to docs/scarce.md's harness after its run
        cells = [control_pages.change(summaries, run, key) if key and control_pages.has(summaries, key) else
                 ("its control" if key is None else "not run", "") for key in ("base", control, longer)]
        lines.append(f"| {label} | {family} | " + " | ".join(f"{value} | **{held}**" if held else f"{value} |"
                                                             for value, held in cells) + " |")
        if cells[0][1] == cells[1][1] == "holds":
            both.append(f"{label} ({family})")
        if (cells[2] if longer else cells[1])[1] == "holds":  # the last row's control is the longer control
            beyond.append(f"{label} ({family})")
    return ["### On bases that have fitted scarce SFT data ([scarce.md](scarce.md))", "",
            f"docs/scarce.md's {len(summaries)} seeds, each with its own base: the shipped SFT recipe on 2,000 problems "
            "for 3,000 steps (fitted, where this page's base is unfinished SFT). Each control is continued SFT on the "
            "best base answers to the method's problems for as many steps; the longer control is that SFT for "
            f"{passes} passes over the same answers ({passes} times the steps), as long as the last row's run. The "
            "same verdict rule as above.", "", *lines, "",
            "Beating both its base and its control beyond the spread there: " + ("; ".join(both) or "none") +
            ". Beating the longer control too: " + ("; ".join(beyond) or "none") + ".", ""]
