"""The one exception type the CLI turns into a clear message and a non-zero exit."""


class ReidReproError(Exception):
    """Bad input or configuration. The message names the path or key and what was expected."""
