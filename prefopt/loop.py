"""The one training loop, for every objective: the objective's step, then logging, evaluation and checkpoints.

An objective supplies its step (prefopt/steps.py for offline data: one batch; prefopt/ppo.py, prefopt/grpo.py: a
rollout, then updates), built from a StepContext; this loop only sequences step -> log -> evaluate -> checkpoint /
stop. Metrics stay on the device between logging steps and are reduced with one all-reduce per logging step.
SIGTERM/SIGUSR1 (preemption) make the loop write a checkpoint at the next step boundary and exit cleanly.
"""

from __future__ import annotations

import functools
import random
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist

from prefopt import assembly, builtin, checkpoint, faults, lora, models, plots, refcache, rundir, toy
from prefopt import engine as eng
from prefopt.best import KeepBest
from prefopt.data.collate import Collator
from prefopt.evaluation import Evaluation
from prefopt.grpo import GRPOStep
from prefopt.heldout import HeldOut
from prefopt.metrics.preference import Meter
from prefopt.objectives import Objective, resolve_betas
from prefopt.ppo import PPOStep
from prefopt.recipe import dump_recipe
from prefopt.rundir import read_metrics
from prefopt.schema import Recipe
from prefopt.sinks import Sinks
from prefopt.steps import PairStep, StepContext

STEPS = {"pair": PairStep, "ppo": PPOStep, "grpo": GRPOStep}  # Objective.step names one of these

PREEMPTED = 3  # exit code after a signal-triggered checkpoint, so a requeue wrapper can tell it apart


def preflight(recipe: Recipe, objective: Objective, world: int) -> None:
    """Every check that needs no model: the objective's rules and its step's batch arithmetic (UserError)."""
    objective.check(recipe)
    STEPS[objective.step].optimizer_steps(recipe, world)


