"""LoRA through peft: wrap a loaded model, run it as the reference with its adapters off, and export it.

The reference of a LoRA run is the policy itself with its adapters disabled, so the base weights exist once. Only
the adapters (and, for a reward model, its score head) require gradients, so the optimizer holds nothing else and
checkpoints skip the frozen base (prefopt/engine.py). A finished run saves `adapter/` (loadable with
`peft.PeftModel.from_pretrained`) and a merged `model/` that loads with plain transformers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from prefopt import rundir
from prefopt.errors import UserError
from prefopt.fsutil import replace_dir
from prefopt.schema import Recipe


def enabled(recipe: Recipe) -> bool:
    """Whether the recipe trains LoRA adapters (`lora.rank` > 0) rather than every weight."""
    return recipe.lora.rank > 0


def is_lora(model) -> bool:
    """Whether `model` is a peft model (so its adapters can be switched off)."""
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def base_model(model):
    """The transformers model under a peft wrapper (its LoRA layers are injected in place, so they still run)."""
    return model.get_base_model() if is_lora(model) else model


def peft_config(recipe: Recipe, head: str):
    """peft's LoraConfig for the recipe; a score model (`rm`, PPO's critic) also trains its new head."""
    from peft import LoraConfig

    lo = recipe.lora
    targets = "all-linear" if list(lo.target_modules) == ["all-linear"] else list(lo.target_modules)
    return LoraConfig(r=lo.rank, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=targets,
                      task_type="SEQ_CLS" if head == "score" else "CAUSAL_LM")


def wrap(model, recipe: Recipe, head: str):
    """`model` with fresh adapters (B = 0, so it starts equal to the base) and every base weight frozen."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config(recipe, head))
    except ValueError as e:  # e.g. a target module name the model does not have
        raise UserError(f"lora.target_modules: {str(e).splitlines()[0][:300]}") from None


def summary(model) -> str:
    """One line for the run's start: how many parameters train (ZeRO-3 shards counted at full size)."""
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    total, trainable = sum(n for n, _ in sizes), sum(n for n, grad in sizes if grad)
    return (f"lora: {trainable:,} of {total:,} parameters train ({100 * trainable / max(total, 1):.2f} %); "
            "the reference is the base with the adapters off")


@contextlib.contextmanager
def as_reference(model):
    """`model` computing as the reference: a LoRA policy with its adapters and dropout off; any other model as is."""
    if not is_lora(model):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        with model.disable_adapter():
            yield model
    finally:
        model.train(was_training)


def export(state: dict, module, tokenizer, load_base, run_dir: Path) -> None:
    """Write `run_dir/adapter` (peft) and `run_dir/model` (the adapters merged into the base), each atomically.

    `state` is the full state dict of the trained peft model (gathered from ZeRO-3). The merge loads the base on
    the CPU (`load_base()`: models.load_merge_base) and uses peft's own `merge_and_unload`, so the merged weights are
    what peft itself would produce.
    """
    from peft import PeftModel

    adapter = replace_dir(run_dir / rundir.ADAPTER, lambda tmp: (module.save_pretrained(tmp, state_dict=state),
                                                             tokenizer.save_pretrained(tmp)))
    merged = PeftModel.from_pretrained(load_base(), adapter).merge_and_unload()
    replace_dir(run_dir / rundir.MODEL, lambda tmp: (merged.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))

