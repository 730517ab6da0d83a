"""Data pipeline: folder scanning, resize/crop/flip, bad files, splits, synthetic set, datasets, loaders."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from csa_lib.config import Config
from csa_lib.data import (
    IMAGE_EXTENSIONS, ImageFolder, InpaintingDataset, build_datasets, find_images, make_loader, split_files,
)
from csa_lib.masks import MaskSource, center_mask
from csa_lib.synthetic import SyntheticImages, save_synthetic_folder
from csa_lib.utils import from_pil, seed_everything, to_pil


def _save_rgb(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _noise(rng, h, w):
    return rng.integers(0, 256, size=(h, w, 3))


@pytest.fixture
def nested_folder(tmp_path):
    """Places2-like layout: class folders, mixed extensions and cases, one non-image file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "places"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    _save_rgb(root / "top.png", _noise(rng, 40, 48))
    _save_rgb(root / "a" / "one.JPG", _noise(rng, 48, 40))
    _save_rgb(root / "a" / "deep" / "two.webp", _noise(rng, 36, 36))
    _save_rgb(root / "b" / "three.jpeg", _noise(rng, 50, 70))
    _save_rgb(root / "b" / "four.bmp", _noise(rng, 33, 64))
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(root / "b" / "grey.png")
    (root / "b" / "readme.txt").write_text("not an image")
    return root


def test_image_folder_finds_nested_mixed_files(nested_folder):
    files = find_images(nested_folder)
    assert [p.name for p in files] == ["two.webp", "one.JPG", "four.bmp", "grey.png", "three.jpeg", "top.png"]
    for train in (True, False):
        ds = ImageFolder(nested_folder, 32, train=train)
        assert len(ds) == 6
        for i in range(len(ds)):
            image = ds[i]
            assert image.shape == (3, 32, 32) and image.dtype == torch.float32
            assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert float(image.max() - image.min()) > 1.0  # the noise spans the range, not a constant


def test_eval_crop_keeps_aspect_ratio(tmp_path):
    bands = np.zeros((32, 96, 3), np.uint8)
    bands[:, :32, 0] = 255  # red | green | blue thirds
    bands[:, 32:64, 1] = 255
    bands[:, 64:, 2] = 255
    _save_rgb(tmp_path / "bands.png", bands)
    image = ImageFolder(tmp_path, 16, train=False)[0]  # short side 32 -> 16, then the middle square
    mean = image.mean(dim=(1, 2))  # (3,)
    assert mean[1] > 0.9 and mean[0] < -0.9 and mean[2] < -0.9  # only green: no squashing


def test_train_crop_and_flip_are_random_but_seeded(tmp_path):
    halves = np.zeros((32, 32, 3), np.uint8)
    halves[:, :16, 0] = 255  # red left, blue right
    halves[:, 16:, 2] = 255
    _save_rgb(tmp_path / "halves.png", halves)
    flipping = ImageFolder(tmp_path, 32, train=True, flip=True)
    torch.manual_seed(0)
    draws = [flipping[0] for _ in range(16)]
    red_left = {bool(d[0, :, :8].mean() > 0.9) for d in draws}
    assert red_left == {True, False}
    torch.manual_seed(0)
    assert all(torch.equal(a, flipping[0]) for a in draws)
    steady = ImageFolder(tmp_path, 32, train=True, flip=False)
    evaluation = ImageFolder(tmp_path, 32, train=False)
    assert all(torch.equal(steady[0], evaluation[0]) for _ in range(4))


def test_seeded_augmentation_depends_on_seed_epoch_index_only(tmp_path):
    _save_rgb(tmp_path / "wide.png", _noise(np.random.default_rng(2), 32, 64))
    ds = ImageFolder(tmp_path, 16, train=True, seed=4)
    first = ds[0]
    torch.manual_seed(99)  # the global RNG plays no part
    assert torch.equal(ds[0], first)
    crops = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        crops.append(ds[0])
    assert torch.equal(crops[0], first)
    assert len({tuple(c.flatten()[:64].tolist()) for c in crops}) > 1  # new crops/flips per epoch


def test_corrupt_file_skipped_with_one_warning(tmp_path):
    rng = np.random.default_rng(1)
    _save_rgb(tmp_path / "a.png", _noise(rng, 20, 20))
    (tmp_path / "b_broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    _save_rgb(tmp_path / "c.png", _noise(rng, 20, 20))
    ds = ImageFolder(tmp_path, 16, train=False)
    assert len(ds) == 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [ds[i] for i in range(3) for _ in range(3)]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "b_broken.jpg" in messages[0]
    assert torch.equal(samples[3], ds[2])  # the broken index returns the next readable image
    assert ds.bad_files == {tmp_path / "b_broken.jpg"}


def test_all_files_unreadable_is_an_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"junk")
    (tmp_path / "y.png").write_bytes(b"more junk")
    ds = ImageFolder(tmp_path, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="none of the 2 image files"):
            ds[0]


