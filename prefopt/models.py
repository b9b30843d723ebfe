"""Load the policy, reference, reward model and tokenizer named by a recipe (HF dir or hub id, or the toy)."""

from __future__ import annotations

import copy

import torch

from prefopt import lora, toy
from prefopt.engine import build_frozen, ds_config, partitioned
from prefopt.errors import UserError
from prefopt.schema import Recipe

_keep_alive = []  # HfDeepSpeedConfig must outlive from_pretrained for zero.Init to shard at load time


def load_tokenizer(recipe: Recipe):
    """The tokenizer (pad token falls back to EOS), or the toy's word-level one."""
    if recipe.model.kind == "toy_mlp":
        return toy.tokenizer()
    from transformers import AutoTokenizer

    if not (recipe.model.tokenizer or recipe.model.path):
        raise UserError("model.path: required (a local HF model directory or a hub id)")
    name = recipe.model.tokenizer or recipe.model.path
    try:
        tok = _generic_fast(name) or AutoTokenizer.from_pretrained(name, trust_remote_code=recipe.model.trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"model.tokenizer: cannot load tokenizer `{name}` ({str(e).splitlines()[0][:200]})") from None
    if tok.pad_token_id is None:
        if tok.eos_token_id is None:
            raise UserError(f"model.tokenizer: `{name}` has neither a pad nor an EOS token")
        tok.pad_token = tok.eos_token
    return tok


def _generic_fast(name: str):
    """A local tokenizer saved as a generic fast tokenizer, loaded as exactly that.

    transformers 5's AutoTokenizer picks the tokenizer class from the *model* config (e.g. Qwen2Tokenizer) and
    rebuilds it from vocab/merges, which silently drops a custom tokenizer.json (a WordLevel model tokenized every
    text to nothing). When tokenizer_config.json names the generic class, load tokenizer.json as it is.
    """
    import json
    from pathlib import Path

    cfg = Path(name) / "tokenizer_config.json"
    if not cfg.is_file() or not (Path(name) / "tokenizer.json").is_file():
        return None
    if json.loads(cfg.read_text()).get("tokenizer_class") not in ("TokenizersBackend", "PreTrainedTokenizerFast"):
        return None
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(name)


def _zero3_init(recipe: Recipe, world: int):
    """Make from_pretrained shard at load time under ZeRO-3, and never otherwise (the setting is global)."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    _keep_alive.clear()
    unset_hf_deepspeed_config()
    if recipe.deepspeed.stage == 3:
        from transformers.integrations import HfDeepSpeedConfig

        _keep_alive.append(HfDeepSpeedConfig(ds_config(recipe, world)))


def attn_implementation(recipe: Recipe) -> str | None:
    """`model.attn_implementation`, else prefopt's variable-length attention (SDPA for padded batches; what packed
    batches need), except for remote code, whose attention may not go through transformers' registry."""
    m = recipe.model
    if m.attn_implementation or m.trust_remote_code:
        return m.attn_implementation
    from prefopt import attention

    return attention.register()


def _load(auto_cls, path: str, recipe: Recipe, world: int, where: str = "model.path", **kw):
    _zero3_init(recipe, world)
    m = recipe.model
    impl = attn_implementation(recipe)
    extra = {"attn_implementation": impl} if impl else {}
    try:
        return auto_cls.from_pretrained(path, trust_remote_code=m.trust_remote_code,
                                        dtype=torch.float32, **extra, **kw)
    except (OSError, ValueError) as e:  # a missing directory, or a name that is no valid hub id
        raise UserError(f"{where}: cannot load `{path}` ({str(e).splitlines()[0][:200]})") from None


def load_policy(recipe: Recipe, head: str, world: int, seed: int):
    """The trainable model: a causal LM, a sequence-score model (rm), or the pretrained toy MLP; with `lora:`, the
    model under fresh adapters (only they train)."""
    m = recipe.model
    _zero3_init(recipe, world)
    if m.kind == "toy_mlp":  # an lm head: Objective.check refuses the others
        return toy.build_toy(m.toy.scenario, m.toy.hidden, m.toy.pretrain_steps, m.toy.pretrain_lr, seed)
    if head == "score":
        from transformers import AutoModelForSequenceClassification

        model = _with_pad_id(_load(AutoModelForSequenceClassification, m.path, recipe, world, num_labels=1), recipe)
    else:
        from transformers import AutoModelForCausalLM

        model = _load(AutoModelForCausalLM, m.path, recipe, world)
    model = _ready_to_train(model, recipe)
    return lora.wrap(model, recipe, head) if lora.enabled(recipe) else model


