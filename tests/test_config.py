"""Config: validation, smoke preset, dict round trip."""
from __future__ import annotations

import dataclasses

import pytest

from csa_lib.config import Config


def test_defaults_are_the_original_code_defaults():
    cfg = Config()
    assert (cfg.image_size, cfg.ngf, cfg.ndf, cfg.mask_type) == (256, 64, 64, "center")
    assert (cfg.lambda_l1, cfg.lambda_adv, cfg.lambda_consistency) == (100.0, 0.2, 1.0)
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.niter, cfg.niter_decay) == (2e-4, 0.5, 0.999, 20, 100)


def test_smoke_preset_and_overrides():
    cfg = Config.smoke(batch_size=4)
    assert cfg.image_size == 64 and cfg.ngf == 8 and cfg.batch_size == 4 and cfg.vgg_weights is None


def test_dict_round_trip_ignores_unknown_keys():
    cfg = Config.smoke(mask_type="random", mask_root="masks")
    assert Config.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg
    assert cfg.replace(ngf=16).ngf == 16 and cfg.ngf == 8


@pytest.mark.parametrize("field,value,message", [
    ("mask_type", "circle", "mask_type must be one of"),
    ("image_size", 100, "power of two"),
    ("image_size", 8, "power of two"),
    ("ngf", 0, "must be positive"),
    ("batch_size", 0, "batch_size"),
    ("val_fraction", 1.0, "val_fraction"),
])
def test_bad_values_raise(field, value, message):
    with pytest.raises(ValueError, match=message):
        Config(**{field: value})


def test_every_field_carries_its_help_and_the_cli_shows_it():
    """Field help lives in `dataclasses.field(metadata={"help": ...})`; the CLI reads it from there."""
    from csa_lib.cli.train import build_parser, config_flag

    helps = {f.name: f.metadata.get("help") for f in dataclasses.fields(Config)}
    assert all(isinstance(text, str) and text for text in helps.values()), helps
    actions = {s: a for a in build_parser()._actions for s in a.option_strings}
    for name, text in helps.items():
        assert actions[config_flag(name)].help.startswith(text), name
    assert helps["l1_hole_weight"].startswith("hole pixels count this many times")
