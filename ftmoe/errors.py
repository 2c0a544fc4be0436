"""One way for every command to turn an expected error into a message and exit code 1."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

Command = Callable[[argparse.Namespace], int]


def reports(*expected: type[BaseException]) -> Callable[[Command], Command]:
    """Print ``error: <message>`` for the expected exception types and return 1; anything
    else is a bug and keeps its traceback."""

    def wrap(fn: Command) -> Command:
        @functools.wraps(fn)
        def wrapped(args: argparse.Namespace) -> int:
            try:
                return int(fn(args) or 0)
            except expected as err:
                print(f"error: {err}", file=sys.stderr)
                return 1

        return wrapped

    return wrap
