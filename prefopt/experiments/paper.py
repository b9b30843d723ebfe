"""Reproduce the paper's LLM experiments (§5) on the embedded task with prefopt's own commands; see docs/paper.md.

`python -m prefopt.experiments.paper --seeds 0 1 2` (what scripts/paper.sh runs). Per seed, from `builtin:arith-base/SEED`:
  1. held-out accuracy of the base (and of the weaker `builtin:arith-weak/SEED`, the paper's "another model");
  2. 8 candidates per training prompt from both models, judged into the four scenarios' pairs (Table 4);
  3. vanilla DPO on each scenario (Tables 1 and 2); DPO + SFT, IPO and SLiC on scenario 1's pairs (Table 10), and
     their control, SFT on the same pairs' chosen answers at the same settings;
     the β⁻ sweep with β⁺ fixed, through scripts/sweep_beta.sh (Figure 9; β⁻ = 0.05 is the flex-β row);
  4. a reward model and DPO on the same pairs, scored on held-out judged pairs during training (Figure 4);
  5. PPO against that reward model (Table 3), with the 3D metrics on scenario 1's pairs;
  6. the selected settings, each beside its control (prefopt/experiments/paper_selected.py): DPO + SFT on on-policy
     pairs, GRPO (alone and with an SFT term) and PPO with the rule reward, continued SFT on judged-best answers,
     and GRPO and DPO + SFT started from that control's model against a longer control.
Steps 3-4 use the paper's settings scaled down (App. D.1: one pass over the pairs at a small learning rate, β 0.1);
step 6 the settings the validation search chose (scripts/select.sh).
Every run is a `prefopt` command through the Python API (`prefopt.train`, `generate`, `judge`: the CLI's own
code), with the demo's recipes; each seed runs in its own process, and its commands are in its commands.log.
Each seed's numbers go to `<runs>/seed<N>/summary.json`; `prefopt.experiments.paper_page` turns them into the page.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prefopt.experiments import REPO, paper_selected
from prefopt.experiments.paper_report import SCENARIOS, held_out_set
from prefopt.experiments.paper_selected import THREE_D
from prefopt.experiments.seeds import side_by_side
from prefopt.fsutil import write_atomic
from prefopt.rundir import read_metrics

REGULARISERS = {"dpo_sft": ("dpo", ["loss.sft_weight=1.0"]), "ipo": ("ipo", []), "slic": ("slic", [])}


@dataclass(frozen=True)
class Settings:
    """Sizes of one reproduction; chosen once, the same for every scenario, printed in docs/paper.md."""

    base_steps: int = 0  # 0: the builtin base as shipped (prefopt/tasks/bases.py)
    weak_steps: int = 0
    train_prompts: int = 512  # prompts with 8 candidates each -> the pairs
    eval_problems: int | None = None  # held-out problems, one greedy answer each: None for every test problem once
    heldout_prompts: int = 200  # held-out prompts judged into pairs, for the RM-vs-DPO accuracy curves
    dpo_steps: int = 0  # 0: one pass over the pairs (the paper's one epoch)
    dpo_lr: float = 1e-5  # the paper's 5e-7 is a 33B model's; a tenth of the selected rate here
    rm_steps: int = 60
    ppo_steps: int = 40
    curve_every: int = 5  # evaluation interval of the RM-vs-DPO runs
    betas_rejected: tuple = (0.05, 0.02, 0.01)  # β⁻ with β⁺ = 0.1; β⁻ = 0.1 is scenario 1 itself
    flex_beta_rejected: float = 0.05


QUICK = Settings(base_steps=30, weak_steps=30, train_prompts=48, eval_problems=40, heldout_prompts=24, dpo_steps=4,
                 rm_steps=4, ppo_steps=2, curve_every=2, betas_rejected=(0.05,))
PAPER_SETTINGS = ["train.epochs=1"]  # with dpo_steps 0: one pass


class Seed:
    """One seed's pipeline: runs commands under `<root>/seed<N>/` and collects their numbers."""

    def __init__(self, seed: int, root: Path, settings: Settings, quick: bool = False):
        self.seed, self.settings, self.dir, self.quick = seed, settings, root / f"seed{seed}", quick
        self.base = _builtin("arith-base", seed, settings.base_steps)
        self.weak = _builtin("arith-weak", seed, settings.weak_steps)

    def prefopt(self, command: str, recipe: str, *sets: str):
        """`prefopt COMMAND --recipe RECIPE --set ...`, run in this process (it is a seed's own); logged first."""
        import prefopt

        recipe = str(REPO / recipe)  # the harness's recipes, wherever it runs from
        print(f"\n$ prefopt {command} --recipe {recipe} " + " ".join(f"--set {item}" for item in sets), flush=True)
        if command == "generate":
            return prefopt.generate(recipe, sets)
        if command == "judge":
            return prefopt.judge(recipe, sets)
        return prefopt.train(recipe, [*sets, "log.console=false"], command=command)

    def generate(self, model: str, prompts: str, name: str, n: int, limit: int) -> Path:
        if (self.dir / name).exists():  # generate resumes what a directory holds: one name, one run
            raise RuntimeError(f"seed {self.seed}: {self.dir / name} is written twice")
        recipe = "recipes/demo/generate.yaml" if n > 1 else "recipes/demo/eval_generate.yaml"
        return self.prefopt("generate", recipe, f"model.path={model}", f"data.train={prompts}",
                            f"generate.max_prompts={limit}", f"generate.seed={self.seed}",
                            f"train.output_dir={self.dir / name}")

    def accuracy(self, model: str, name: str) -> dict:
        """Held-out 5-point and 4-5-point rates of `model` (one greedy answer per problem, rule judge), and the
        4-5-point rate of each operation."""
        from prefopt.experiments import diagnose

        s = self.settings
        spec, count = held_out_set(s.eval_problems)
        gens = self.generate(model, spec, name, 1, count)
        rates = self.prefopt("judge", "recipes/demo/eval_judge.yaml", f"judge.input={gens}",
                             f"train.output_dir={self.dir / name}")
        return {**rates, "by_operation": diagnose.operation_rates(diagnose.read_rows(gens))}

    def pairs(self, gens: Path, name: str, chosen: str = "policy_best", rejected: str = "policy_worst",
              other: Path | None = None) -> tuple[Path, dict]:
        """Judge candidates into pairs; returns the file and the kept/dropped counts."""
        out = self.dir / "pairs" / name
        extra = [f"judge.other={other}"] if other else []
        counts = self.prefopt("judge", "recipes/demo/judge.yaml", f"judge.input={gens}", f"judge.chosen_from={chosen}",
                              f"judge.rejected_from={rejected}", *extra, f"train.output_dir={out}")
        return out / "pairs.jsonl", dict(counts)

    def train(self, command: str, recipe: str, name: str, data: Path | str, evaldata: Path, steps: int,
              *sets: str) -> list[dict]:
        """A training run from the base on `data`, evaluated on `evaldata`; returns its metrics rows."""
        out = self.prefopt(command, recipe, f"model.path={self.base}", f"data.train={data}", f"data.eval={evaldata}",
                           f"train.max_steps={steps}", f"train.seed={self.seed}", f"train.output_dir={self.dir / name}",
                           *sets)
        return read_metrics(out)

    def run(self) -> dict:
        s, t0 = self.settings, time.time()
        summary = {"seed": self.seed, "base": self.accuracy(self.base, "eval_base"),
                   "weak": self.accuracy(self.weak, "eval_weak")}
        prompts = f"builtin:arith/sft/train/{s.train_prompts}/{1000 + self.seed}"
        policy = self.generate(self.base, prompts, "gen_policy", 8, s.train_prompts)
        other = self.generate(self.weak, prompts, "gen_weak", 8, s.train_prompts)
        heldout_gens = self.generate(self.base, f"builtin:arith/sft/test/{s.heldout_prompts}/1", "gen_heldout", 8,
                                     s.heldout_prompts)
        heldout, summary["heldout_pairs"] = self.pairs(heldout_gens, "heldout")
        files, summary["pairs"], summary["scenarios"] = {}, {}, {}
        for name, (chosen, rejected) in SCENARIOS.items():
            files[name], summary["pairs"][name] = self.pairs(policy, name, chosen, rejected, other)
            if name != "scenario1":  # the paper's scenarios share one prompt set (MATH*): scenario 1's
                files[name], summary["pairs"][name]["not in scenario 1"] = _restrict(files[name], files["scenario1"])
        summary["same_chosen"] = _same_chosen(files["scenario1"], files["scenario2"])
        summary["diagnosis"] = _diagnosis(files["scenario1"], self.dir / "eval_base" / "generations.jsonl", self.base)
        paper = [f"optim.lr={s.dpo_lr}", *PAPER_SETTINGS]
        for name, path in files.items():  # vanilla DPO, evaluated on its own pairs (Table 1) and held out (Table 2)
            rows = self.train("dpo", "recipes/demo/dpo.yaml", name, path, path, s.dpo_steps, *paper)
            summary["scenarios"][name] = {**_table1(rows), **self.accuracy(self.dir / name / "model", f"eval_{name}"),
                                          "curves": paper_selected.curves(rows, THREE_D)}
        summary["regularisers"] = {}
        for name, (command, sets) in REGULARISERS.items():
            rows = self.train(command, "recipes/demo/dpo.yaml", name, files["scenario1"], files["scenario1"],
                              s.dpo_steps, *paper, *sets)
            summary["regularisers"][name] = {**_table1(rows), **self.accuracy(self.dir / name / "model", f"eval_{name}")}
        # their control: SFT on the same pairs' chosen answers, one pass at the same rate (a few small steps toward
        # the model's own right answers may be all that moves a held-out rate)
        self.train("sft", "recipes/demo/dpo.yaml", "sft_control", files["scenario1"], "null", s.dpo_steps, *paper,
                   "data.fields.completion=chosen")
        summary["paper_control"] = self.accuracy(self.dir / "sft_control" / "model", "eval_sft_control")
        summary["sweep"] = self.sweep(files["scenario1"])
        summary["regularisers"]["flex_beta"] = summary["sweep"][str(s.flex_beta_rejected)]
        summary["stability"] = self.stability(files["scenario1"], heldout)
        summary["ppo"] = self.ppo(files["scenario1"])
        sizes = paper_selected.QUICK if self.quick else paper_selected.Selected()
        summary["selected"] = paper_selected.run(self, sizes, self.quick, files["scenario1"])
        summary["settings"] = {**asdict(s), "selected": asdict(sizes)}
        summary["seconds"] = round(time.time() - t0)
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        return summary

    def sweep(self, pairs: Path) -> dict:
        """β⁻ sweep with β⁺ = β = 0.1 through scripts/sweep_beta.sh; β⁻ -> Table 1 numbers and held-out accuracy."""
        s, root = self.settings, (self.dir / "sweep").resolve()
        values = " ".join(str(v) for v in s.betas_rejected)
        sets = [f"model.path={self.base}", f"data.train={pairs}", f"data.eval={pairs}", f"train.max_steps={s.dpo_steps}",
                f"train.seed={self.seed}", "log.console=false", f"optim.lr={s.dpo_lr}", *PAPER_SETTINGS]
        args = [str(REPO / "scripts/sweep_beta.sh"), "--recipe", str(REPO / "recipes/demo/dpo.yaml"), "--values", values,
                "--param", "beta_rejected", "--beta-chosen", "0.1", "--name", f"paper-seed{self.seed}-sweep",
                "--out", str(root),
                *[arg for item in sets for arg in ("--set", item)]]
        print("\n$ " + " ".join(args), flush=True)
        from prefopt.engine import env_for_child

        done = subprocess.run(["bash", *args], env={**env_for_child(), "PYTHON": sys.executable})
        if done.returncode:
            raise RuntimeError(f"seed {self.seed}: scripts/sweep_beta.sh failed (exit {done.returncode})")
        out = {}
        for value in s.betas_rejected:
            run = root / f"beta_rejected={value}"
            out[str(value)] = {**_table1(read_metrics(run)), **self.accuracy(run / "model", f"eval_sweep_{value}")}
        return out

    def stability(self, pairs: Path, heldout: Path) -> dict:
        """Held-out pair accuracy over training of a reward model and of DPO, trained on the same pairs (Fig. 4)."""
        s, every = self.settings, ["eval.every=" + str(self.settings.curve_every), "eval.probe_size=0"]
        rm = self.train("rm", "recipes/demo/rm.yaml", "rm", pairs, heldout, s.rm_steps, *every)
        dpo = self.train("dpo", "recipes/demo/dpo.yaml", "dpo_heldout", pairs, heldout, s.dpo_steps, *every,
                         f"optim.lr={s.dpo_lr}", *PAPER_SETTINGS)
        key = ("eval/rewards/accuracies",)
        return {"rm": paper_selected.curves(rm, key)[key[0]], "dpo": paper_selected.curves(dpo, key)[key[0]]}

    def ppo(self, pairs: Path) -> dict:
        """PPO from the base against the reward model of `stability`, evaluated like the DPO runs."""
        s = self.settings
        rows = self.train("ppo", "recipes/demo/ppo.yaml", "ppo", f"builtin:arith/prompts/train/512/{self.seed}",
                          pairs, s.ppo_steps, f"ppo.reward.path={self.dir / 'rm' / 'model'}")
        return {**self.accuracy(self.dir / "ppo" / "model", "eval_ppo"), "curves": paper_selected.curves(rows, THREE_D)}


