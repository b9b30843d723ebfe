"""`prefopt generate`: sample N candidates per prompt, resumably, sharded over ranks.

Output: one JSONL record per prompt, `{id, prompt, candidates, answer?, reference?, meta}`, appended and flushed
per batch. Batches are fixed by prompt index and seeded by (seed, batch index), so a result does not depend on
how many ranks ran or where a killed run stopped; a rerun skips the ids already written (and drops a torn last
line). Under torchrun, rank r writes `<output>.rank<r>` for batches r, r+world, ...; rank 0 merges them at the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn

from prefopt import builtin, faults, models, rundir
from prefopt import engine as eng
from prefopt.data.records import normalize
from prefopt.data.sources import BadRows, iter_records
from prefopt.data.tokenize import Unrenderable, encode_prompt, stop_ids
from prefopt.errors import UserError
from prefopt.fsutil import write_atomic
from prefopt.recipe import dump_recipe
from prefopt.rl import response_mask
from prefopt.sampling import sample
from prefopt.schema import Recipe


def load_prompts(recipe: Recipe, tokenizer=None) -> tuple[list[dict], BadRows]:
    """Prompt records of data.train with their stable ids (row order), answers and reference solutions, and the
    bad-row counts. With a tokenizer, a prompt its chat template cannot render is a bad row here, not a crash later."""
    d, bad = recipe.data, BadRows(recipe.data.on_bad_row)
    if not d.train:
        raise UserError("data.train: required (prompts to generate for)")
    out = []
    for where, rec in iter_records(d.train, bad, d.split, d.streaming):
        found = normalize(rec, where, "prompt", d, bad)
        if found is None:
            continue
        ex = found[0]
        if tokenizer is not None:
            try:
                encode_prompt(ex["prompt"], tokenizer)
            except Unrenderable as e:
                bad.reject(where, "unrenderable", str(e))
                continue
        row = {"id": str(len(out)), "prompt": ex["prompt"]}
        if d.fields.answer in rec:
            row["answer"] = rec[d.fields.answer]
        for key in (d.fields.completion, "solution"):
            if isinstance(rec.get(key), str):
                row["reference"] = rec[key]
                break
        out.append(row)
        if recipe.generate.max_prompts and len(out) >= recipe.generate.max_prompts:
            break
    return out, bad


def read_done(path: Path) -> dict[str, dict]:
    """Records already written (by id). A torn last line from a kill is cut off so appends stay valid JSONL."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]
    if len(keep) != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(len(keep))
    return {r["id"]: r for r in map(json.loads, keep.decode().splitlines()) if r}


def output_path(recipe: Recipe, run_dir: Path) -> Path:
    return Path(recipe.generate.output or run_dir / rundir.GENERATIONS)


