"""What each command trains: data kind, model head, whether a reference is needed, and which loss.

This table is the only place that decides these things; the loop and the metrics read its fields and never
compare loss names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from torch import Tensor

from prefopt import losses
from prefopt.errors import UserError
from prefopt.schema import LossConfig, Recipe


@dataclass
class Terms:
    """Per-example quantities of one batch: log-probs (sums over response tokens) or rewards, and lengths.

    Unpaired feedback (KTO) puts each row's completion in `chosen`, its desirability in `labels`, and the
    mismatched rows of the KL estimate in `kl`; ODPO's per-pair score differences ride in `score_margin`.
    """

    chosen: Tensor
    rejected: Optional[Tensor] = None
    chosen_tokens: Optional[Tensor] = None
    rejected_tokens: Optional[Tensor] = None
    labels: Optional[Tensor] = None  # KTO: True where the completion is desirable
    kl: Optional[Tensor] = None  # KTO: log π of each prompt with another row's completion
    score_margin: Optional[Tensor] = None  # ODPO: score(y_w) - score(y_l) per pair

    def reduced(self, how: str) -> tuple[Tensor, Tensor]:
        """(chosen, rejected) as sums, or per-token means when `loss.logps: mean`."""
        if how == "mean":
            return self.chosen / self.chosen_tokens.clamp(min=1), self.rejected / self.rejected_tokens.clamp(min=1)
        return self.chosen, self.rejected


def _nll(policy: Terms) -> Tensor:
    return losses.sft(policy.chosen, policy.chosen_tokens)


def _dpo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.dpo_sft(chosen, rejected, ref_chosen, ref_rejected, _nll(policy), config.beta_chosen,
                          config.beta_rejected, config.sft_weight, config.label_smoothing)


def _ipo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.ipo(chosen, rejected, ref_chosen, ref_rejected, config.beta)


def _slic(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    chosen, rejected = policy.reduced(config.logps)
    return losses.slic(chosen, rejected, _nll(policy), config.delta, config.sft_weight)


def _sft(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    return _nll(policy)


def _rm(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    return losses.bradley_terry(policy.chosen, policy.rejected, config.center_weight)


def _rdpo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.rdpo(chosen, rejected, ref_chosen, ref_rejected, config.beta, config.label_smoothing)


def _nca(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.nca_pair(chosen, rejected, ref_chosen, ref_rejected, config.beta)


def _apo_zero(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.apo_zero(chosen, rejected, ref_chosen, ref_rejected, config.beta)


def _simpo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    return losses.simpo(policy.chosen, policy.rejected, policy.chosen_tokens, policy.rejected_tokens, config.beta,
                        config.margin)


def _orpo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    return losses.orpo(policy.chosen, policy.rejected, policy.chosen_tokens, policy.rejected_tokens, config.beta)


NEEDS_SCORES = ("loss.variant: odpo needs numeric `score_chosen` and `score_rejected` in every pair of data.train and "
                "data.eval (`prefopt judge` writes them, UltraFeedback has them; other names: data.fields.*)")


def _odpo(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    if policy.score_margin is None:
        raise UserError(NEEDS_SCORES)
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.odpo(chosen, rejected, ref_chosen, ref_rejected, policy.score_margin, config.beta, config.offset_scale)


def _dpop(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return losses.dpop(chosen, rejected, ref_chosen, ref_rejected, config.beta, config.dpop_lambda)


def _kto(policy: Terms, reference: Terms, config: LossConfig) -> Tensor:
    return losses.kto(policy.chosen, reference.chosen, policy.kl, reference.kl, policy.labels, config.beta,
                      config.desirable_weight, config.undesirable_weight)


def _length_normalised_rewards(policy: Terms, reference: Terms, config: LossConfig) -> tuple[Tensor, Tensor]:
    """SimPO's implicit reward β·mean log π; ORPO's log odds have the same ordering, so one function serves both."""
    return (config.beta * policy.chosen / policy.chosen_tokens.clamp(min=1),
            config.beta * policy.rejected / policy.rejected_tokens.clamp(min=1))


def _own_logps(policy: Terms, reference: Terms, config: LossConfig) -> tuple[Tensor, Tensor]:
    """No reference (SLiC): the policy's own (reduced) log-probs are the rewards."""
    return policy.reduced(config.logps)


