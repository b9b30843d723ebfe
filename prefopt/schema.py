"""The recipe schema: typed sections with defaults. docs/recipes.md documents every key.

Only shapes and defaults live here; loading, merging and validation live in recipe.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class ToyConfig:
    """The paper's toy (§3.2.1): one-hot prompt -> MLP -> 10 responses."""

    scenario: int = 1  # initial distribution, see prefopt/toy.py SCENARIOS
    hidden: int = 64
    pretrain_steps: int = 400  # step 1: fit the MLP to the scenario's soft labels
    pretrain_lr: float = 0.01


@dataclass
class ModelConfig:
    path: str = ""  # local HF directory or hub id (ignored for kind: toy_mlp)
    kind: Literal["causal_lm", "toy_mlp"] = "causal_lm"
    ref_path: Optional[str] = None  # reference model; defaults to `path`
    tokenizer: Optional[str] = None  # defaults to `path`
    trust_remote_code: bool = False
    attn_implementation: Optional[str] = None  # e.g. sdpa, flash_attention_2
    gradient_checkpointing: bool = False
    toy: ToyConfig = field(default_factory=ToyConfig)


@dataclass
class FieldsConfig:
    """Maps the record's column names onto prefopt's names."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    completion: str = "completion"
    messages: str = "messages"
    answer: str = "answer"


@dataclass
class DataConfig:
    train: str = ""  # JSONL/JSON/Parquet path, save_to_disk dir, or hub dataset id
    eval: Optional[str] = None
    split: str = "train"  # split name for hub ids and save_to_disk DatasetDicts
    eval_split: str = "test"
    streaming: bool = False
    on_bad_row: Literal["error", "skip"] = "error"
    max_length: int = 512
    max_prompt_length: int = 256
    shuffle: bool = True
    shuffle_buffer: int = 1000  # streaming only: size of the shuffle buffer
    fields: FieldsConfig = field(default_factory=FieldsConfig)


@dataclass
class LossConfig:
    name: Literal["sft", "dpo", "ipo", "slic", "rm"] = "dpo"
    beta: float = 0.1  # DPO's β; IPO's τ
    beta_chosen: Optional[float] = None  # flex-β: β⁺, defaults to beta
    beta_rejected: Optional[float] = None  # flex-β: β⁻, defaults to beta
    label_smoothing: float = 0.0  # cDPO
    sft_weight: float = 0.0  # λ of DPO+SFT (Eq. 7) and of SLiC's regulariser (Eq. 11)
    delta: float = 1.0  # SLiC's margin δ
    logps: Literal["sum", "mean"] = "sum"  # per-sequence log-prob: sum or per-token mean over the response
    center_weight: float = 0.0  # rm: reward-centering regulariser weight (Eisenstein et al.)


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    output_dir: Optional[str] = None  # default runs/<recipe name>
    max_steps: int = 0  # 0: derive from epochs and data size
    epochs: int = 1
    micro_batch_size: int = 4  # pairs per rank per forward
    grad_accum: int = 1
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    save_every: int = 0  # 0: only at the end (and on SIGTERM/SIGUSR1)
    keep_checkpoints: int = 2
    precompute_ref: bool = False
    ref_cache_dir: Optional[str] = None  # default <output_dir>/../.ref_cache


@dataclass
class DeepSpeedConfig:
    stage: Literal[0, 1, 2, 3] = 0
    offload_optimizer: bool = False
    offload_param: bool = False
    config: Optional[str] = None  # a DeepSpeed JSON used as is (batch sizes are still set from train.*)


@dataclass
class LogConfig:
    every: int = 10
    wandb: bool = False
    project: str = "prefopt"
    name: Optional[str] = None
    group: Optional[str] = None
    tags: list = field(default_factory=list)
    grad_split_every: int = 0  # every K steps: true parameter-gradient norms of the chosen and rejected terms
    console: bool = True


@dataclass
class EvalConfig:
    every: int = 0  # 0: only at the end
    max_batches: int = 0  # 0: the whole eval set
    probe: Optional[str] = None  # JSONL of {prompt, response} unseen responses; default: samples from the reference
    probe_size: int = 16
    probe_max_new_tokens: int = 32


@dataclass
class GenerateConfig:
    """`prefopt generate`: N candidates per prompt from `model.path`."""

    n: int = 8  # candidates per prompt
    temperature: float = 1.0  # 0: greedy (then n must be 1)
    top_p: float = 1.0
    max_new_tokens: int = 256
    batch_size: int = 16  # prompts per generate() call
    seed: int = 0
    max_prompts: int = 0  # 0: every prompt of data.train
    output: Optional[str] = None  # default <output_dir>/generations.jsonl
    backend: Literal["hf", "vllm"] = "hf"


@dataclass
class JudgeConfig:
    """`prefopt judge`: score candidates, then keep best/worst pairs (mode: pairs) or summarise (mode: eval)."""

    kind: Literal["rule", "llm", "rm"] = "rule"
    mode: Literal["pairs", "eval"] = "pairs"
    input: str = ""  # generations JSONL written by `prefopt generate`
    output: Optional[str] = None  # default <output_dir>/pairs.jsonl (mode: pairs) or eval.json (mode: eval)
    chosen_from: Literal["policy_best", "reference"] = "policy_best"  # reference: the record's dataset solution
    rejected_from: Literal["policy_worst", "other"] = "policy_worst"  # other: worst of `other`'s candidates
    other: Optional[str] = None  # generations JSONL of another model, for rejected_from: other
    base_url: str = "https://api.openai.com/v1"  # llm: any OpenAI-compatible chat-completions endpoint
    model: str = "gpt-4o"  # llm: the judge model's name at that endpoint
    api_key_env: str = "OPENAI_API_KEY"  # llm: name of the environment variable holding the key (never logged)
    template: Optional[str] = None  # llm: rubric prompt file; default prefopt/judge/rubric.txt
    concurrency: int = 8  # llm: requests in flight
    timeout: float = 60.0  # llm: seconds per request
    max_retries: int = 5  # llm: per candidate, for 429/5xx/network errors and replies without `Score: N`
    cache: Optional[str] = None  # llm: verdict cache JSONL; default <output_dir>/judge_cache.jsonl
    rm_path: Optional[str] = None  # rm: a reward model directory written by `prefopt rm`
    batch_size: int = 16  # rm: sequences per forward


@dataclass
class Recipe:
    name: str = "recipe"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