def generate(recipe: Recipe, run_dir: Path) -> Path:
    """Run generation for the recipe; returns the merged output path."""
    rank, world = eng.setup_distributed()
    g = recipe.generate
    out = output_path(recipe, run_dir)
    rundir.prepare(recipe, "generate")
    if rank == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_recipe(run_dir, "generate", dump_recipe(recipe))
    written, recipe = recipe, builtin.resolved(recipe)  # the candidates name the model as the recipe does
    tok = models.load_tokenizer(recipe)
    prompts, bad = load_prompts(recipe, tok)
    if rank == 0:
        print(f"{recipe.data.train}: {len(prompts)} prompts, {bad.summary()}", flush=True)
    shard = out.with_name(out.name + f".rank{rank}")
    done = {**read_done(out), **read_done(shard)}
    todo_batches = [k for k in range(rank, -(-len(prompts) // g.batch_size), world)
                    if any(p["id"] not in done for p in prompts[k * g.batch_size:(k + 1) * g.batch_size])]
    sampler = _sampler(recipe, tok)
    meta = {"model": written.model.path, "n": g.n, "temperature": g.temperature, "top_p": g.top_p,
            "max_new_tokens": g.max_new_tokens, "seed": g.seed, "backend": g.backend}
    t0, n_prompts, n_tokens = time.perf_counter(), 0, 0
    with Progress(TextColumn("[bold]generate"), BarColumn(), TextColumn("{task.completed}/{task.total} batches"),
                  TextColumn("{task.fields[rate]}"), disable=rank != 0) as bar, shard.open("a") as fh:
        task = bar.add_task("gen", total=len(todo_batches), rate="")
        for k in todo_batches:
            batch = prompts[k * g.batch_size:(k + 1) * g.batch_size]
            texts, tokens = sampler(batch, seed=g.seed * 1_000_003 + k)
            for p, cands in zip(batch, texts):
                if p["id"] not in done:
                    fh.write(json.dumps({**p, "candidates": cands, "meta": meta}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            faults.inject(k + 1, rank)
            n_prompts, n_tokens = n_prompts + len(batch), n_tokens + tokens
            dt = time.perf_counter() - t0
            bar.update(task, advance=1, rate=f"{n_prompts / dt:.1f} prompts/s  {n_tokens / dt:.0f} tokens/s")
    import torch.distributed as dist

    total_tokens = torch.tensor([float(n_tokens)])
    dist.all_reduce(total_tokens)  # also the barrier before the merge: every rank's shard is complete
    if rank == 0:
        _merge(out, prompts, world)
        _log_counts(recipe, run_dir, prompts, bad, int(total_tokens.item()), time.perf_counter() - t0)
    dist.barrier()
    return out


def _log_counts(recipe: Recipe, run_dir: Path, prompts: list[dict], bad: BadRows, tokens: int, seconds: float) -> None:
    """metrics.jsonl (and W&B) of a generate run: prompts kept, skipped per reason, tokens sampled (rank 0 only)."""
    from prefopt.sinks import Sinks

    recipe.log.console = False  # the progress bar above was the console view
    sinks = Sinks(run_dir, recipe, total_steps=0, rank=0)
    sinks.log(0, {"data/rows": float(len(prompts)), **bad.as_metrics("data/skipped"),
                  "generate/tokens": float(tokens), "generate/seconds": seconds})
    sinks.finish({})


def _merge(out: Path, prompts: list[dict], world: int) -> None:
    """Fold the rank shards into `out` (atomically), in prompt order, keeping what `out` already held."""
    records = read_done(out)
    shards = [out.with_name(out.name + f".rank{r}") for r in range(world)] + list(out.parent.glob(out.name + ".rank*"))
    for s in set(shards):
        records.update(read_done(s))
    order = {p["id"]: i for i, p in enumerate(prompts)}
    ordered = sorted(records, key=lambda i: order.get(i, 1 << 30))
    write_atomic(out, "".join(json.dumps(records[i]) + "\n" for i in ordered))
    for s in set(shards):
        s.unlink(missing_ok=True)


def _sampler(recipe: Recipe, tok):
    g = recipe.generate
    if g.backend == "vllm":
        return _vllm_sampler(recipe)
    model = models.load_policy(recipe, "lm", 1, g.seed).to(eng.device()).eval()
    if eng.on_gpu():
        model = model.to(torch.bfloat16)
    stop = stop_ids(tok)

    def sample_batch(batch: list[dict], seed: int) -> tuple[list[list[str]], int]:
        seqs = sample(model, [encode_prompt(p["prompt"], tok) for p in batch], pad_id=tok.pad_token_id,
                      stop_ids=stop, max_new_tokens=g.max_new_tokens, seed=seed, temperature=g.temperature,
                      top_p=g.top_p, n=g.n)
        gen_tokens = int(response_mask(seqs, stop)[0].sum())
        texts = tok.batch_decode(seqs, skip_special_tokens=True)
        return [texts[i * g.n:(i + 1) * g.n] for i in range(len(batch))], gen_tokens

    return sample_batch


def _vllm_sampler(recipe: Recipe):
    """The optional vLLM backend (used only when vllm is installed)."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise UserError("generate.backend: vllm is not installed (pip install vllm), or use backend: hf") from None
    g = recipe.generate
    llm = LLM(model=recipe.model.path, seed=g.seed, trust_remote_code=recipe.model.trust_remote_code)

    def sample(batch: list[dict], seed: int):
        params = SamplingParams(n=g.n, temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_new_tokens, seed=seed)
        outs = llm.generate([p["prompt"] for p in batch], params, use_tqdm=False)
        texts = [[c.text for c in o.outputs] for o in outs]
        return texts, sum(len(c.token_ids) for o in outs for c in o.outputs)

    return sample
