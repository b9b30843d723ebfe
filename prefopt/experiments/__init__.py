"""The experiment harness behind docs/paper.md and docs/toy.md: prefopt's own runs, tables and figures.

It uses the library as a user would (recipes, `prefopt.api`, run directories); nothing in the library imports it.
Paths are resolved from the repository (REPO), so the scripts run from any working directory.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
