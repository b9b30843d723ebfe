"""Keep the sections of an earlier generated page that a partial run did not make again (select_report.py --keep).

A page section is its "## " heading, a blank line, a one-line description, a blank line and its body; the kept body
is marked as kept, and the page's "- **family**: run (value); then ..." ranking bullets are read back, so that one
part of a search can be run again without running the others.
"""

from __future__ import annotations

import re

KEPT = "_Kept from the page this run updated (`select_report.py --keep`): not run this time._"


def kept_section(page: list[str], heading: str) -> list[str] | None:
    """An earlier page's section after its heading and one-line description (None where it has no run of it)."""
    if heading not in page:
        return None
    start = page.index(heading) + 4  # heading, blank, description, blank
    end = next((i for i in range(start, len(page)) if page[i].startswith("## ")), len(page))
    body = page[start:end]
    if body[:1] == [KEPT]:  # kept once already: the marker is added again by part()
        body = body[2:]
    body = "\n".join(body).rstrip().splitlines()
    return None if not body or body[0].startswith("Not in this run") else body


def kept_rankings(page: list[str], ends: dict[str, list[tuple[float, str]]]) -> None:
    """Add an earlier page's ranked runs (each family's best three) not run this time to ends, to rank over both."""
    names = {name for runs in ends.values() for _, name in runs}
    for found in filter(None, (re.match(r"- \*\*(.+?)\*\*: (.*)\.$", line) for line in page)):
        family = found[1].removesuffix(": the bar (not a candidate)")
        for item in re.split(r"; (?:then )?", found[2]):
            run = re.match(r"(.*) \((\d+\.\d+)\)$", item)
            if family in ends and run and run[1] not in names:
                ends[family].append((float(run[2]), run[1]))
