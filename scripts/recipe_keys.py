"""Print the Markdown table of every recipe key (type, default, comment), read from prefopt/schema.py.

docs/recipes.md embeds its output between the `<!-- keys -->` markers: `python scripts/recipe_keys.py --write`.
"""

import dataclasses
import re
import sys
import typing
from pathlib import Path

from prefopt import schema
from prefopt.recipe import all_keys

ROOT = Path(__file__).resolve().parents[1]


def comments() -> dict[tuple[str, str], str]:
    out, cls = {}, None
    for line in (ROOT / "prefopt" / "schema.py").read_text().splitlines():
        if m := re.match(r"class (\w+)", line):
            cls = m.group(1)
        elif m := re.match(r"    (\w+): .*?#\s*(.*)$", line):
            out[(cls, m.group(1))] = m.group(2)
    return out


def table() -> str:
    notes, rows = comments(), ["| key | type | default | meaning |", "|---|---|---|---|"]
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
        rows.append(f"| `{key}` | {name} | `{obj!r}` | {notes.get((owner.__name__, part), '')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--write" in sys.argv:
        doc = ROOT / "docs" / "recipes.md"
        head, _, rest = doc.read_text().partition("<!-- keys -->")
        _, _, tail = rest.partition("<!-- /keys -->")
        doc.write_text(f"{head}<!-- keys -->\n{table()}\n<!-- /keys -->{tail}")
    else:
        print(table())
