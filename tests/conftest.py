"""Shared fixtures (tiny configs and inputs so the suite runs on a 2-core CPU) and the test tiers.

Tiers (markers registered in pyproject.toml): `slow` (torchrun, CLI subprocesses, long training
runs, the browser) is left out by `make test-fast`; `gpu` tests run only where CUDA is present and
are skipped, with the reason, everywhere else.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

from csa_lib.config import Config
from csa_lib.masks import center_mask

torch.set_num_threads(min(2, os.cpu_count() or 1))

GPU_SKIP_REASON = "needs a CUDA device (gpu tier); none is available here"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip `@pytest.mark.gpu` tests when torch sees no CUDA device."""
    if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
        pytest.skip(GPU_SKIP_REASON)


def pytest_collection_modifyitems(config, items):
    """Skip `@pytest.mark.gpu` tests when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_cfg(tmp_path) -> Config:
    """64-px (the smallest size the feature discriminator takes), width-4 config, random VGG."""
    return Config.smoke(image_size=64, ngf=4, ndf=4, checkpoints_dir=str(tmp_path / "run"),
                        data_root="synthetic")


def centre_mask(batch: int, size: int) -> torch.Tensor:
    """(B,1,size,size) float mask: `csa_lib.masks.center_mask`, the original's centre hole, for each sample."""
    return center_mask(size)[None].repeat(batch, 1, 1, 1)  # (B,1,size,size)


def callers_missing(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, callers: dict[str, Callable[[], Any]]) -> list[str]:
    """The `callers` (name -> call without arguments) that ran without calling `owner.<name>`, spied on meanwhile."""
    calls: list[int] = []
    real = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    missing = []
    for caller, call in callers.items():
        calls.clear()
        call()
        if not calls:
            missing.append(caller)
    return missing


class Payload:
    """Pickles as a call to exec: loading it with weights_only=False would run code (writes 'ran' to `marker`)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def damage_tensor(path, tensor: torch.Tensor) -> None:
    """Overwrite one float of `tensor`'s stored bytes inside the checkpoint zip with 1e30 (its CRC no longer matches)."""
    data = bytearray(path.read_bytes())
    raw = tensor.contiguous().numpy().tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0, "the tensor's bytes must occur once in the file"
    data[at:at + 4] = torch.tensor([1e30]).numpy().tobytes()
    path.write_bytes(bytes(data))