def _scores(policy: Terms, reference: Terms, config: LossConfig) -> tuple[Tensor, Tensor]:
    """A reward model's scores of chosen and rejected are its rewards."""
    return policy.chosen, policy.rejected


def _implicit_rewards(policy: Terms, reference: Terms, config: LossConfig) -> tuple[Tensor, Tensor]:
    (chosen, rejected), (ref_chosen, ref_rejected) = policy.reduced(config.logps), reference.reduced(config.logps)
    return config.beta_chosen * (chosen - ref_chosen), config.beta_rejected * (rejected - ref_rejected)


@dataclass(frozen=True)
class Objective:
    """A training objective: one entry per training command, and the command is its only home.

    `step` names what one loop step does (`pair`: one batch of offline data; `ppo`, `grpo`: a rollout, then
    updates; prefopt/loop.py maps the name to its class, so this module imports nothing above it); the loop owns
    the rest. `eval_as` names the objective whose metrics the eval set gets (PPO and GRPO are evaluated on
    preference pairs exactly like DPO, so all three plot on the same axes).
    """

    name: str
    data_kind: str  # "preference" (triples), "sft" (prompt, completion), "unpaired" (kto) or "prompt" (ppo, grpo)
    head: str  # "lm": per-token log-probs; "score": a scalar reward per sequence
    needs_reference: bool
    loss: Optional[Callable[[Terms, Optional[Terms], LossConfig], Tensor]]  # per-example losses (offline data)
    rewards: Optional[Callable[[Terms, Optional[Terms], LossConfig], tuple[Tensor, Tensor]]]
    step: str = "pair"
    eval_as: Optional["Objective"] = None
    needs_scores: bool = False  # every pair must carry judge scores (ODPO's offset)
    rules: Sequence[Callable[["Objective", Recipe], None]] = ()  # its own rules, beside everyone's (RULES)

    def check(self, recipe: Recipe) -> None:
        """Every rule about which settings combine with this objective, in one place; raises UserError naming the
        key. Runs before any model loads (the CLI runs it for --dry-run too)."""
        for rule in (*RULES, *self.rules):
            rule(self, recipe)

    @property
    def pairwise(self) -> bool:
        return self.data_kind == "preference"

    @property
    def has_logps(self) -> bool:
        """Whether the model gives log-probs of responses (so the 3D metrics apply)."""
        return self.head == "lm"

    @property
    def evaluated_as(self) -> "Objective":
        return self.eval_as or self


def _token_budget(objective: Objective, recipe: Recipe) -> None:
    if recipe.train.max_tokens_per_batch and objective.data_kind in ("unpaired", "prompt"):
        raise UserError(f"train.max_tokens_per_batch: not for `prefopt {objective.name}` ("
                        + ("its KL rows pair each prompt with another completion of the same micro-batch, so "
                           "the loss would depend on how a step is cut" if objective.data_kind == "unpaired" else
                           "rollout minibatches are train.micro_batch_size responses") + "); set it to 0")


def _precomputed_reference(objective: Objective, recipe: Recipe) -> None:
    if not recipe.train.precompute_ref:
        return
    if objective.data_kind == "unpaired":
        raise UserError("train.precompute_ref: kto's KL rows pair each prompt with another row's completion, "
                        "which depends on the batch; they cannot be precomputed")
    if objective.data_kind == "prompt":
        raise UserError(f"train.precompute_ref: {objective.name} cannot precompute reference log-probs (its "
                        "responses are new every update); set it to false")