def _builtin(name: str, seed: int, steps: int) -> str:
    return f"builtin:{name}/{seed}" + (f"/{steps}" if steps else "")


def _restrict(pairs: Path, to: Path) -> tuple[Path, int]:
    """Keep the pairs whose prompt id is among `to`'s (written beside as *.shared.jsonl); the file and the count cut."""
    ids = {json.loads(line)["id"] for line in to.read_text().splitlines() if line.strip()}
    rows = [line for line in pairs.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["id"] in ids]
    out = pairs.with_name("pairs.shared.jsonl")
    write_atomic(out, "".join(line + "\n" for line in kept))
    return out, len(rows) - len(kept)


def _same_chosen(policy_pairs: Path, reference_pairs: Path) -> float:
    """Share of prompts whose best policy answer is the dataset's solution word for word (scenarios 1 and 2)."""
    chosen = lambda path: {r["id"]: r["chosen"] for r in map(json.loads, path.read_text().splitlines())}
    policy, reference = chosen(policy_pairs), chosen(reference_pairs)
    return sum(policy[i] == reference.get(i) for i in policy) / max(len(policy), 1)


def _diagnosis(pairs: Path, generations: Path, model: str) -> dict:
    """Where scenario 1's chosen and rejected differ, and what the base gets wrong (prefopt/experiments/diagnose.py)."""
    from transformers import AutoTokenizer

    from prefopt import builtin
    from prefopt.experiments import diagnose

    tok = AutoTokenizer.from_pretrained(builtin.resolve(model))
    return {"pairs": diagnose.pair_stats(diagnose.read_rows(pairs), tok),
            "errors": diagnose.error_stats(diagnose.read_rows(generations))}


