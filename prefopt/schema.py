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
    hidden: int = 64  # MLP width
    pretrain_steps: int = 400  # step 1: fit the MLP to the scenario's soft labels
    pretrain_lr: float = 0.01  # Adam lr of step 1


@dataclass
class ModelConfig:
    path: str = ""  # local HF directory or hub id (ignored for kind: toy_mlp)
    kind: Literal["causal_lm", "toy_mlp"] = "causal_lm"  # toy_mlp: the paper's §3.2 toy (model.toy.*)
    ref_path: Optional[str] = None  # reference model; defaults to `path`
    tokenizer: Optional[str] = None  # defaults to `path`
    trust_remote_code: bool = False  # run model code from the hub repo: off unless you trust it
    attn_implementation: Optional[str] = None  # e.g. sdpa, flash_attention_2
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    toy: ToyConfig = field(default_factory=ToyConfig)


@dataclass
class LoraConfig:
    """LoRA adapters through peft: only they train; the reference is the same model with them disabled."""

    rank: int = 0  # adapter rank r; 0: off (full fine-tuning)
    alpha: float = 16.0  # scaling α (the update is α/r · B·A)
    dropout: float = 0.0  # dropout on the adapter's input
    target_modules: list = field(default_factory=lambda: ["all-linear"])  # module names, or all-linear (not the LM head)


@dataclass
class FieldsConfig:
    """Maps the record's column names onto prefopt's names."""

    prompt: str = "prompt"  # column holding the prompt (string or messages)
    chosen: str = "chosen"  # preferred response
    rejected: str = "rejected"  # dispreferred response
    completion: str = "completion"  # SFT target (also the reference solution for judge.chosen_from)
    messages: str = "messages"  # SFT chat records: the last assistant turn is the target
    answer: str = "answer"  # reference final answer, for the rule judge
    label: str = "label"  # kto: true (desirable) or false (undesirable) completion
    score_chosen: str = "score_chosen"  # judge/UltraFeedback score of the chosen response (odpo's offset)
    score_rejected: str = "score_rejected"  # judge/UltraFeedback score of the rejected response


@dataclass
class DataConfig:
    train: str = ""  # JSONL/JSON/Parquet path, save_to_disk dir, or hub dataset id
    eval: Optional[str] = None  # held-out set: eval/* metrics and the probe prompts
    split: str = "train"  # split name for hub ids and save_to_disk DatasetDicts
    eval_split: str = "test"  # split name for data.eval
    streaming: bool = False  # read the source lazily (files larger than memory); needs train.max_steps
    on_bad_row: Literal["error", "skip"] = "error"  # error: stop at file:line; skip: drop and count per reason
    max_length: int = 512  # prompt + response tokens; responses are cut on the right
    max_prompt_length: int = 256  # prompts keep their last tokens
    shuffle: bool = True  # reshuffle every epoch with seed + epoch
    shuffle_buffer: int = 1000  # streaming only: size of the shuffle buffer
    infer_prompt: bool = True  # no prompt field / whole conversations: take the shared leading turns as the prompt
    assistant_marker: str = "\n\nAssistant:"  # text transcripts (HH): the inferred prompt ends after the last one
    chat_roles: list = field(default_factory=lambda: ["system", "user", "assistant", "tool"])  # allowed prompt roles
    fields: FieldsConfig = field(default_factory=FieldsConfig)


@dataclass
class LossConfig:
    """The loss's parameters; which loss is trained is the command's choice (`prefopt dpo`, `prefopt ipo`, ...)."""

    variant: Literal["dpo", "rdpo", "nca", "apo_zero", "simpo", "orpo", "odpo", "dpop"] = "dpo"  # prefopt dpo's loss: see docs
    beta: float = 0.1  # DPO's β; IPO's τ; SimPO's β; ORPO's λ
    beta_chosen: Optional[float] = None  # flex-β: β⁺, defaults to beta
    beta_rejected: Optional[float] = None  # flex-β: β⁻, defaults to beta
    label_smoothing: float = 0.0  # cDPO's ε; rdpo: the label-flip rate ε
    margin: float = 0.0  # SimPO's target margin γ
    offset_scale: float = 1.0  # ODPO's α: offset α·log(score_chosen - score_rejected)
    dpop_lambda: float = 50.0  # DPO-Positive's λ: penalty on the chosen log-prob falling below the reference
    desirable_weight: float = 1.0  # KTO's λ_D
    undesirable_weight: float = 1.0  # KTO's λ_U
    sft_weight: float = 0.0  # λ of DPO+SFT (Eq. 7) and of SLiC's regulariser (Eq. 11)
    delta: float = 1.0  # SLiC's margin δ
    logps: Literal["sum", "mean"] = "sum"  # per-sequence log-prob: sum or per-token mean over the response
    center_weight: float = 0.0  # rm: reward-centering regulariser weight (Eisenstein et al.)


