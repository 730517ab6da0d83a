"""The evaluation command line: `python -m csa_lib.cli.evaluate --images DIR --masks irregular` (also `csa-evaluate`).

Its parser and `main` are still in `csa_lib/eval/evaluate.py`, next to `run_evaluation`; this module
is the command's name in `cli/`, like the other three, so every command is `python -m csa_lib.cli.<name>`.
"""
from __future__ import annotations

import sys

from ..eval.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
