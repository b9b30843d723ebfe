"""`prefopt <command> --help` ends with a runnable example, for every command."""

import re

import pytest
import yaml
from typer.testing import CliRunner

from prefopt.cli import EXAMPLES, TRAINERS, app

from .conftest import ROOT

COMMANDS = sorted(EXAMPLES)


def test_every_command_has_an_example():
    names = {command.name for command in app.registered_commands}
    assert names == set(EXAMPLES), "each command needs one example in prefopt.cli.EXAMPLES"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_ends_with_its_example(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    last = [line.strip(" │") for line in result.output.splitlines() if line.strip(" │")][-1]
    assert last == f"Example: {EXAMPLES[command]}"
    for recipe in re.findall(r"recipes/\S+\.yaml", last):
        assert (ROOT / recipe).is_file(), recipe


@pytest.mark.parametrize("command", sorted(set(TRAINERS) | {"generate", "judge"}))
def test_example_recipe_resolves(command):
    """The example's recipe and overrides pass validation (a dry run), so the example is runnable as printed."""
    args = EXAMPLES[command].split()[1:] + ["--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert set(resolved) >= {"name", "model", "data", "train"}, "not a resolved recipe"
