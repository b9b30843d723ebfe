"""The one training loop, for every objective: the objective's step, then logging, evaluation and checkpoints.

An objective supplies its step (prefopt/steps.py for offline data: one batch; prefopt/ppo.py, prefopt/grpo.py: a rollout, then
updates); this loop owns the rest. Metrics stay on the device between logging steps and are reduced with one
all-reduce per logging step. SIGTERM/SIGUSR1 (preemption) make the loop write a checkpoint at the next step
boundary and exit cleanly.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist

from prefopt import attention, builtin, faults, lora, models, plots, probe, refcache, toy
from prefopt import engine as eng
from prefopt.best import KeepBest
from prefopt.data.batching import cut, cut_evenly
from prefopt.data.collate import Collator
from prefopt.data.loader import TokenizedData
from prefopt.errors import UserError
from prefopt.grpo import GRPOStep
from prefopt.logprobs import sequence_logps, sequence_scores, to_device
from prefopt.metrics.preference import Meter, batch_sums, side_sums
from prefopt.objectives import NEEDS_SCORES, Objective, Terms, resolve_betas
from prefopt.ppo import PPOStep
from prefopt.recipe import dump_recipe
from prefopt.schema import Recipe
from prefopt.sinks import Sinks, read_metrics
from prefopt.steps import PairStep

STEPS = {"pair": PairStep, "ppo": PPOStep, "grpo": GRPOStep}  # Objective.step names one of these

PREEMPTED = 3  # exit code after a signal-triggered checkpoint, so a requeue wrapper can tell it apart


def run_dir_of(recipe: Recipe) -> Path:
    """`train.output_dir`, or `runs/<recipe name>`."""
    return Path(recipe.train.output_dir or f"runs/{recipe.name}")


class Trainer:
    """Holds the engine, reference, data, step and sinks of one run."""

    def __init__(self, recipe: Recipe, obj: Objective, resume: bool):
        resolve_betas(recipe.loss)
        self.rank, self.world = eng.setup_distributed()
        written, (recipe, fast_path) = recipe, eng.for_world(recipe, self.world)  # the run dir keeps `written`
        self.recipe, self.obj, self.portable_checkpoints = recipe, obj, fast_path is not None
        self.dev = eng.device()
        self.run_dir = run_dir_of(recipe)
        if self.rank == 0:  # first, so a crashed run is traceable; the header names the objective
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "recipe.yaml").write_text(f"# prefopt {obj.name}\n" + dump_recipe(written))
        random.seed(recipe.train.seed)
        torch.manual_seed(recipe.train.seed)
        self.stop_requested = False
        self.tok = models.load_tokenizer(recipe)
        self.layout = layout_of(recipe)
        self.collate = Collator(self.tok.pad_token_id, layout=self.layout)
        d = recipe.data
        if not d.train:
            raise UserError("data.train: required (a JSONL/JSON/Parquet path, a save_to_disk dir or a hub id)")
        self.train_data = TokenizedData(d.train, obj.data_kind, self.tok, d, d.split)
        self.eval_data = TokenizedData(d.eval, obj.evaluated_as.data_kind, self.tok, d, d.eval_split) if d.eval else None
        if recipe.train.max_tokens_per_batch and obj.data_kind in ("unpaired", "prompt"):
            raise UserError(f"train.max_tokens_per_batch: not for `prefopt {obj.name}` ("
                            + ("its KL rows pair each prompt with another completion of the same micro-batch, so "
                               "the loss would depend on how a step is cut" if obj.data_kind == "unpaired" else
                               "rollout minibatches are train.micro_batch_size responses") + "); set it to 0")
        if recipe.train.precompute_ref and obj.data_kind == "unpaired":
            raise UserError("train.precompute_ref: kto's KL rows pair each prompt with another row's completion, "
                            "which depends on the batch; they cannot be precomputed")
        if obj.needs_scores:  # fail before loading a model, naming the set
            for key, data in (("data.train", self.train_data), ("data.eval", self.eval_data)):
                first = data.head(1) if data is not None else []
                if first and "score_chosen" not in first[0]:
                    raise UserError(f"{key}: the first pair has no scores; {NEEDS_SCORES}")
        step_kind = STEPS[obj.step]
        self.total_steps = self._total_steps(step_kind.global_batch(recipe, self.world))
        policy = models.load_policy(recipe, obj.head, self.world, recipe.train.seed)
        self.ref = None  # used through lora.as_reference: a LoRA policy is its own reference, adapters off
        if obj.needs_reference:
            self.ref = policy if lora.enabled(recipe) else \
                eng.build_frozen(models.load_reference(recipe, policy, self.world), recipe, self.world)
        optimizer_steps = self.total_steps * step_kind.optimizer_steps(recipe, self.world)
        self.engine = eng.build_engine(policy, recipe, self.world, optimizer_steps)
        if self.layout != "padded":
            self.note(self._check_packing())
        self.probe = self._probe() if obj.has_logps else []
        self.heldout = None
        if recipe.eval.prompts and obj.has_logps:
            from prefopt.heldout import HeldOut

            self.heldout = HeldOut(recipe, self.tok, self.run_dir, self.rank, self.world)
        self.best = KeepBest(recipe, self.run_dir) if recipe.train.keep_best else None
        if obj.needs_reference and recipe.train.precompute_ref and obj.pairwise:
            self._precompute()
        self.stepper = step_kind(self)
        self.state = {"step": 0, "data": None}
        if resume:
            self._resume()
        self.sinks = Sinks(self.run_dir, written, self.total_steps, self.rank, self.state["step"])
        for data in filter(None, (self.train_data, self.eval_data)):
            self.note(data.report())
        if lora.enabled(recipe):
            self.note(lora.summary(self.engine.module))
        if fast_path:
            self.note(fast_path)

    # ------------------------------------------------------------------------------------------------ set-up

    def note(self, text: str) -> None:
        if self.rank == 0:
            print(text, flush=True)

    def _total_steps(self, global_batch: int) -> int:
        t = self.recipe.train
        if t.max_steps:
            return t.max_steps
        if self.train_data.streaming:
            raise UserError("train.max_steps: required with data.streaming (the stream has no known length)")
        steps = t.epochs * len(self.train_data) // global_batch
        if steps < 1:
            raise UserError(f"train.micro_batch_size: one global batch ({global_batch}) needs more rows than "
                            f"{self.recipe.data.train} has")
        return steps

    def _probe(self) -> list[dict]:
        source = self.eval_data if self.eval_data is not None else self.train_data
        prompts = [self.tok.decode(ex["prompt_ids"], skip_special_tokens=True)
                   for ex in source.head(self.recipe.eval.probe_size)]
        with lora.as_reference(self.ref if self.ref is not None else self.engine.module) as model:
            return probe.build_probe(self.recipe, self.tok, model, prompts, self.recipe.train.seed)

    def _precompute(self) -> None:
        r = self.recipe
        ref_path = builtin.resolve(r.model.ref_path or r.model.path) if r.model.kind != "toy_mlp" else None
        cache_dir = Path(r.train.ref_cache_dir or builtin.cache_dir() / "ref_logps")
        for data, spec in ((self.train_data, r.data.train), (self.eval_data, r.data.eval)):
            if data is None:
                continue
            key = refcache.cache_key(r, ref_path, builtin.resolve(spec))
            with lora.as_reference(self.ref) as ref:
                data.attach_reference(refcache.precompute(r, ref, data, key, cache_dir, self.collate, self.note))
        self.ref = None  # the live reference is no longer needed: free its memory

    def _check_packing(self) -> str:
        """Score the first micro-batch in both layouts: packing must not change a single sequence's result.

        Guards against a model whose attention ignores sequence bounds (remote code, an attention backend that
        does not take them), which would silently attend across sequences.
        """
        t = self.recipe.train
        examples = self.train_data.head(t.micro_batch_size)
        if not examples or self.obj.data_kind == "prompt":
            return f"layout: padded rollouts ({self.obj.name}); packed eval batches"
        examples = cut(examples, self.collate.computed_tokens, t.micro_batch_size, t.max_tokens_per_batch)[0]
        module, padded = self.engine.module, Collator(self.tok.pad_token_id)
        score = (lambda b: sequence_scores(module, b)) if self.obj.head == "score" else \
            (lambda b: sequence_logps(module, b).logps)
        was_training = module.training
        module.eval()
        with torch.no_grad():
            a, b = (score(to_device(c(examples), self.dev)).float() for c in (padded, self.collate))
        module.train(was_training)
        gap, impl = float((a - b).abs().max()), models.attn_implementation(self.recipe) or "default"
        if gap > 1e-3 * (1 + float(a.abs().max())):
            raise UserError(f"train.layout: {self.layout} sequences score differently from padded ones (max gap {gap:.3g}); "
                            f"this model's attention ({impl}) does not keep packed sequences apart: "
                            "use train.layout: padded")
        shared = ", each pair's prompt computed once" if self.layout == "shared_prompt" else ""
        return f"layout: {self.layout} (one row per micro-batch, no padding{shared}; attention: {impl}; " \
               f"checked on the first batch: max gap {gap:.1e})"

    def _resume(self) -> None:
        client = eng.load_latest(self.engine, self.run_dir / "checkpoints", self.stepper.engines)
        if client is None:
            self.note("--resume: no checkpoint yet; starting from step 0")
            return
        self.state = {"step": client["step"], "data": client["data"]}
        self.stepper.load_state_dict(client.get("objective", {}))
        if self.best is not None:
            self.best.load_state_dict(client.get("best", {}))
        rng = client["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and eng.on_gpu():
            torch.cuda.set_rng_state(rng["cuda"])
        self.note(f"resumed from step {client['step']}")

    # ------------------------------------------------------------------------------------------------ forward

    def forward(self, batch: dict, obj: Objective, with_entropy: bool):
        """Per-example losses and the Terms they came from, for one micro-batch (chosen ‖ rejected rows)."""
        b = to_device(batch, self.dev)
        model = self.engine.module  # ZeRO-3's gather hooks live on the module's submodules, so this is safe
        if obj.head == "score":
            s, n = sequence_scores(model, b), b["n_pairs"]
            pol, ent = Terms(s[:n], s[n:]), None
        else:
            ent = sequence_logps(model, b, with_entropy=with_entropy)
            pol = _split(ent.logps, ent.tokens, b)
        ref = None
        if obj.needs_reference:
            if "ref_logps" in b:
                ref_lp = b["ref_logps"]
            else:
                with torch.no_grad(), lora.as_reference(self.ref) as ref_model:
                    ref_lp = sequence_logps(ref_model, b).logps
            ref = _split(ref_lp, ent.tokens, b)
        return obj.loss(pol, ref, self.recipe.loss), pol, ref, ent

    def metrics_of(self, meter: Meter, batch: dict, obj: Objective, losses, pol, ref, ent) -> None:
        """Add a micro-batch's sums; counts come from host tensors, so nothing here waits for the device."""
        meter.add(batch_sums(obj, pol, ref, self.recipe.loss, losses), float(len(batch["idx"])))
        if pol.labels is not None:  # unpaired: desirable and undesirable rows, each averaged over its own count
            for (sums, mask) in zip(side_sums(obj, pol, ref, self.recipe.loss), (batch["labels"], ~batch["labels"])):
                meter.add(sums, float(mask.sum()))
        if ent is not None and ent.entropy is not None:
            meter.add({"3d/entropy": ent.entropy.sum()}, float(batch["completion_mask"][:, 1:].sum()))

    # ------------------------------------------------------------------------------------------------ the loop

    def train(self) -> Path:
        """Run to `max_steps` (or until preempted); returns the run directory."""
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        self.stepper.start(self.state["data"])
        step, meter, tokens, clock = self.state["step"], Meter(), 0.0, time.perf_counter()
        if step == 0:
            first = self.evaluate()
            self._keep_best(0, first)
            self.sinks.log(0, {**self.data_metrics(), **first})
        while step < self.total_steps:
            # Evaluations happen at logging steps, so a step where one is due logs too (eval.every need not be a
            # multiple of log.every).
            eval_due = self.recipe.eval.every and (step + 1) % self.recipe.eval.every == 0
            log_now = (step + 1) % self.recipe.log.every == 0 or step + 1 == self.total_steps or bool(eval_due)
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
        r, e = self.recipe, self.engine
        m = meter.reduce({"tokens": tokens, "stop": float(self.stop_requested)})
        stop = m.pop("stop") > 0
        m["tokens_per_s"] = m.pop("tokens") / max(seconds, 1e-9)
        m.update(lr=e.get_lr()[0], epoch=self.stepper.data_state["epoch"])
        if eng.on_gpu():  # this rank, from the allocator's host-side counters (no sync)
            # Between steps only what persists is allocated: weights, gradients, optimizer states, the reference.
            # The peak (since the start of the run) minus that is what the steps add: activations, temporaries.
            m["mem/peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            m["mem/resident_gib"] = torch.cuda.memory_allocated() / 2**30
            m["mem/rest_gib"] = m["mem/peak_gib"] - m["mem/resident_gib"]
        if e.zero_optimization_stage() > 0 and e.get_global_grad_norm() is not None:
            m["grad_norm"] = float(e.get_global_grad_norm())
        if r.model.kind == "toy_mlp":
            m.update({k: float(v) for k, v in toy.toy_metrics(e.module).items()})
        if step == self.total_steps:  # streaming sources have been read further since step 0
            m.update(self.data_metrics())
        if r.eval.every and step % r.eval.every == 0 and step < self.total_steps or step == self.total_steps:
            m.update(self.evaluate())
            self._keep_best(step, m)
        elif self.probe:
            m["3d/unseen_logp"] = float(probe.unseen_logp(e.module, self.probe, self.tok.pad_token_id,
                                                          r.train.micro_batch_size))
        self.sinks.log(step, m)
        return stop

    def data_metrics(self) -> dict[str, float]:
        """Rows kept, skipped per reason and truncated, for the train (`data/*`) and eval (`eval/data/*`) sets."""
        out = self.train_data.as_metrics("data")
        if self.eval_data is not None:
            out.update(self.eval_data.as_metrics("eval/data"))
        return out

    def evaluate(self) -> dict[str, float]:
        """Loss and metrics on the held-out set (`eval/` prefix, as the objective's `eval_as` defines them), plus
        the dispersion probe."""
        meter, obj = Meter(), self.obj.evaluated_as
        module = self.engine.module
        was_training = module.training
        module.eval()
        if self.eval_data is not None:
            items, t = list(self.eval_data), self.recipe.train
            per = len(items) // self.world  # equal example counts on every rank
            if self.recipe.eval.max_batches:  # the same examples in either batching
                per = min(per, self.recipe.eval.max_batches * t.micro_batch_size)
            slices = [items[r * per:(r + 1) * per] for r in range(self.world)]
            mine = cut_evenly(slices, self.collate.computed_tokens, t.micro_batch_size, t.max_tokens_per_batch)
            with torch.no_grad():
                for examples in mine[self.rank]:
                    batch = self.collate(examples)
                    losses, pol, ref, ent = self.forward(batch, obj, with_entropy=True)
                    self.metrics_of(meter, batch, obj, losses, pol, ref, ent)
        if self.probe:
            meter.add({"3d/unseen_logp": probe.unseen_logp(module, self.probe, self.tok.pad_token_id,
                                                           self.recipe.train.micro_batch_size)}, 1.0)
        if self.heldout is not None:
            meter.add(*self.heldout.sums(self.engine))
        if self.recipe.model.kind == "toy_mlp":
            meter.add(toy.toy_metrics(module), 1.0)
        module.train(was_training)
        out = meter.reduce()
        return {(k if k.startswith(("3d/unseen", "probs/")) else f"eval/{k}"): v for k, v in out.items()}

    def _checkpoint(self, step: int) -> None:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
               "cuda": torch.cuda.get_rng_state() if eng.on_gpu() else None}
        client = {"step": step, "data": self.stepper.data_state, "rng": rng, "objective": self.stepper.state_dict(),
                  "best": self.best.state_dict() if self.best is not None else {}}
        eng.save_checkpoint(self.engine, self.run_dir / "checkpoints", step, client, self.recipe.train.keep_checkpoints,
                            self.stepper.engines, self.portable_checkpoints)

    def _keep_best(self, step: int, metrics: dict[str, float]) -> None:
        if self.best is not None and self.best.update(step, metrics, self._export):
            metrics["best/step"] = float(step)

    def _export(self, target: Path) -> None:
        """The policy as `target/model` (and `target/adapter` under LoRA), loadable with from_pretrained."""
        if lora.enabled(self.recipe):
            state = eng.gathered_state(self.engine, self.rank)
            if self.rank == 0:
                lora.export(state, self.engine.module, self.tok, self.recipe, self.obj.head, target)
        else:
            eng.export_hf(self.engine, self.tok, target / "model", self.rank)

    def _finish(self, step: int) -> Path:
        if self.recipe.train.save_every:
            self._checkpoint(step)
        if self.best is None:
            self._export(self.run_dir)
        else:
            self.note(self.best.finish(self._export, self.rank))
        images = {}
        if self.rank == 0:
            images["3d"] = plots.plot_3d(read_metrics(self.run_dir), self.run_dir / "plots" / "3d.png",
                                         self.recipe.name)
        self.sinks.finish(images)
        dist.barrier()
        return self.run_dir

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True


