"""Shared bits of the launch tests: a small tiny-model recipe, and waiting on Slurm jobs."""

import subprocess
import time

from prefopt.tasks import arith
from tests.conftest import write_jsonl


def tiny_recipe(tmp_path, steps=6):
    write_jsonl(tmp_path / "train.jsonl", arith.records("pairs", "train", 48))
    write_jsonl(tmp_path / "eval.jsonl", arith.records("pairs", "test", 8))
    p = tmp_path / "slurm_tiny.yaml"
    p.write_text(f"""model: {{path: "builtin:tiny"}}
data: {{train: {tmp_path / 'train.jsonl'}, eval: {tmp_path / 'eval.jsonl'}, max_length: 48, max_prompt_length: 20}}
loss: {{beta: 0.5}}
optim: {{lr: 0.005, warmup_steps: 1}}
train: {{max_steps: {steps}, micro_batch_size: 4, seed: 1}}
log: {{every: 1, console: false}}
eval: {{max_batches: 1, probe_size: 2, probe_max_new_tokens: 4}}
""")
    return p


def job_state(job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    for tok in out.split():
        if tok.startswith("JobState="):
            return tok.split("=", 1)[1]
    return "UNKNOWN"


def wait_done(job: str, timeout: float = 600) -> str:
    """Poll until the job (all array tasks) leaves the queue; its final state if Slurm still knows it (this
    cluster has no accounting and forgets finished jobs quickly: callers check the job's artifacts instead)."""
    end = time.time() + timeout
    while time.time() < end:
        if not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
            return job_state(job)
        time.sleep(1)
    raise TimeoutError(f"slurm job {job} still queued after {timeout} s")


def release_requeue_hold(job: str, timeout: float = 120) -> None:
    """Slurm holds a requeued job for about two minutes (reason BeginTime); start it now instead, so the test
    does not wait out the hold. The job itself, and what prefopt does on requeue, are unchanged."""
    end = time.time() + timeout
    while time.time() < end:
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True).stdout
        if "PENDING BeginTime" in state:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
            return
        if not state.strip():
            return
        time.sleep(0.5)