def _toy_model(objective: Objective, recipe: Recipe) -> None:
    if recipe.model.kind != "toy_mlp":
        return
    if objective.head != "lm":
        raise UserError("model.kind: toy_mlp has no reward-model head; use it with dpo, ipo, slic or sft")
    if objective.data_kind == "prompt":
        raise UserError(f"model.kind: toy_mlp cannot sample responses; {objective.name} needs a causal LM "
                        "(model.path)")


RULES = (_token_budget, _precomputed_reference, _toy_model)  # for every objective


def _rollouts(objective: Objective, recipe: Recipe) -> None:
    """The RL objectives: old and new log-probs must come from one function; an rm reward (and PPO's critic, which
    starts from it) needs its model."""
    if recipe.lora.rank and recipe.lora.dropout:
        raise UserError(f"lora.dropout: {recipe.lora.dropout}, but {objective.name} needs 0: its old and new "
                        "log-probs must come from the same function (the models' own dropout is off for that reason)")
    reward = getattr(recipe, objective.step).reward  # the objective's own section: ppo.reward, grpo.reward
    if reward.kind == "rm" and not (reward.path or recipe.judge.rm_path):
        raise UserError(f"{objective.step}.reward.path: required for {objective.step}.reward.kind: rm (the model/ dir "
                        "of a `prefopt rm` run)")


_DPO = Objective("dpo", "preference", "lm", True, _dpo, _implicit_rewards)
# `prefopt dpo --set loss.variant=NAME`: the preference losses users bring from TRL and LLaMA-Factory.
VARIANTS = {
    "dpo": _DPO,
    "rdpo": Objective("rdpo", "preference", "lm", True, _rdpo, _implicit_rewards),
    "nca": Objective("nca", "preference", "lm", True, _nca, _implicit_rewards),
    "apo_zero": Objective("apo_zero", "preference", "lm", True, _apo_zero, _implicit_rewards),
    "simpo": Objective("simpo", "preference", "lm", False, _simpo, _length_normalised_rewards),
    "orpo": Objective("orpo", "preference", "lm", False, _orpo, _length_normalised_rewards),
    "odpo": Objective("odpo", "preference", "lm", True, _odpo, _implicit_rewards, needs_scores=True),
    "dpop": Objective("dpop", "preference", "lm", True, _dpop, _implicit_rewards),
}
OBJECTIVES = {
    "sft": Objective("sft", "sft", "lm", False, _sft, None),
    "dpo": _DPO,
    "ipo": Objective("ipo", "preference", "lm", True, _ipo, _implicit_rewards),
    "slic": Objective("slic", "preference", "lm", False, _slic, _own_logps),
    "rm": Objective("rm", "preference", "score", False, _rm, _scores),
    "kto": Objective("kto", "unpaired", "lm", True, _kto, None),
    "ppo": Objective("ppo", "prompt", "lm", True, None, None, step="ppo", eval_as=_DPO, rules=(_rollouts,)),
    "grpo": Objective("grpo", "prompt", "lm", True, None, None, step="grpo", eval_as=_DPO, rules=(_rollouts,)),
}


def objective_for(command: str, loss: LossConfig) -> Objective:
    """What a training command trains: `prefopt dpo` takes `loss.variant`; every other command is one objective."""
    if command == "dpo":
        return VARIANTS[loss.variant]
    if loss.variant != "dpo":
        raise UserError(f"loss.variant: `{loss.variant}` is a variant of `prefopt dpo`, not of `prefopt {command}`")
    return OBJECTIVES[command]


def resolve_betas(loss: LossConfig) -> LossConfig:
    """Fill flex-β defaults: β⁺ and β⁻ fall back to `loss.beta`."""
    if loss.beta_chosen is None:
        loss.beta_chosen = loss.beta
    if loss.beta_rejected is None:
        loss.beta_rejected = loss.beta
    return loss