def _table1(rows: list[dict]) -> dict:
    """Per-token log-probs of chosen and rejected on the run's own pairs: before training (step 0) and after."""
    evals = [row for row in rows if "eval/logps/chosen_per_token" in row]
    first, last = evals[0], evals[-1]
    return {"logp_chosen_base": first["eval/logps/chosen_per_token"],
            "logp_rejected_base": first["eval/logps/rejected_per_token"],
            "logp_chosen": last["eval/logps/chosen_per_token"], "logp_rejected": last["eval/logps/rejected_per_token"],
            "delta_chosen": last.get("eval/3d/delta_chosen"), "delta_rejected": last.get("eval/3d/delta_rejected")}


def _pipeline(seed: int, root: Path, settings: Settings, quick: bool) -> dict:
    return Seed(seed, root, settings, quick).run()


def run_seeds(seeds: list[int], root: Path, settings: Settings, quick: bool = False) -> list[dict]:
    """Every seed's pipeline, all seeds side by side in their own processes; their summaries."""
    return side_by_side(_pipeline, seeds, root, (settings, quick))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=Path("runs/paper"))
    ap.add_argument("--docs", type=Path, default=REPO / "docs")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline and the page, not the claims")
    args = ap.parse_args(argv)
    from prefopt.experiments import paper_page

    t0 = time.time()
    summaries = run_seeds(args.seeds, args.runs, QUICK if args.quick else Settings(), args.quick)
    page = paper_page.write(summaries, args.docs, minutes=(time.time() - t0) / 60, quick=args.quick)
    print(f"wrote {page} ({(time.time() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