def layout_of(recipe: Recipe) -> str:
    """`train.layout` resolved: packed wherever the attention takes sequence bounds (prefopt's variable-length
    attention, flash attention), padded for the toy, remote code and other attention backends."""
    wanted = recipe.train.layout
    if recipe.model.kind == "toy_mlp":
        if wanted in ("packed", "shared_prompt"):
            raise UserError(f"train.layout: {wanted} needs a transformers model, not model.kind: toy_mlp")
        return "padded"
    impl = models.attn_implementation(recipe) or ""
    if wanted == "shared_prompt" and impl != attention.NAME:  # only prefopt's attention gathers a block's keys
        raise UserError(f"train.layout: shared_prompt needs model.attn_implementation: {attention.NAME} (the default), "
                        f"not {impl or 'this model'}'s; use train.layout: packed")
    if wanted != "auto":
        return wanted
    return "packed" if impl == attention.NAME or impl.startswith("flash_attention") else "padded"


def _split(values: torch.Tensor, tokens: torch.Tensor, batch: dict) -> Terms:
    """Per-row values -> Terms, as the collator laid the rows out (see prefopt/data/collate.py)."""
    n = batch["n_pairs"]
    if n == 0:  # SFT rows
        return Terms(values, None, tokens, None)
    if "labels" in batch:  # unpaired feedback: own completions, then the KL rows
        return Terms(values[:n], None, tokens[:n], None, labels=batch["labels"], kl=values[n:])
    return Terms(values[:n], values[n:], tokens[:n], tokens[n:], score_margin=batch.get("score_margin"))


def train(recipe: Recipe, obj: Objective, resume: bool = False) -> Path:
    """Build a Trainer for the recipe and objective, and run it."""
    return Trainer(recipe, obj, resume).train()
