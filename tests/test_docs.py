"""The docs hold together: every relative link in README.md and docs/*.md resolves (anchors included), and every
recipe they name exists."""

import re

import pytest

from .conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
RECIPE = re.compile(r"(?<![\w/.-])(recipes/[\w./-]+\.yaml)")


def anchors(page) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_anchor_rule():
    """The rule matches GitHub's on this repository's own headings (a check that the checker can fail)."""
    page = ROOT / "docs" / "recipes.md"
    assert {"ppo-prefopt-ppo", "grpo-prefopt-grpo", "names-worth-knowing"} <= anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_recipes_exist(page):
    named = set(RECIPE.findall(page.read_text()))
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, f"{page.name} names recipes that do not exist: {missing}"