def _with_pad_id(model, recipe: Recipe):
    """A score head finds each row's last token through config.pad_token_id (transformers): fill it from the
    tokenizer when the checkpoint has none."""
    if model.config.pad_token_id is None:
        model.config.pad_token_id = load_tokenizer(recipe).pad_token_id
    return model


def load_merge_base(recipe: Recipe, head: str):
    """The weights of model.path on this process's CPU in fp32, outside ZeRO-3 (rank 0 alone loads it): what a LoRA
    run's adapters merge into (lora.export)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # no ZeRO-3 sharding at load time
    cls, kw = (AutoModelForSequenceClassification, {"num_labels": 1}) if head == "score" else (AutoModelForCausalLM, {})
    base = cls.from_pretrained(recipe.model.path, dtype=torch.float32, trust_remote_code=recipe.model.trust_remote_code,
                               **kw)
    return _with_pad_id(base, recipe) if head == "score" else base


def _ready_to_train(model, recipe: Recipe):
    """A loaded transformers model, ready to train: its own dropout off, checkpointed layers when the recipe asks,
    in training mode.

    Dropout stays off because a preference loss compares two passes of one function (policy and reference, or PPO's
    old and new log-probs); with it, the loss at step 0 would be noise rather than zero (TRL disables it too).
    Training mode matters anyway: models load in eval mode, and transformers checkpoints layers only in training
    mode, so until 2026-11-24 `model.gradient_checkpointing: true` (and `lora.dropout`) silently did nothing.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):  # transformers' attention layers
            module.attention_dropout = 0.0
    if recipe.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model.train()


def reference_path(recipe: Recipe) -> str | None:
    """Where the reference's weights come from (`model.ref_path`, else `model.path`); None for the toy."""
    return (recipe.model.ref_path or recipe.model.path) if recipe.model.kind != "toy_mlp" else None


def load_reference(recipe: Recipe, policy, world: int):
    """A frozen copy of the starting policy (or `model.ref_path`)."""
    m = recipe.model
    if m.kind == "toy_mlp" or (not m.ref_path and recipe.deepspeed.stage != 3):
        return copy.deepcopy(policy)  # same weights as the policy before any step
    from transformers import AutoModelForCausalLM

    return _load(AutoModelForCausalLM, m.ref_path or m.path, recipe, world)


def load_reward(recipe: Recipe, world: int):
    """The frozen reward model of `judge.rm_path` (a `prefopt rm` output), sharded like the reference under ZeRO-3."""
    from transformers import AutoModelForSequenceClassification

    path = recipe.judge.rm_path  # set: Objective.check requires it
    return build_frozen(_load(AutoModelForSequenceClassification, path, recipe, world, num_labels=1,
                              where="ppo.reward.path"), recipe, world)


def load_critic(recipe: Recipe, world: int):
    """PPO's value model: the reward model (`ppo.critic_init: reward`, the default with an rm reward), or the policy's
    weights under a fresh scalar head (`policy`), zero-initialised so that V = 0 at the start whatever the ZeRO
    stage (under zero.Init a new layer gets no usual initialisation). Both give a value per position via `score`."""
    from transformers import AutoModelForSequenceClassification

    p = recipe.ppo
    from_reward = p.critic_init == "reward" or p.critic_init == "auto" and p.reward.kind == "rm"
    path, where = (p.reward.path or recipe.judge.rm_path, "ppo.reward.path") if from_reward else (recipe.model.path,
                                                                                                 "model.path")
    critic = _load(AutoModelForSequenceClassification, path, recipe, world, num_labels=1, where=where)
    if not from_reward:
        _zero_init(critic.score.weight)
    critic = _ready_to_train(_with_pad_id(critic, recipe), recipe)
    return lora.wrap(critic, recipe, "score") if lora.enabled(recipe) else critic


def _zero_init(param) -> None:
    """Set a (possibly ZeRO-3-partitioned) parameter to zero on every rank."""
    import contextlib

    import deepspeed

    gathered = deepspeed.zero.GatheredParameters([param], modifier_rank=0) if partitioned([param]) else \
        contextlib.nullcontext()
    with gathered, torch.no_grad():
        param.zero_()