def test_empty_or_missing_folder_errors(tmp_path):
    (tmp_path / "only.txt").write_text("nothing to see")
    with pytest.raises(ValueError) as info:
        ImageFolder(tmp_path, 32)
    assert str(tmp_path) in str(info.value)
    assert all(ext in str(info.value) for ext in IMAGE_EXTENSIONS)
    with pytest.raises(ValueError, match="does not exist"):
        find_images(tmp_path / "nowhere")


def test_split_files_is_deterministic_and_disjoint():
    files = [f"img_{k:03d}.png" for k in range(100)]
    train, val = split_files(files, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(files)
    assert split_files(list(reversed(files)), 0.1, seed=3) == (train, val)  # input order does not matter
    assert split_files(files, 0.1, seed=4)[1] != val
    assert split_files(files, 0.0, seed=3) == (files, [])
    tiny_train, tiny_val = split_files(files[:3], 0.05, seed=0)
    assert len(tiny_val) == 1 and len(tiny_train) == 2  # at least one each when there are two files
    with pytest.raises(ValueError, match="val_fraction"):
        split_files(files, 1.0, seed=0)


def test_synthetic_images_are_deterministic_and_varied():
    ds = SyntheticImages(8, 32, seed=0)
    assert len(ds) == 8
    image = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert torch.equal(image, SyntheticImages(8, 32, seed=0)[0])
    assert not torch.equal(image, ds[1])
    assert not torch.equal(image, SyntheticImages(8, 32, seed=1)[0])
    assert float(image.std()) > 0.05  # structured, not flat
    with pytest.raises(IndexError):
        ds[8]


def test_save_synthetic_folder_round_trip(tmp_path):
    paths = save_synthetic_folder(tmp_path / "syn", 3, 24, seed=5)
    assert [p.name for p in paths] == ["synthetic_0000.png", "synthetic_0001.png", "synthetic_0002.png"]
    loaded = ImageFolder(tmp_path / "syn", 24, train=False)
    original = SyntheticImages(3, 24, seed=5)
    for k in range(3):
        assert torch.allclose(loaded[k], original[k], atol=1 / 127.5 + 1e-6)


def test_pil_round_trip():
    image = SyntheticImages(1, 16, seed=0)[0]
    pil = to_pil(image)
    assert pil.mode == "RGB" and pil.size == (16, 16)
    assert torch.allclose(from_pil(pil), image, atol=1 / 127.5 + 1e-6)
    assert to_pil(image[None]).size == (16, 16) and to_pil(image[:1]).mode == "L"


def test_inpainting_dataset_masks_per_sample_and_epoch():
    images = SyntheticImages(6, 32, seed=0)
    ds = InpaintingDataset(images, MaskSource("random", 32, seed=0))
    sample = ds[0]
    assert set(sample) == {"image", "mask"}
    assert sample["image"].shape == (3, 32, 32) and sample["mask"].shape == (1, 32, 32)
    assert torch.equal(sample["image"], images[0])
    masks = [ds[i]["mask"] for i in range(6)]
    assert all(not torch.equal(masks[0], m) for m in masks[1:])
    assert torch.equal(ds[3]["mask"], masks[3])  # same epoch, same mask
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["mask"], masks[3])
    centre = InpaintingDataset(images, MaskSource("center", 32))
    assert all(torch.equal(centre[i]["mask"], center_mask(32)) for i in range(3))
    mismatched = InpaintingDataset(images, MaskSource("center", 64))
    with pytest.raises(ValueError, match="sizes differ"):
        mismatched[0]


def test_build_datasets_synthetic():
    cfg = Config.smoke(data_root="synthetic", image_size=32, mask_type="random", seed=2)
    train, val = build_datasets(cfg)
    assert (len(train), len(val)) == (256, 16)
    batch = train[5]
    assert batch["image"].shape == (3, 32, 32) and batch["mask"].shape == (1, 32, 32)
    assert not torch.equal(train[0]["image"], val[0]["image"])
    assert not torch.equal(train[0]["mask"], val[0]["mask"])  # val masks use their own seed


def test_build_datasets_folder_reads_cfg(nested_folder):
    cfg = Config.smoke(data_root=str(nested_folder), image_size=16, val_fraction=0.34, flip=False, seed=0)
    train, val = build_datasets(cfg)
    assert (len(train), len(val)) == (4, 2)
    assert train.images.train and not train.images.flip and not val.images.train
    assert train.images.seed == cfg.seed
    assert set(train.images.files).isdisjoint(val.images.files)
    assert torch.equal(val[0]["mask"], center_mask(16))  # cfg.mask_type defaults to 'center'
    flipping, _ = build_datasets(cfg.replace(flip=True))
    assert flipping.images.flip


