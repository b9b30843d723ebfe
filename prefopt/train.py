"""The one training loop, for every objective: forward, loss, backward/step, metrics, eval, checkpoints.

Metrics stay on the device between logging steps and are reduced with one all-reduce per logging step.
SIGTERM/SIGUSR1 (preemption) make the loop write a checkpoint at the next step boundary and exit cleanly.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist

from prefopt import builtin, faults, models, plots, probe, refcache, toy
from prefopt import engine as eng
from prefopt.data.collate import Collator
from prefopt.data.loader import BatchStream, TokenizedData
from prefopt.errors import UserError
from prefopt.logprobs import sequence_logps, sequence_scores, to_device
from prefopt.metrics.preference import Meter, batch_sums
from prefopt.objectives import Objective, Terms, resolve_betas
from prefopt.recipe import dump_recipe
from prefopt.schema import Recipe
from prefopt.sinks import Sinks, read_metrics

PREEMPTED = 3  # exit code after a signal-triggered checkpoint, so a requeue wrapper can tell it apart


def run_dir_of(recipe: Recipe) -> Path:
    """`train.output_dir`, or `runs/<recipe name>`."""
    return Path(recipe.train.output_dir or f"runs/{recipe.name}")


class Trainer:
    """Holds the engine, reference, data and sinks of one run."""

    def __init__(self, recipe: Recipe, obj: Objective, resume: bool):
        self.r, self.obj = recipe, obj
        resolve_betas(recipe.loss)
        self.rank, self.world = eng.setup_distributed()
        self.dev = eng.device()
        self.run_dir = run_dir_of(recipe)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "recipe.yaml").write_text(dump_recipe(recipe))  # first, so a crashed run is traceable
        self._seed(recipe.train.seed)
        self.stop_requested = False
        self.tok = models.load_tokenizer(recipe)
        self.collate = Collator(self.tok.pad_token_id)
        d = recipe.data
        if not d.train:
            raise UserError("data.train: required (a JSONL/JSON/Parquet path, a save_to_disk dir or a hub id)")
        self.train_data = TokenizedData(d.train, obj.data_kind, self.tok, d, d.split)
        self.eval_data = TokenizedData(d.eval, obj.data_kind, self.tok, d, d.eval_split) if d.eval else None
        policy = models.load_policy(recipe, obj.head, self.world, recipe.train.seed)
        self.ref = None
        if obj.needs_reference:
            ref = models.load_reference(recipe, policy, self.world)
            self.ref = eng.build_frozen(ref, recipe, self.world)
        self.total_steps = self._total_steps()
        self.engine = eng.build_engine(policy, recipe, self.world, self.total_steps)
        self.probe = self._probe() if obj.has_logps else []
        if obj.needs_reference and recipe.train.precompute_ref:
            self._precompute()
        self.state = {"step": 0, "data": None}
        if resume:
            client = eng.load_latest(self.engine, self.run_dir / "checkpoints")
            if client is None:
                self.note("--resume: no checkpoint yet; starting from step 0")
            else:
                self.state = {"step": client["step"], "data": client["data"]}
                self._restore_rng(client["rng"])
                self.note(f"resumed from step {client['step']}")
        self.sinks = Sinks(self.run_dir, recipe, self.total_steps, self.rank, self.state["step"])
        for data in filter(None, (self.train_data, self.eval_data)):
            self.note(data.report())

    # ------------------------------------------------------------------------------------------------ set-up

    def note(self, text: str) -> None:
        if self.rank == 0:
            print(text, flush=True)

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        torch.manual_seed(seed)

    def _rng(self) -> dict:
        return {"torch": torch.get_rng_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state() if eng.on_gpu() else None}

    def _restore_rng(self, rng: dict) -> None:
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and eng.on_gpu():
            torch.cuda.set_rng_state(rng["cuda"])

    def _total_steps(self) -> int:
        t = self.r.train
        if t.max_steps:
            return t.max_steps
        if self.train_data.streaming:
            raise UserError("train.max_steps: required with data.streaming (the stream has no known length)")
        steps = t.epochs * len(self.train_data) // (t.micro_batch_size * t.grad_accum * self.world)
        if steps < 1:
            raise UserError(f"train.micro_batch_size: one global batch needs more rows than {self.r.data.train} has")
        return steps

    def _probe(self) -> list[dict]:
        source = self.eval_data or self.train_data
        prompts = []
        for ex in source:
            prompts.append(self.tok.decode(ex["prompt_ids"], skip_special_tokens=True))
            if len(prompts) >= self.r.eval.probe_size:
                break
        model = self.ref if self.ref is not None else self.engine.module
        return probe.build_probe(self.r, self.tok, model, prompts, self.r.train.seed)

    def _precompute(self) -> None:
        r = self.r
        ref_path = builtin.resolve(r.model.ref_path or r.model.path) if r.model.kind != "toy_mlp" else None
        cache_dir = Path(r.train.ref_cache_dir or builtin.cache_dir() / "ref_logps")
        for data, spec in ((self.train_data, r.data.train), (self.eval_data, r.data.eval)):
            if data is None:
                continue
            key = refcache.cache_key(r, ref_path, builtin.resolve(spec))
            data.attach_reference(refcache.precompute(r, self.ref, data, key, cache_dir, self.tok.pad_token_id,
                                                      self.note))
        self.ref = None  # the live reference is no longer needed: free its memory

    # ------------------------------------------------------------------------------------------------ steps

    def forward(self, batch: dict, with_entropy: bool):
        """Per-example losses and the Terms they came from, for one micro-batch (chosen ‖ rejected rows)."""
        b = to_device(batch, self.dev)
        model = self.engine.module  # ZeRO-3's gather hooks live on the module's submodules, so this is safe
        if self.obj.head == "score":
            s, n = sequence_scores(model, b), b["n_pairs"]
            pol, ent = Terms(s[:n], s[n:]), None
        else:
            ent = sequence_logps(model, b, with_entropy=with_entropy)
            pol = _split(ent.logps, ent.tokens, b["n_pairs"])
        ref = None
        if self.obj.needs_reference:
            if "ref_logps" in b:
                ref_lp = b["ref_logps"]
            else:
                with torch.no_grad():
                    ref_lp = sequence_logps(self.ref, b).logps
            ref = _split(ref_lp, ent.tokens, b["n_pairs"])
        return self.obj.loss(pol, ref, self.r.loss), pol, ref, ent

    def _metrics_of(self, meter: Meter, batch: dict, losses, pol, ref, ent) -> None:
        """Add a micro-batch's sums; counts come from host tensors, so nothing here waits for the device."""
        meter.add(batch_sums(self.obj, pol, ref, self.r.loss, losses), float(len(batch["idx"])))
        if ent is not None and ent.entropy is not None:
            meter.add({"3d/entropy": ent.entropy.sum()}, float(batch["completion_mask"][:, 1:].sum()))

    def _grad_split(self, pol: Terms, ref: Terms | None) -> dict[str, torch.Tensor]:
        """True parameter-gradient norms of the chosen and of the rejected term (two extra backward passes).

        A diagnostic every `log.grad_split_every` steps: it holds one full gradient (gathered under ZeRO-3) and
        all-reduces it across ranks, so the norm is that of the global micro-batch, independent of sharding.
        """
        from prefopt.metrics.three_d import logp_grads

        g_c, g_r = logp_grads(self.obj, pol, ref, self.r.loss)
        params = [p for p in self.engine.module.parameters() if p.requires_grad]
        out = {}
        for name, g, lp in (("chosen", g_c, pol.chosen), ("rejected", g_r, pol.rejected)):
            surrogate = (g.detach().to(lp.dtype) * lp).mean()
            grads = torch.autograd.grad(surrogate, params, retain_graph=True, allow_unused=True)
            sq = torch.zeros((), device=self.dev)
            for g_p in grads:  # the gradient of the whole (all-rank) micro-batch: average, then take the norm
                if g_p is not None:
                    if self.world > 1:
                        dist.all_reduce(g_p)
                        g_p /= self.world
                    sq += (g_p.float() ** 2).sum()
            out[f"3d/param_grad_{name}"] = sq.sqrt()
        return out

    def data_metrics(self) -> dict[str, float]:
        """Rows kept, skipped per reason and truncated, for the train (`data/*`) and eval (`eval/data/*`) sets."""
        out = self.train_data.as_metrics("data")
        if self.eval_data is not None:
            out.update(self.eval_data.as_metrics("eval/data"))
        return out

    def evaluate(self) -> dict[str, float]:
        """Loss and metrics on the held-out set (`eval/` prefix), plus the dispersion probe."""
        meter = Meter()
        self.engine.module.eval()
        if self.eval_data is not None:
            items = list(self.eval_data)
            per = len(items) // self.world  # equal batch counts on every rank
            mine = items[self.rank * per:(self.rank + 1) * per]
            bs = self.r.train.micro_batch_size
            limit = self.r.eval.max_batches or None
            with torch.no_grad():
                for i, start in enumerate(range(0, len(mine), bs)):
                    if limit and i >= limit:
                        break
                    batch = self.collate(mine[start:start + bs])
                    losses, pol, ref, ent = self.forward(batch, with_entropy=True)
                    self._metrics_of(meter, batch, losses, pol, ref, ent)
        if self.probe:
            meter.add({"3d/unseen_logp": probe.unseen_logp(self.engine.module, self.probe, self.tok.pad_token_id,
                                                           self.r.train.micro_batch_size)}, 1.0)
        if self.r.model.kind == "toy_mlp":
            meter.add(toy.toy_metrics(self.engine.module), 1.0)
        self.engine.module.train()
        out = meter.reduce()
        return {(k if k.startswith(("3d/unseen", "probs/")) else f"eval/{k}"): v for k, v in out.items()}

    # ------------------------------------------------------------------------------------------------ loop

    def train(self) -> Path:
        """Run to `max_steps` (or until preempted); returns the run directory."""
        r, e = self.r, self.engine
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        stream = BatchStream(self.train_data, self.collate, r.train.micro_batch_size, r.train.grad_accum,
                             self.world, self.rank, r.train.seed, r.data.shuffle, r.data.shuffle_buffer,
                             self.state["data"])
        step, meter = self.state["step"], Meter()
        tokens, t0 = 0.0, time.perf_counter()
        if step == 0:
            self.sinks.log(0, {**self.data_metrics(), **self.evaluate()})
        batches = iter(stream)
        while step < self.total_steps:
            step_batches = next(batches)
            log_now = (step + 1) % r.log.every == 0 or step + 1 == self.total_steps
            split_now = r.log.grad_split_every and (step + 1) % r.log.grad_split_every == 0
            for i, batch in enumerate(step_batches):
                tokens += float(batch["attention_mask"].sum())
                losses, pol, ref, ent = self.forward(batch, with_entropy=log_now)
                if split_now and i == 0 and self.obj.has_logps and self.obj.pairwise:
                    meter.add(self._grad_split(pol, ref), 1.0)
                self._metrics_of(meter, batch, losses, pol, ref, ent)
                e.backward(losses.mean())
                if log_now and i == len(step_batches) - 1 and e.zero_optimization_stage() == 0:
                    meter.add({"grad_norm": _grad_norm(e.module)}, 1.0)  # DeepSpeed drops it at stage 0
                e.step()
            step += 1
            faults.inject(step, self.rank)
            stop = self.stop_requested and self.world == 1
            if log_now or self.world == 1 and self.stop_requested:
                dt = time.perf_counter() - t0
                m = meter.reduce({"tokens": tokens, "stop": float(self.stop_requested)})
                stop = m.pop("stop") > 0
                m["tokens_per_s"] = m.pop("tokens") / max(dt, 1e-9)
                m.update(lr=e.get_lr()[0], epoch=stream.state["epoch"])
                if eng.on_gpu():  # peak since the start of the run, this rank; a host-side counter, no sync
                    m["mem/peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                if e.zero_optimization_stage() > 0 and e.get_global_grad_norm() is not None:
                    m["grad_norm"] = float(e.get_global_grad_norm())
                if r.model.kind == "toy_mlp":
                    m.update({k: float(v) for k, v in toy.toy_metrics(e.module).items()})
                if step == self.total_steps:  # streaming sources have been read further since step 0
                    m.update(self.data_metrics())
                if r.eval.every and step % r.eval.every == 0 and step < self.total_steps or step == self.total_steps:
                    m.update(self.evaluate())
                elif self.probe:
                    m["3d/unseen_logp"] = float(probe.unseen_logp(e.module, self.probe, self.tok.pad_token_id,
                                                                  r.train.micro_batch_size))
                self.sinks.log(step, m)
                tokens, t0 = 0.0, time.perf_counter()
            if stop or (r.train.save_every and step % r.train.save_every == 0):
                self._checkpoint(step, stream.state)
            if stop:
                self.sinks.note(f"stopped by signal at step {step}; checkpoint written, resume with --resume")
                self.sinks.finish({})
                raise SystemExit(PREEMPTED)
        return self._finish(step, stream.state)

    def _checkpoint(self, step: int, data_state: dict) -> None:
        eng.save_checkpoint(self.engine, self.run_dir / "checkpoints", step,
                            {"step": step, "data": data_state, "rng": self._rng()}, self.r.train.keep_checkpoints)

    def _finish(self, step: int, data_state: dict) -> Path:
        if self.r.train.save_every:
            self._checkpoint(step, data_state)
        eng.export_hf(self.engine, self.tok, self.run_dir / "model", self.rank)
        images = {}
        if self.rank == 0:
            images["3d"] = plots.plot_3d(read_metrics(self.run_dir), self.run_dir / "plots" / "3d.png", self.r.name)
        self.sinks.finish(images)
        dist.barrier()
        return self.run_dir

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True




def _split(values: torch.Tensor, tokens: torch.Tensor, n_pairs: int) -> Terms:
    if n_pairs == 0:  # SFT rows
        return Terms(values, None, tokens, None)
    return Terms(values[:n_pairs], values[n_pairs:], tokens[:n_pairs], tokens[n_pairs:])


def _grad_norm(module) -> torch.Tensor:
    """Pre-clipping L2 norm of the accumulated gradients (a device tensor)."""
    norms = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def train(recipe: Recipe, obj: Objective, resume: bool = False) -> Path:
    """Build a Trainer for the recipe and objective, and run it."""
    return Trainer(recipe, obj, resume).train()
