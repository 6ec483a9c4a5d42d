# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The sub-commands of `srdiff`, one module each with `register(parser)` and `run(args) -> int`, and the one
exit-code convention they share: a user mistake is one `PROG: error: MESSAGE` line on stderr and exit status 2 (as
argparse's own usage errors), anything else keeps its traceback."""

import argparse
import sys
from typing import Any, Callable, List, Optional

# What the code raises on purpose for a wrong argument, folder, file or image (and what the file system raises),
# the non-finite guard's advice on diverged weights and the pipeline's memory check.
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, MemoryError)
USER_ERROR_STATUS = 2


def run_reporting_user_errors(prog: str, call: Callable[[], Any]) -> int:
    """
    Runs `call()` for a command line: a user mistake (`USER_ERRORS`) becomes one line `PROG: error: MESSAGE` on
    stderr and exit status 2 instead of a traceback. Returns `call()`'s status when it is an int, else 0.
    """
    try:
        status = call()
    except USER_ERRORS as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS
    return status if isinstance(status, int) else 0


def command_line(
    register: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    argv: Optional[List[str]],
    prog: Optional[str],
    description: str,
) -> int:
    """A sub-command as a program of its own (`examples/train_srdiff.py`)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    register(parser)
    args = parser.parse_args(argv)
    return run_reporting_user_errors(parser.prog, lambda: run(args))
