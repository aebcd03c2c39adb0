"""Command-line value types and the one place a user's error becomes one line.

Shared by every command of every layer (``python -m system.local``, ``chat-harness``):
a value a user can get wrong is refused by argparse with what was expected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0 for any free one), got {text}")
    return value


def file_in_existing_directory(text: str) -> Path:
    """A file to write: its directory must exist already (caught before a long run, not
    after it)."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path.parent} is not a directory; give a path in an "
                                         f"existing one")
    return path


def user_errors_as_one_line(command: str, run: Callable[[], int],
                            errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command; an error its user can cause (a bad file, a port in use, a bad value)
    is printed as one line and exits 2, instead of a traceback."""
    try:
        return run()
    except (ValueError, OSError, *errors) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
