"""Print the Markdown table of every recipe key (type, default, meaning, which commands read it) from prefopt/schema.py.

docs/recipes.md embeds its output between the `<!-- keys -->` markers: `python scripts/recipe_keys.py --write`;
tests/test_recipe.py fails when the committed table differs from what this prints.
"""

import dataclasses
import re
import sys
import typing
from pathlib import Path

from prefopt import schema
from prefopt.recipe import all_keys

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = "sft, dpo, ipo, slic, kto, rm, ppo, grpo"
# Which commands read a key: the first prefix that matches wins (section-wide unless a key is named).
READERS = [
    ("name", "all"),
    ("model.ref_path", TRAINERS),
    ("model.gradient_checkpointing", TRAINERS),
    ("model.toy.", TRAINERS),
    ("model.", "all"),
    ("train.output_dir", "all"),
    ("train.seed", "all"),
    ("log.console", "all"),
    ("data.train", f"{TRAINERS}, generate"),
    ("data.fields", f"{TRAINERS}, generate"),
    ("data.on_bad_row", f"{TRAINERS}, generate"),
    ("loss.", "sft, dpo, ipo, slic, kto, rm; ppo and grpo score `data.eval` pairs with `loss.beta`"),
    ("generate.", "generate"),
    ("judge.", "judge; ppo and grpo with an llm reward; `eval.prompts` (judge.kind)"),
    ("ppo.", "ppo"),
    ("grpo.", "grpo"),
    ("", TRAINERS),
]


def readers(key: str) -> str:
    """The commands that read `key` (READERS' first matching prefix)."""
    return next(names for prefix, names in READERS if key == prefix or key.startswith(prefix) and
                (prefix.endswith(".") or prefix == ""))


def comments() -> dict[tuple[str, str], str]:
    out, cls = {}, None
    for line in (ROOT / "prefopt" / "schema.py").read_text().splitlines():
        if m := re.match(r"class (\w+)", line):
            cls = m.group(1)
        elif m := re.match(r"    (\w+): .*?#\s*(.*)$", line):
            out[(cls, m.group(1))] = m.group(2)
    return out


def table() -> str:
    """The Markdown table of every leaf key."""
    notes = comments()
    rows = ["| key | type | default | meaning | read by |", "|---|---|---|---|---|"]
    for key in all_keys():
        cls, obj = schema.Recipe, schema.Recipe()
        for part in key.split("."):
            owner = cls
            tp = typing.get_type_hints(cls)[part]
            obj = getattr(obj, part)
            cls = tp if dataclasses.is_dataclass(tp) else cls
        if dataclasses.is_dataclass(tp):
            continue
        name = str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")
        rows.append(f"| `{key}` | {name} | `{obj!r}` | {notes.get((owner.__name__, part), '')} | {readers(key)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--write" in sys.argv:
        doc = ROOT / "docs" / "recipes.md"
        head, _, rest = doc.read_text().partition("<!-- keys -->")
        _, _, tail = rest.partition("<!-- /keys -->")
        doc.write_text(f"{head}<!-- keys -->\n{table()}\n<!-- /keys -->{tail}")
    else:
        print(table())
