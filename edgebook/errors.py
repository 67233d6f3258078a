"""The exception hierarchy: every user-facing error is an EdgebookError with one clear message."""


class EdgebookError(Exception):
    """An error the user can act on; the CLI prints its message, never a traceback."""


class ConfigError(EdgebookError):
    """A parameters file or a parameter value is wrong."""