def test_make_loader_is_seeded(nested_folder):
    ds = InpaintingDataset(ImageFolder(nested_folder, 16, train=True, seed=0), MaskSource("random", 16, seed=0))

    def batches(seed, workers):
        seed_everything(123)
        return [b for b in make_loader(ds, batch_size=2, shuffle=True, num_workers=workers, seed=seed)]

    first = batches(0, 0)
    assert len(first) == 3
    assert first[0]["image"].shape == (2, 3, 16, 16) and first[0]["mask"].shape == (2, 1, 16, 16)
    again = batches(0, 0)
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
               for a, b in zip(first, again))
    assert any(not torch.equal(a["image"], b["image"]) for a, b in zip(first, batches(1, 0)))
    with_worker = batches(0, 1)  # seeded crops, flips and masks: the worker count changes nothing
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
               for a, b in zip(first, with_worker))
    ds.set_epoch(1)
    assert any(not torch.equal(a["mask"], b["mask"]) for a, b in zip(first, batches(0, 1)))


def test_unseeded_folder_follows_worker_seeds(nested_folder):
    ds = ImageFolder(nested_folder, 16, train=True)  # crops from torch's RNG, seeded per worker
    runs = [[b for b in make_loader(ds, batch_size=3, shuffle=False, num_workers=1, seed=7)] for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_seed_everything_repeats_all_generators():
    import random

    seed_everything(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_channel_shuffle_permutes_colours_of_training_images_only(tmp_path):
    pixel = np.zeros((16, 16, 3), np.uint8)
    pixel[..., 0], pixel[..., 1], pixel[..., 2] = 30, 130, 230  # one distinct value per channel
    _save_rgb(tmp_path / "flat.png", pixel)
    original = ImageFolder(tmp_path, 16, train=True, flip=False)[0]
    always = ImageFolder(tmp_path, 16, train=True, flip=False, seed=1, channel_shuffle=1.0)
    orders = set()
    for epoch in range(40):
        always.set_epoch(epoch)
        image = always[0]
        order = tuple(int(torch.argmin((original[:, 0, 0] - image[c, 0, 0]).abs())) for c in range(3))
        assert torch.equal(image, original[list(order)]) and order != (0, 1, 2)
        orders.add(order)
    assert len(orders) == 5  # every other order turns up
    never = ImageFolder(tmp_path, 16, train=True, flip=False, seed=1, channel_shuffle=0.0)
    evaluation = ImageFolder(tmp_path, 16, train=False, channel_shuffle=1.0)
    assert torch.equal(never[0], original) and torch.equal(evaluation[0], original)
    half = ImageFolder(tmp_path, 16, train=True, flip=False, seed=2, channel_shuffle=0.5)
    kept = 0
    for epoch in range(200):
        half.set_epoch(epoch)
        kept += int(torch.equal(half[0], original))
    assert 70 < kept < 130
    train, _ = build_datasets(Config.smoke(data_root=str(tmp_path), image_size=16, val_fraction=0.0,
                                           channel_shuffle=0.25))
    assert train.images.channel_shuffle == 0.25
    with pytest.raises(ValueError, match="channel_shuffle"):
        Config(channel_shuffle=1.5)


def test_smooth_scenes_are_flat_colours_and_skies_shared_by_the_demo_checks():
    """The plain photos of tests/test_demo_model.py and benchmarks/bench_demo_smooth_fill.py: one table, one drawing."""
    import importlib.util
    from pathlib import Path

    from csa_lib.synthetic import SMOOTH_SCENES, smooth_scene, smooth_scenes

    scenes = smooth_scenes(16)
    assert set(scenes) == set(SMOOTH_SCENES) and all(s.shape == (16, 16, 3) and s.dtype == np.uint8 for s in scenes.values())
    assert (scenes["blue"] == (70, 130, 200)).all()  # flat, by hand
    sky = smooth_scene((0, 0, 0), (30, 60, 90), 4)  # rows at t = 0, 1/3, 2/3, 1
    assert sky[:, 0].tolist() == [[0, 0, 0], [10, 20, 30], [20, 40, 60], [30, 60, 90]] and (sky == sky[:, :1]).all()
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_demo_smooth_fill", root / "benchmarks" / "bench_demo_smooth_fill.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.SMOOTH.keys() == SMOOTH_SCENES.keys()
    assert all(np.array_equal(bench.SMOOTH[k], v) for k, v in smooth_scenes(256).items())
