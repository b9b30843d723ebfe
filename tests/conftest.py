"""Shared fixtures: an offline environment, the tiny model, JSONL writing, and running the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFOPT_CACHE", str(ROOT / ".cache" / "prefopt"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="offline",
                  TRANSFORMERS_VERBOSITY="error", PYTHONWARNINGS="ignore")
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # `make test` runs workers side by side: share the cores, not oversubscribe
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


def pytest_collection_modifyitems(items):
    """The slow pipelines first (a stable sort): on two workers they then overlap rather than run last, alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def tiny_path() -> str:
    from prefopt import builtin

    return builtin.resolve("builtin:tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


def write_jsonl(path: Path, rows) -> Path:
    """Rows may be dicts (dumped) or raw strings (written as is, for malformed lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def run_cli(*args, cwd=ROOT, env=None, timeout=600, launcher=None) -> subprocess.CompletedProcess:
    """Run `prefopt ARGS` in a fresh process (as a user would); returns the completed process."""
    cmd = (launcher or [sys.executable, "-m", "prefopt.cli"]) + [str(a) for a in args]
    return subprocess.run(cmd, cwd=cwd, env={**clean_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def two_ranks(port: int) -> list[str]:
    """`run_cli`'s launcher for two ranks: torchrun on `port` (a port per test, so runs never collide)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
            "-m", "prefopt.cli"]


def clean_env() -> dict:
    """This process's environment without the torch.distributed variables that in-process runs set."""
    from prefopt.engine import env_for_child

    return env_for_child()


def read_rows(run_dir) -> list:
    return [json.loads(ln) for ln in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if ln.strip()]


def tiny_dpo_recipe(d: Path) -> Path:
    """A 6-step DPO recipe on the tiny model with 64 train and 16 eval arithmetic pairs, written under `d`."""
    from prefopt.tasks import arith

    write_jsonl(d / "train.jsonl", arith.records("pairs", "train", 64))
    write_jsonl(d / "eval.jsonl", arith.records("pairs", "test", 16))
    p = d / "r.yaml"
    p.write_text(f"""model: {{path: "builtin:tiny"}}
data: {{train: {d / 'train.jsonl'}, eval: {d / 'eval.jsonl'}, max_length: 64, max_prompt_length: 24, shuffle: true}}
loss: {{beta: 0.5}}
optim: {{lr: 0.005, warmup_steps: 1}}
train: {{max_steps: 6, micro_batch_size: 4, grad_accum: 1, seed: 3}}
log: {{every: 1, grad_split_every: 3, console: false}}
eval: {{max_batches: 2, probe_size: 4, probe_max_new_tokens: 8}}
""")
    return p