@dataclass
class OptimConfig:
    lr: float = 1e-5  # peak learning rate (torch AdamW)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    betas: tuple = (0.9, 0.999)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    schedule: Literal["cosine", "linear", "constant"] = "cosine"  # decay after warm-up
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    min_lr_ratio: float = 0.0  # the schedule decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # global gradient-norm clipping (0: off)


@dataclass
class TrainConfig:
    output_dir: Optional[str] = None  # default runs/<recipe name>
    max_steps: int = 0  # 0: derive from epochs and data size
    epochs: int = 1  # used when max_steps is 0
    micro_batch_size: int = 4  # pairs per rank per forward
    grad_accum: int = 1  # micro-batches per optimizer step
    max_tokens_per_batch: int = 0  # >0: cut a step's examples into forwards of at most this many tokens
    seed: int = 0  # model init (toy), data order, sampling
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    save_every: int = 0  # 0: only at the end (and on SIGTERM/SIGUSR1)
    keep_checkpoints: int = 2  # newest checkpoints kept under <output_dir>/checkpoints
    precompute_ref: bool = False  # one reference pass before training, cached and reused (β sweeps)
    layout: Literal["auto", "packed", "padded", "shared_prompt"] = "auto"  # auto: packed where supported (docs/recipes.md)
    ref_cache_dir: Optional[str] = None  # default $PREFOPT_CACHE/ref_logps (~/.cache/prefopt/ref_logps)
    keep_best: Optional[str] = None  # a logged eval metric (e.g. eval/accuracy): model/ holds its best step, last/ the end
    keep_best_mode: Literal["max", "min"] = "max"  # whether a larger or a smaller keep_best value is better


@dataclass
class DeepSpeedConfig:
    stage: Literal[0, 1, 2, 3] = 0  # ZeRO stage; 3 shards the policy and the reference (one rank: runs as stage 0)
    offload_optimizer: bool = False  # ZeRO optimizer state on CPU
    offload_param: bool = False  # ZeRO-3 parameters on CPU
    config: Optional[str] = None  # a DeepSpeed JSON used as is (batch sizes are still set from train.*)


@dataclass
class LogConfig:
    every: int = 10  # logging step interval (one all-reduce each)
    wandb: bool = False  # log to W&B (offline without WANDB_API_KEY)
    project: str = "prefopt"  # W&B project
    name: Optional[str] = None  # W&B run name (default: the recipe name)
    group: Optional[str] = None  # W&B group (sweeps set it)
    tags: list = field(default_factory=list)  # W&B tags
    grad_split_every: int = 0  # every K steps: true parameter-gradient norms of the chosen and rejected terms
    console: bool = True  # rich progress bar with the key figures


@dataclass
class EvalConfig:
    every: int = 0  # 0: only at the end
    max_batches: int = 0  # 0: the whole eval set
    probe: Optional[str] = None  # JSONL of {prompt, response} unseen responses; default: samples from the reference
    probe_size: int = 16  # prompts sampled for the default unseen-response probe
    probe_max_new_tokens: int = 32  # length of each probe sample
    prompts: Optional[str] = None  # held-out prompts with answers: greedy answers, judged -> eval/accuracy, eval/score
    max_prompts: int = 200  # the first N of eval.prompts at each evaluation
    max_new_tokens: int = 64  # answer length cap for eval.prompts


@dataclass
class GenerateConfig:
    """`prefopt generate`: N candidates per prompt from `model.path`."""

    n: int = 8  # candidates per prompt
    temperature: float = 1.0  # 0: greedy (then n must be 1)
    top_p: float = 1.0  # nucleus sampling
    max_new_tokens: int = 256  # per candidate
    batch_size: int = 16  # prompts per generate() call
    seed: int = 0  # batch k is sampled with seed·1000003 + k: reproducible, resumable
    max_prompts: int = 0  # 0: every prompt of data.train
    output: Optional[str] = None  # default <output_dir>/generations.jsonl
    backend: Literal["hf", "vllm"] = "hf"  # vllm when installed


@dataclass
class JudgeConfig:
    """`prefopt judge`: score candidates, then keep best/worst pairs (mode: pairs) or summarise (mode: eval)."""

    kind: Literal["rule", "llm", "rm"] = "rule"  # math answer check, OpenAI-compatible LLM, or reward model
    mode: Literal["pairs", "eval"] = "pairs"  # pairs: best/worst pairs; eval: share of 5 and 4-5 points
    input: str = ""  # generations JSONL written by `prefopt generate`
    output: Optional[str] = None  # default <output_dir>/pairs.jsonl (mode: pairs) or eval.json (mode: eval)
    chosen_from: Literal["policy_best", "reference"] = "policy_best"  # reference: the record's dataset solution
    rejected_from: Literal["policy_worst", "other"] = "policy_worst"  # other: worst of `other`'s candidates
    other: Optional[str] = None  # generations JSONL of another model, for rejected_from: other
    best_min_score: float = 4.0  # pairs mode also writes best.jsonl: each prompt's best candidate scoring >= this
    base_url: str = "https://api.openai.com/v1"  # llm: any OpenAI-compatible chat-completions endpoint
    model: str = "gpt-4o"  # llm: the judge model's name at that endpoint
    api_key_env: str = "OPENAI_API_KEY"  # llm: name of the environment variable holding the key (never logged)
    template: Optional[str] = None  # llm: rubric prompt file; default prefopt/judging/rubric.txt
    concurrency: int = 8  # llm: requests in flight
    timeout: float = 60.0  # llm: seconds per request
    max_retries: int = 5  # llm: per candidate, for 429/5xx/network errors and replies without `Score: N`
    cache: Optional[str] = None  # llm: verdict cache JSONL; default <output_dir>/judge_cache.jsonl
    rm_path: Optional[str] = None  # rm: a reward model directory written by `prefopt rm`
    batch_size: int = 16  # rm: sequences per forward


