"""User-facing errors: the app prints their message as one line and exits non-zero."""

import argparse
import sys
from typing import NoReturn


class HarnessError(Exception):
    """Base class: bad input the user can fix. The message says what was wrong and what is valid."""


class ConfigError(HarnessError):
    """A config value is missing, of the wrong type or out of range."""


class DataError(HarnessError):
    """A data file is missing or malformed."""


class ModelLoadError(HarnessError):
    """A model could not be loaded (no network, bad path, unknown architecture)."""


def did_you_mean(name: str, valid: list[str]) -> str:
    """' (did you mean 'x'?)' when a valid name is close to `name`, else ''."""
    import difflib

    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def warn(message: str) -> None:
    """One warning line on stderr: something was wrong but the run recovers (e.g. a bad cache file
    is recomputed)."""
    print(f"warning: {message}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose bad options end in one `error:` line, exit 2 (argparse's default
    prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)
