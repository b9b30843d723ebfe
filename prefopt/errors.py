"""User-facing errors: one line (or a short block) saying what, where, and what to do."""


class UserError(Exception):
    """A mistake in the user's input (recipe, data, flags); the CLI prints it and exits 2."""

    exit_code = 2