@dataclass
class RewardConfig:
    """What scores a PPO response: the same scorers as `prefopt judge`."""

    kind: Literal["rm", "rule", "llm"] = "rm"  # rm: a `prefopt rm` model; rule: math answer check; llm: judge.* endpoint
    path: Optional[str] = None  # rm: the model/ directory of a `prefopt rm` run (default judge.rm_path)
    partial_credit: float = 0.0  # rule: a wrong number scores 2 + c / (1 + |answer - reference|): near misses rank


@dataclass
class PPOConfig:
    """`prefopt ppo`: rollout sizes, sampling, KL penalty, GAE and clipping (prefopt/rl.py cites each)."""

    rollout_batch_size: int = 64  # prompts per update, one response each, over all ranks
    epochs: int = 4  # passes over each rollout; each pass is split into minibatches of micro_batch_size × grad_accum
    temperature: float = 0.7  # sampling temperature T; every log-prob uses logits / T
    max_new_tokens: int = 128  # response length cap; a response ends at its first EOS / end of turn
    missing_eos_penalty: float = 0.0  # subtracted from the score of a response that hit max_new_tokens
    kl_coef: float = 0.05  # β of the per-token reward r_t = -β·KL_t (the start value when kl_target is set)
    kl_estimator: Literal["k1", "k3"] = "k1"  # k1: log π - log π_ref; k3: (r - 1) - log r, r = π_ref / π
    kl_target: Optional[float] = None  # adaptive β (Ziegler et al.): target KL per response; None keeps β fixed
    kl_horizon: float = 10000.0  # adaptive β: horizon in samples
    gamma: float = 1.0  # GAE discount γ
    lam: float = 0.95  # GAE λ
    clip: float = 0.2  # policy ratio clip ε
    value_clip: float = 0.2  # value clip around the rollout's values
    critic_lr: Optional[float] = None  # critic AdamW learning rate (default optim.lr)
    critic_init: Literal["auto", "reward", "policy"] = "auto"  # auto: the reward model for reward.kind rm, else policy
    reward: RewardConfig = field(default_factory=RewardConfig)


@dataclass
class GRPOConfig:
    """`prefopt grpo`: group-relative RL on verifiable rewards (prefopt/group_rl.py cites each formula)."""

    group_size: int = 8  # G: responses sampled per prompt; advantages compare a response with its group
    rollout_prompts: int = 16  # prompts per update over all ranks; the rollout holds rollout_prompts × G responses
    epochs: int = 1  # μ: passes over each rollout (1: on-policy, the importance ratio stays 1)
    temperature: float = 1.0  # sampling temperature T; every log-prob uses logits / T
    top_p: float = 1.0  # nucleus sampling of the rollout
    max_new_tokens: int = 128  # response length cap; a response ends at its first EOS / end of turn
    advantage: Literal["grpo", "dr_grpo", "rloo"] = "grpo"  # (r-mean)/std, r-mean, or leave-one-out baseline
    loss_agg: Literal["token_mean", "seq_mean_token_sum", "seq_mean_token_mean"] = "token_mean"  # see docs/recipes.md
    clip_low: float = 0.2  # ε_low: the ratio's lower clip 1 - ε_low
    clip_high: float = 0.2  # ε_high: the upper clip 1 + ε_high (DAPO's clip-higher: 0.28)
    kl_coef: float = 0.0  # weight of the k3 KL to the reference in the loss (0, as in DAPO and Dr. GRPO)
    skip_equal_groups: bool = False  # leave groups whose rewards are all equal out of the update (DAPO, simple form)
    missing_eos_penalty: float = 0.0  # subtracted from the reward of a response that hit max_new_tokens
    sft_weight: float = 0.0  # λ: + λ·(-log π) on each response whose reward reaches sft_min_reward (0: pure RL)
    sft_min_reward: float = 4.0  # the reward that makes a response an SFT target (the rule judge's right answers)
    reward: RewardConfig = field(default_factory=lambda: RewardConfig(kind="rule"))  # rule, rm or llm


@dataclass
class Recipe:
    name: str = "recipe"  # names runs/<name>; defaults to the recipe file's path below recipes/
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