class Trainer:
    """One run: the step of its objective, its evaluation, sinks and checkpoints, set up from the recipe."""

    def __init__(self, recipe: Recipe, objective: Objective, resume: bool):
        resolve_betas(recipe.loss)
        rank, world = eng.setup_distributed()
        written, (recipe, fast_path) = recipe, eng.for_world(recipe, world)  # the run dir keeps `written`
        preflight(recipe, objective, world)
        self.run_dir = rundir.prepare(recipe, objective.name, resume)
        if rank == 0:  # first, so a crashed run is traceable; the header names the objective
            rundir.write_recipe(self.run_dir, objective.name, dump_recipe(written))
        recipe = builtin.resolved(recipe)  # from here on, every model and data path is a real one
        random.seed(recipe.train.seed)
        torch.manual_seed(recipe.train.seed)
        self.recipe, self.rank, self.world, self.stop_requested = recipe, rank, world, False
        tokenizer = models.load_tokenizer(recipe)
        collator = Collator(tokenizer.pad_token_id, layout=assembly.layout_of(recipe))
        train_data, eval_data = assembly.load_data(recipe, objective, tokenizer)
        step_kind = STEPS[objective.step]
        total_steps = assembly.total_steps(recipe, train_data, step_kind.global_batch(recipe, world))
        policy = models.load_policy(recipe, objective.head, world, recipe.train.seed)
        reference = assembly.reference_of(recipe, objective, policy, world)
        optimizer_steps = total_steps * step_kind.optimizer_steps(recipe, world)
        engine = eng.build_engine(policy, recipe, world, optimizer_steps)
        self.context = StepContext(recipe, objective, engine, reference, tokenizer, collator, train_data,
                                   eng.device(), rank, world, self.run_dir, total_steps)
        if collator.layout != "padded":
            self.note(assembly.check_packing(recipe, objective, engine, train_data, collator, self.context.device))
        source = eval_data if eval_data is not None else train_data  # the probe's prompts
        probe_set = assembly.probe_set(recipe, tokenizer, source, reference, engine.module) \
            if objective.has_logps else []
        heldout = HeldOut(recipe, tokenizer, self.run_dir, rank, world) \
            if recipe.eval.prompts and objective.has_logps else None
        self.evaluation = Evaluation(self.context, train_data, eval_data, probe_set, heldout)
        self.best = KeepBest(recipe, self.run_dir) if recipe.train.keep_best else None
        if reference is not None and recipe.train.precompute_ref and objective.pairwise:
            sets = [data for data in (train_data, eval_data) if data is not None]
            refcache.attach(recipe, reference, models.reference_path(recipe), sets, collator, self.note)
            self.context.reference = None  # the live reference is no longer needed: free its memory
        self.stepper = step_kind(self.context)
        self.portable_checkpoints = fast_path is not None
        self.state = {"step": 0, "data": None}
        if resume:
            self.state = checkpoint.resume(engine, self.run_dir / rundir.CHECKPOINTS, self.stepper, self.best) or \
                self.state
            self.note(f"resumed from step {self.state['step']}" if self.state["step"] else
                      "--resume: no checkpoint yet; starting from step 0")
        self.sinks = Sinks(self.run_dir, written, total_steps, rank, self.state["step"])
        for data in filter(None, (train_data, eval_data)):
            self.note(data.report())
        if lora.enabled(recipe):
            self.note(lora.summary(engine.module))
        if fast_path:
            self.note(fast_path)

    def note(self, text: str) -> None:
        """Print on rank 0 only."""
        if self.rank == 0:
            print(text, flush=True)

    def train(self) -> Path:
        """Run to the last step (or until preempted); returns the run directory."""
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        self.stepper.start(self.state["data"])
        step, total, meter, tokens, clock = self.state["step"], self.context.total_steps, Meter(), 0.0, time.perf_counter()
        if step == 0:
            first = self.evaluation()
            self._keep_best(0, first)
            self.sinks.log(0, {**self.evaluation.data_metrics(), **first})
        while step < total:
            # Evaluations happen at logging steps, so a step where one is due logs too (eval.every need not be a
            # multiple of log.every).
            eval_due = self.recipe.eval.every and (step + 1) % self.recipe.eval.every == 0
            log_now = (step + 1) % self.recipe.log.every == 0 or step + 1 == total or bool(eval_due)
            tokens += self.stepper.run(step, meter, log_now)
            step += 1
            faults.inject(step, self.rank)
            stop = self.stop_requested and self.world == 1  # several ranks learn of a signal at a logging step
            if log_now or stop:
                stop = self._log(step, meter, tokens, time.perf_counter() - clock)
                tokens, clock = 0.0, time.perf_counter()
            if stop or (self.recipe.train.save_every and step % self.recipe.train.save_every == 0):
                self._checkpoint(step)
            if stop:
                self.sinks.note(f"stopped by signal at step {step}; checkpoint written, resume with --resume")
                self.sinks.finish({})
                raise SystemExit(PREEMPTED)
        return self._finish(step)

    def _log(self, step: int, meter: Meter, tokens: float, seconds: float) -> bool:
        """Reduce the meter (one all-reduce, which also carries the stop flag), evaluate when due, and log."""
        recipe, engine, total = self.recipe, self.context.engine, self.context.total_steps
        metrics = meter.reduce({"tokens": tokens, "stop": float(self.stop_requested)})
        stop = metrics.pop("stop") > 0
        metrics["tokens_per_s"] = metrics.pop("tokens") / max(seconds, 1e-9)
        metrics.update(lr=engine.get_lr()[0], epoch=self.stepper.data_state["epoch"])
        if eng.on_gpu():  # this rank, from the allocator's host-side counters (no sync)
            # Between steps only what persists is allocated: weights, gradients, optimizer states, the reference.
            # The peak (since the start of the run) minus that is what the steps add: activations, temporaries.
            metrics["mem/peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            metrics["mem/resident_gib"] = torch.cuda.memory_allocated() / 2**30
            metrics["mem/rest_gib"] = metrics["mem/peak_gib"] - metrics["mem/resident_gib"]
        if engine.zero_optimization_stage() > 0 and engine.get_global_grad_norm() is not None:
            metrics["grad_norm"] = float(engine.get_global_grad_norm())
        if recipe.model.kind == "toy_mlp":
            metrics.update({k: float(v) for k, v in toy.toy_metrics(engine.module).items()})
        if step == total:  # streaming sources have been read further since step 0
            metrics.update(self.evaluation.data_metrics())
        if recipe.eval.every and step % recipe.eval.every == 0 and step < total or step == total:
            metrics.update(self.evaluation())
            self._keep_best(step, metrics)
        elif self.evaluation.probe_set:
            metrics["3d/unseen_logp"] = float(self.evaluation.unseen_logp())
        self.sinks.log(step, metrics)
        return stop

    def _checkpoint(self, step: int) -> None:
        checkpoint.save(self.context.engine, self.run_dir / rundir.CHECKPOINTS, step, self.stepper, self.best,
                        self.recipe.train.keep_checkpoints, self.portable_checkpoints)

    def _keep_best(self, step: int, metrics: dict[str, float]) -> None:
        if self.best is not None and self.best.update(step, metrics, self._export):
            metrics["best/step"] = float(step)

    def _export(self, target: Path) -> None:
        """The policy as `target/model` (and `target/adapter` under LoRA), loadable with from_pretrained."""
        context = self.context
        if lora.enabled(self.recipe):
            state = eng.gathered_state(context.engine, self.rank)
            if self.rank == 0:
                base = functools.partial(models.load_merge_base, self.recipe, context.objective.head)
                lora.export(state, context.engine.module, context.tokenizer, base, target)
        else:
            eng.export_hf(context.engine, context.tokenizer, target / rundir.MODEL, self.rank)

    def _finish(self, step: int) -> Path:
        if self.recipe.train.save_every:
            self._checkpoint(step)
        if self.best is None:
            self._export(self.run_dir)
        else:
            self.note(self.best.finish(self._export, self.rank))
        images = {}
        if self.rank == 0:
            images["3d"] = plots.plot_3d(read_metrics(self.run_dir), self.run_dir / rundir.PLOTS / "3d.png",
                                         self.recipe.name)
        self.sinks.finish(images)
        dist.barrier()
        return self.run_dir

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True


def train(recipe: Recipe, objective: Objective, resume: bool = False) -> Path:
    """Build a Trainer for the recipe and objective, and run it."""
    return Trainer(recipe, objective, resume).train()
