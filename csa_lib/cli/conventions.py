"""What every command line (train, evaluate, demo, inpaint) shares: help with defaults, one-line errors and warnings.

A user error (a missing folder, a bad value, an unreadable file, no VGG weights offline) prints one
line, `<prog>: error: <what and how to fix it>`, on stderr and exits with status 2, as argparse does
for a bad flag; `--debug` shows the full traceback instead. Anything else is a bug and keeps its
traceback. A warning (`warnings.warn` anywhere in the library) prints as one line too,
`<prog>: warning: <message>`, without Python's file path and category; `--debug` shows Python's own
format. Library callers get ordinary warnings: only `run_cli` changes how they are shown.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, NoReturn

USAGE_ERROR = 2

USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, ImportError)
"""Exceptions that mean "the input or the setup is wrong" (FileNotFoundError is an OSError)."""


class UserError(ValueError):
    """An error whose message already says what to change; shown as one line by `run_cli`."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every default as "(default: ...)", unless the help text already says it in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or "default:" in text or action.required:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (no usage block) and which has `--debug`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the full traceback of an error (and warnings in Python's own format)")

    def error(self, message: str) -> NoReturn:
        """Print `<prog>: error: <message> (see --help)` and exit 2."""
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def device(text: str) -> str:
    """argparse type of `--device`: a torch device that exists here (cpu, cuda, cuda:1, mps)."""
    import torch  # here, not at the top: `--help` and flag errors should not wait for torch to import

    try:
        dev = torch.device(text)
    except RuntimeError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda or cuda:N") from error
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA is not available on this machine: use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"there is no {text} (this machine has {torch.cuda.device_count()} GPUs)")
    return text


def one_line(error: BaseException) -> str:
    """The error's message on one line (whitespace runs and newlines become single spaces)."""
    text = " ".join(str(error).split())
    if isinstance(error, (UserError, ValueError, FileNotFoundError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def plain_warnings(prog: str) -> Callable[..., str]:
    """A `warnings.formatwarning` that gives `<prog>: warning: <message>` as one line (no path, no category)."""
    def one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                         line: str | None = None) -> str:
        return f"{prog}: warning: {' '.join(str(message).split())}\n"
    return one_line_warning


def run_cli(prog: str, debug: bool, body: Callable[[], int]) -> int:
    """Run `body()`; a user error becomes one line on stderr and status 2 (re-raised with `debug`); warnings one line.

    Only the text of a shown warning changes (`warnings.formatwarning`, restored afterwards): the
    warnings themselves, their filters and anything recording them stay as they are.
    """
    default_format = warnings.formatwarning
    if not debug:
        warnings.formatwarning = plain_warnings(prog)
    try:
        return body()
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = default_format
