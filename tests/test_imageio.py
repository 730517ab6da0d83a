"""One reader for photos and masks: every caller reads a file the same way, as cameras write it.

Most tests go through the public callers (`inference.inpaint`, `data.ImageFolder`, `masks.load_mask`,
`evaluate`, the widget), so they check what a user sees, not only the helper.
"""
from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from csa_lib import data, holes, imageio, masks
from csa_lib.eval import evaluate
from csa_lib.notebook import inpaint_app, mask_painter
from csa_lib.config import Config
from csa_lib.inference import inpaint
from csa_lib.model import build_models
from conftest import callers_missing


@pytest.fixture(scope="module")
def model():
    """A tiny random generator: its raw fill is far from grey and from the photo's colours."""
    torch.manual_seed(0)
    generator, _, _ = build_models(Config.smoke(image_size=32, ngf=4, ndf=4))
    return generator.eval()


def gradient(h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 with every row and column different (so a rotation shows)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx * 7 + yy * 3) % 256], axis=2).astype(np.uint8)


def box(h: int, w: int, value: int = 255) -> np.ndarray:
    """(H, W) uint8 mask with a box of ``value`` in the middle."""
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = value
    return mask


# --- EXIF orientation ----------------------------------------------------------------------------

def save_rotated(path, pixels: np.ndarray, orientation: int = 6, **kw) -> None:
    """Save the pixels as stored by a camera, with an EXIF orientation tag (6 = show turned 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), **kw)


def test_exif_orientation_is_applied_by_every_reader(tmp_path):
    stored = gradient(20, 40)  # 40 wide, 20 tall as stored; shown 20 wide, 40 tall
    shown = np.rot90(stored, k=-1)  # turned clockwise
    save_rotated(tmp_path / "photo.png", stored)
    fitted = ImageOps.fit(Image.fromarray(shown), (20, 20), Image.Resampling.BICUBIC)
    assert np.array_equal(evaluate.load_image(tmp_path / "photo.png", 20), np.asarray(fitted))
    assert np.array_equal(imageio.read_image(tmp_path / "photo.png"), shown)
    assert np.array_equal(np.asarray(mask_painter.load_image(tmp_path / "photo.png")), shown)
    folder = data.ImageFolder(tmp_path, 20, train=False, files=[tmp_path / "photo.png"])
    assert folder[0].shape == (3, 20, 20)
    centre = np.asarray(Image.fromarray(shown).resize((20, 40), Image.Resampling.BILINEAR))[10:30]
    tensor = ((folder[0] + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(tensor - centre).mean() < 2  # the upright photo's centre, not the stored one's


def test_a_mask_drawn_on_an_exif_rotated_jpeg_fits(model, tmp_path):
    stored = gradient(24, 48)
    save_rotated(tmp_path / "photo.jpg", stored, quality=95)
    mask = box(48, 24)  # drawn on the photo as shown: 24 wide, 48 tall
    out = np.asarray(inpaint(model, tmp_path / "photo.jpg", mask))
    assert out.shape == (48, 24, 3)
    known = mask == 0
    assert np.abs(out[known].astype(int) - np.rot90(stored, k=-1)[known]).mean() < 3  # JPEG noise only


# --- 16- and 32-bit images -----------------------------------------------------------------------

def test_16_bit_png_is_scaled_not_white(model, tmp_path):
    grey8 = gradient(30, 40)[..., 0]  # (H, W) 0..255
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # mode I;16
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    expected = np.repeat(grey8[..., None], 3, axis=2)
    with pytest.warns(UserWarning, match="no hole"):  # an empty mask: the photo as it was read
        assert np.array_equal(np.asarray(inpaint(model, tmp_path / "deep.png", np.zeros((30, 40)))), expected)
    assert np.array_equal(np.asarray(mask_painter.load_image(tmp_path / "deep.png")), expected)
    assert np.array_equal(imageio.read_image(grey8.astype(np.uint16) * 257), expected)  # uint16 array
    folder = data.ImageFolder(tmp_path, 30, train=False, files=[tmp_path / "deep.png"])
    assert float(folder[0].mean()) < 0.5  # old reader: every pixel white (1.0)


def test_32_bit_tiff_and_uint32_arrays_are_scaled(tmp_path):  # old readers: white
    grey8 = gradient(16, 20)[..., 0].astype(np.int64)
    Image.fromarray((grey8 * (2**31 - 1) // 255).astype(np.int32)).save(tmp_path / "deep.tif")  # mode I
    got = np.asarray(mask_painter.load_image(tmp_path / "deep.tif"))[..., 0].astype(int)
    assert np.abs(got - grey8).max() <= 1
    got = imageio.read_image((grey8 * (2**32 - 1) // 255).astype(np.uint32))[..., 0].astype(int)
    assert np.abs(got - grey8).max() <= 1
    with pytest.raises(ValueError, match="int64 holds values 0..1000"):
        imageio.read_image(np.linspace(0, 1000, 20).astype(np.int64).reshape(4, 5))


# --- the one mask rule ---------------------------------------------------------------------------

def test_one_mask_rule_half_intensity_is_hole(model, tmp_path):
    image = gradient(30, 30)
    mask = np.zeros((30, 30), np.uint8)
    mask[:, :10] = 100  # JPEG-grey noise around a hole: under half, known
    mask[:, 10:20] = 127
    mask[:, 20:] = 128  # at least half: hole
    out = np.asarray(inpaint(model, image, mask))
    assert np.array_equal(out[:, :20], image[:, :20])
    assert not np.array_equal(out[:, 20:], image[:, 20:])
    expected = mask >= 128
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert np.array_equal(holes.read_mask(tmp_path / "m.png"), expected)
    assert np.array_equal(masks.load_mask(tmp_path / "m.png", 30)[0].numpy() > 0.5, expected)  # training
    assert np.array_equal(evaluate.load_masks(tmp_path, 30)[0][1], expected)  # evaluation
    floats = np.where(expected, 0.51, 0.5)  # floats: strictly above one half
    assert np.array_equal(holes.read_mask(floats), expected)
    assert np.array_equal(holes.read_mask(np.uint16(mask) * 257), expected)  # 16-bit: same rule
    assert np.array_equal(holes.read_mask(expected.astype(np.uint8)), expected)  # a 0/1 array


def test_jpeg_mask_does_not_grow_the_hole(model, tmp_path):
    image = gradient(64, 64)
    hole = box(64, 64) > 0
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=75)
    noisy = np.asarray(Image.open(tmp_path / "m.jpg"))
    assert ((noisy > 0) & ~hole).any()  # JPEG ringing outside the hole ...
    out = np.asarray(inpaint(model, image, tmp_path / "m.jpg"))
    assert np.array_equal(out[~hole], image[~hole])  # ... leaves the known pixels alone


# --- NaN, empty, too large -----------------------------------------------------------------------

def test_nan_and_empty_images_are_clear_errors(model):
    image = gradient(20, 20).astype(np.float32) / 255
    image[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        inpaint(model, image, box(20, 20))
    with pytest.raises(ValueError, match="NaN"):
        inpaint(model, gradient(20, 20), np.where(box(20, 20) > 0, np.nan, 0.0))
    with pytest.raises(ValueError, match="empty"):
        inpaint(model, np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="float image values must be in"):
        inpaint(model, gradient(20, 20).astype(np.float64), box(20, 20))  # 0..255 floats: another scale


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few bytes: only the size is real."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_photos_over_50_megapixels_are_refused_before_decoding(model, tmp_path):
    big = png_header_only(10_000, 6_000)  # 60 MP, and nothing there to decode
    (tmp_path / "big.png").write_bytes(big)
    with pytest.raises(ValueError, match="60.0 megapixels, over the limit of 50"):
        inpaint(model, tmp_path / "big.png", np.zeros((6_000, 10_000), bool))
    with pytest.raises(ValueError, match="megapixels"):
        holes.read_mask(tmp_path / "big.png")
    app = inpaint_app.InpaintApp(inpaint_fn=lambda image, mask: image)
    assert not app.load_image_bytes(big, "big.png")  # an upload
    assert "megapixels" in app.status.value and app.painter.image is None
    view = np.broadcast_to(np.uint8(0), (8_000, 7_000, 3))  # 56 MP array, no memory behind it
    with pytest.raises(ValueError, match="56.0 megapixels"):
        imageio.read_image(view)
    with pytest.raises(ValueError, match="cannot read"):  # under the limit the same file is decoded (and fails)
        imageio.read_image(png_header_only(100, 60))
    assert imageio.MAX_PIXELS < 89_478_485  # PIL's default bomb-warning size: ours fires first


# --- grey in, grey out; alpha; masks with alpha; mostly-hole warning -----------------------------

@pytest.mark.parametrize("form", ["L", "RGB"])
def test_grey_photo_gets_a_grey_fill(model, form):
    grey = gradient(40, 40)[..., 1]
    photo = Image.fromarray(grey) if form == "L" else Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
    for blend in ("poisson", "none"):
        out = np.asarray(inpaint(model, photo, box(40, 40), blend=blend)).astype(int)
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
        assert np.array_equal(out[box(40, 40) == 0, 0], grey[box(40, 40) == 0])


def test_colour_photo_keeps_a_colour_fill(model):
    out = np.asarray(inpaint(model, gradient(40, 40), box(40, 40))).astype(int)
    hole = box(40, 40) > 0
    assert np.abs(out[hole, 0] - out[hole, 1]).max() > 0


def test_alpha_is_composited_on_white_whatever_the_input(model, tmp_path):
    rgba = np.dstack([gradient(30, 30), np.full((30, 30), 255, np.uint8)])
    rgba[:, :10, :3] = (200, 0, 0)  # hidden red under a transparent band
    rgba[:, :10, 3] = 0
    rgba[:, 10:15, 3] = 128  # half transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    sources = (tmp_path / "a.png", Image.fromarray(rgba), rgba)
    results = [np.asarray(inpaint(model, source, box(30, 30))) for source in sources]
    results.append(np.asarray(inpaint(model, (tmp_path / "a.png").read_bytes(), box(30, 30))))  # an upload's bytes
    for other in results[1:]:
        assert np.array_equal(results[0], other)
    known = box(30, 30) == 0
    assert (results[0][:, :10][known[:, :10]] == 255).all()  # transparent = white
    expected = np.asarray(mask_painter.MaskPainter(tmp_path / "a.png").image)  # the widget agrees (not black)
    assert np.array_equal(results[0][known], expected[known])
    half = (rgba[:, 10:15, :3].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(expected[:, 10:15] - half).max() <= 0.5 + 1e-9
    assert np.array_equal(imageio.read_image(rgba), expected)


def test_mask_alpha_is_used_when_its_colour_is_blank(model, tmp_path):
    image = gradient(30, 30)
    strokes = np.zeros((30, 30, 4), np.uint8)  # black, transparent layer ...
    strokes[10:20, 5:25, 3] = 255  # ... with opaque black strokes: an editor's export
    Image.fromarray(strokes).save(tmp_path / "strokes.png")
    hole = strokes[..., 3] > 0
    out = np.asarray(inpaint(model, image, tmp_path / "strokes.png"))
    assert not np.array_equal(out[hole], image[hole]) and np.array_equal(out[~hole], image[~hole])
    assert np.array_equal(holes.read_mask(tmp_path / "strokes.png"), hole)
    assert np.array_equal(masks.load_mask(tmp_path / "strokes.png", 30)[0].numpy() > 0.5, hole)
    white = np.dstack([np.where(hole, 255, 0).astype(np.uint8)] * 3 + [np.full((30, 30), 255, np.uint8)])
    assert np.array_equal(holes.read_mask(white), hole)  # opaque: the colour decides, as before


def test_mostly_hole_warns_that_the_mask_may_be_inverted(model):
    image = gradient(40, 40)
    inverted = np.full((40, 40), 255, np.uint8)
    inverted[:18, :18] = 0  # 80 % hole: the painted part was meant to be known
    with pytest.warns(UserWarning, match="is the mask inverted"):
        inpaint(model, image, inverted)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint(model, image, box(40, 40))  # 11 %: no warning


# --- one module for every caller -----------------------------------------------------------------

def test_tensors_read_like_arrays(model):
    image, mask = gradient(24, 24), box(24, 24)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1  # (1,3,H,W) in [-1, 1]
    hole = torch.from_numpy(mask > 0)[None, None].float()  # (1,1,H,W), 1 = hole
    assert np.array_equal(np.asarray(inpaint(model, tensor, hole)), np.asarray(inpaint(model, image, mask)))
    assert np.array_equal(imageio.read_image(tensor), image)


def test_one_extension_list_and_no_shadowed_mask_source(tmp_path):
    assert data.IMAGE_EXTENSIONS == masks.MASK_EXTENSIONS == evaluate.IMAGE_SUFFIXES
    assert getattr(evaluate, "MaskSource", masks.MaskSource) is masks.MaskSource
    Image.fromarray(box(8, 8)).save(tmp_path / "scan.tif")
    assert masks.find_mask_files(tmp_path) == [tmp_path / "scan.tif"]
    assert data.IMAGE_EXTENSIONS == imageio.IMAGE_EXTENSIONS


def test_composite_pastes_known_pixels_back():
    fill = np.full((2, 3, 3), 9, np.uint8)
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    hole = np.array([[True, False, False], [False, False, True]])
    out = holes.composite(fill, image, hole)
    expected = image.copy()
    expected[0, 0] = expected[1, 2] = 9  # by hand
    assert np.array_equal(out, expected) and out.dtype == np.uint8
    with pytest.raises(ValueError, match="one shape"):
        holes.composite(fill[:1], image, hole)


def test_composite_pastes_tensors_back_channel_first():
    fill, image = torch.full((2, 3, 2, 3), 5.0), torch.arange(36.0).reshape(2, 3, 2, 3)
    hole = torch.zeros(2, 1, 2, 3, dtype=torch.bool)
    hole[0, 0, 1, 2] = hole[1, 0, 0, 0] = True
    out = holes.composite(fill, image, hole)
    expected = image.clone()
    expected[0, :, 1, 2] = expected[1, :, 0, 0] = 5.0  # by hand
    assert torch.equal(out, expected)
    single = holes.composite(fill[0], image[0], hole[0, 0])  # (C,H,W) with an (H,W) hole
    assert torch.equal(single, expected[0])
    with pytest.raises(ValueError, match="one shape"):
        holes.composite(fill[:, :1], image, hole)


def test_every_paste_goes_through_composite(model, monkeypatch):
    """The generator, the Poisson blend, `inpaint`, the evaluation's CSA method, the baselines and the widget paste with it."""
    from csa_lib.engine import blend
    from csa_lib.eval import baselines

    pixels = gradient(32, 32)
    hole = np.zeros((32, 32), bool)
    hole[10:20, 12:22] = True
    callers = {
        "generator": lambda: model(torch.zeros(1, 3, 32, 32), torch.from_numpy(hole)[None, None].float()),
        "harmonic_fill": lambda: blend.harmonic_fill(torch.rand(3, 32, 32), torch.from_numpy(hole)),
        "poisson_blend": lambda: blend.poisson_blend(torch.rand(3, 32, 32), torch.rand(3, 32, 32), torch.from_numpy(hole)),
        "inpaint": lambda: inpaint(model, pixels, hole, blend="none"),
        "evaluate.csa": lambda: evaluate.csa_inpainter(model, blend="none")(pixels, hole),
        "telea": lambda: baselines.telea(pixels, hole),
    }
    app = inpaint_app.InpaintApp(image=pixels, inpaint_fn=lambda im, m: im)
    app.painter.set_strokes([{"tool": "rect", "size": 1, "points": [[4, 4], [12, 12]]}])
    callers["widget"] = app.inpaint
    assert callers_missing(monkeypatch, holes, "composite", callers) == []


def test_mask_image_is_what_read_mask_reads_back_and_every_writer_uses_it(monkeypatch, tmp_path):
    """A hole -> 'L' 0/255; the widget (its mask, the mask given to inpaint_fn, the saved mask) and the strips write it so."""
    from csa_lib.eval import report

    hole = np.array([[True, False], [False, True]])
    written = holes.mask_image(hole)
    assert written.mode == "L" and np.asarray(written).tolist() == [[255, 0], [0, 255]]
    assert np.array_equal(holes.read_mask(written), hole)
    assert np.array_equal(np.asarray(holes.mask_image(hole.astype(np.float32))), np.asarray(written))
    pixels = gradient(16, 16)
    app = inpaint_app.InpaintApp(image=pixels, inpaint_fn=lambda im, m: im, output_dir=tmp_path)
    app.painter.set_strokes([{"tool": "rect", "size": 1, "points": [[2, 2], [9, 9]]}])
    callers = {"painter.mask_image": app.painter.mask_image, "inpaint": app.inpaint, "save": app.save,
               "plot_strips": lambda: report.plot_strips([{"image": "g", "bucket": "b", "truth": pixels,
                                                           "hole": app.mask, "outputs": {}}], [])}
    assert callers_missing(monkeypatch, holes, "mask_image", callers) == []


def test_fit_crops_the_centre_then_resizes():
    pixels = np.arange(3 * 6, dtype=np.uint8).reshape(3, 6) * 10  # (H, W) = (3, 6)
    square = imageio.fit(Image.fromarray(pixels), 3, Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(square), pixels[:, 1:4])  # margins 1 and 2: the left one is the smaller
    same_aspect = imageio.fit(Image.fromarray(pixels), (4, 2), Image.Resampling.NEAREST)  # 6:3 = 4:2, nothing cropped
    assert np.array_equal(np.asarray(same_aspect), np.asarray(Image.fromarray(pixels).resize((4, 2), Image.Resampling.NEAREST)))
    tall = imageio.fit(Image.fromarray(pixels), (2, 3), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(tall), pixels[:, 2:4])  # width round(3 * 2 / 3) = 2, margins 2 and 2


def test_a_folder_mask_is_the_same_hole_to_training_and_evaluation(tmp_path):
    """A non-square mask file: cropped like its photo, bilinear, the one rule, for masks.load_mask and evaluate.load_masks."""
    plane = np.zeros((40, 60), np.uint8)
    plane[:, :10] = 255  # a band filling the left margin, which the centre crop cuts off
    plane[10:30, 25:35] = 255
    Image.fromarray(plane).save(tmp_path / "m.png")
    trained = masks.load_mask(tmp_path / "m.png", 20)[0].numpy() > 0.5
    ((_, evaluated),) = evaluate.load_masks(tmp_path, 20)
    assert np.array_equal(trained, evaluated)
    assert np.array_equal(evaluated, holes.fit_mask(tmp_path / "m.png", 20))
    assert not evaluated[:, 0].any()  # cropped, not squashed: the left band is gone
    assert evaluated[5:15, 8:12].all()


def test_every_fit_goes_through_imageio_fit(monkeypatch, tmp_path):
    """evaluate's photos and masks, training's mask files, the attention demo photo and the sample builder fit with it."""
    import importlib.util
    import sys

    from csa_lib.notebook import attention

    Image.fromarray(gradient(24, 30)).save(tmp_path / "photo.png")
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("demo_images", scripts / "demo_images.py")
    demo_images = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "demo_images", demo_images)
    spec.loader.exec_module(demo_images)
    callers = {
        "evaluate.load_image": lambda: evaluate.load_image(tmp_path / "photo.png", 16),
        "evaluate.load_masks": lambda: evaluate.load_masks(tmp_path, 16),
        "masks.load_mask": lambda: masks.load_mask(tmp_path / "photo.png", 16),
        "attention.demo_image": lambda: attention.demo_image(16),
        "scripts center_square": lambda: demo_images.center_square(gradient(24, 30), 16),
    }
    assert callers_missing(monkeypatch, imageio, "fit", callers) == []


def test_every_image_folder_is_searched_by_find_images(monkeypatch, tmp_path):
    """Training's image folders, the mask folders and the evaluation's photos and masks: one search, one error.

    The flat listings (the attention demo photo, csa-demo's samples) are `list_images` itself.
    """
    from csa_lib.cli import demo
    from csa_lib.notebook import attention

    with pytest.raises(imageio.NoImagesError, match="does not exist") as missing:
        imageio.find_images(tmp_path / "nowhere")
    assert isinstance(missing.value, ValueError) and isinstance(missing.value, FileNotFoundError)
    with pytest.raises(ValueError, match="holds no mask files.*NVIDIA"):
        masks.find_mask_files(tmp_path)
    Image.fromarray(gradient(8, 8)).save(tmp_path / "a.png")
    assert data.find_images is imageio.find_images  # the training folders' check is this very function
    callers = {"masks.find_mask_files": lambda: masks.find_mask_files(tmp_path),
               "evaluate.load_images": lambda: evaluate.load_images(tmp_path, 8),
               "evaluate.load_masks": lambda: evaluate.load_masks(tmp_path, 8)}
    assert callers_missing(monkeypatch, imageio, "find_images", callers) == []
    listed = {"find_images": lambda: imageio.find_images(tmp_path), "attention.demo_image": lambda: attention.demo_image(16),
              "csa-demo": lambda: pytest.raises(FileNotFoundError, demo.run_demo, None, tmp_path, tmp_path / "out")}
    assert callers_missing(monkeypatch, imageio, "list_images", listed) == []


def test_bytes_and_files_read_alike(tmp_path):
    pixels = gradient(12, 14)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    (tmp_path / "p.png").write_bytes(buffer.getvalue())
    assert np.array_equal(imageio.read_image(buffer.getvalue()), imageio.read_image(tmp_path / "p.png"))
    with pytest.raises(ValueError, match="cannot read image data"):
        imageio.read_image(b"not an image")


# --- masks that are photos, antialiased, JPEG, empty -----------------------------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def jpeg_bytes(pixels: np.ndarray, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def antialiased_strokes(size: int = 256, width: int = 6, seed: int = 0) -> np.ndarray:
    """(size, size) uint8: five brush strokes drawn at 4x and scaled down (LANCZOS), as a paint program smooths them."""
    rng = np.random.default_rng(seed)
    big = Image.new("L", (4 * size, 4 * size), 0)
    draw = ImageDraw.Draw(big)
    for _ in range(5):
        draw.line([tuple(rng.uniform(0, 4 * size, 2)) for _ in range(4)], fill=255, width=4 * width, joint="curve")
    return np.asarray(big.resize((size, size), Image.LANCZOS))


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "grace_hopper"])
def test_a_sample_photo_looks_like_a_photo(name):
    photo = SAMPLES / "images" / f"{name}.png"
    plane = imageio.mask_plane(photo)
    assert holes.grey_share(plane) > 0.45 and holes.looks_like_photo(plane)
    assert holes.looks_like_photo(imageio.mask_plane(jpeg_bytes(imageio.read_image(photo))))  # as a JPEG too
    floats = np.asarray(plane, dtype=np.float32) / 255  # and as a float array in [0, 1]
    assert holes.looks_like_photo(imageio.mask_plane(floats))


@pytest.mark.parametrize("name", ["center", "irregular_1", "irregular_2", "irregular_3"])
def test_sample_masks_saved_as_jpeg_75_are_near_binary(name):
    mask = np.asarray(Image.open(SAMPLES / "masks" / f"{name}.png").convert("L"))
    plane = imageio.mask_plane(jpeg_bytes(mask, 75))
    assert len(np.unique(np.asarray(plane))) > holes.PHOTO_LEVELS  # JPEG really made many levels ...
    assert holes.grey_share(plane) < 0.02 and not holes.looks_like_photo(plane)  # ... few of them grey


@pytest.mark.parametrize("width", [3, 6, 12, 30])
def test_antialiased_strokes_are_near_binary(width):
    strokes = antialiased_strokes(width=width)
    plane = imageio.mask_plane(strokes)
    assert len(np.unique(strokes)) > 100 and holes.grey_share(plane) > 0.01  # really antialiased
    assert holes.grey_share(plane) < 0.06 and not holes.looks_like_photo(plane)
    assert not holes.looks_like_photo(imageio.mask_plane(jpeg_bytes(strokes, 75)))
    feathered = Image.fromarray(strokes).filter(ImageFilter.GaussianBlur(2))  # even a 2-px feather
    assert not holes.looks_like_photo(imageio.mask_plane(feathered))


def test_masks_of_a_few_grey_levels_are_drawn_not_photos():
    two = np.zeros((40, 40), np.uint8)
    two[:, :20] = 200  # 0 / 200: half of it grey, but two levels
    three = np.repeat(np.array([[100, 127, 128]], np.uint8), 10, axis=1).repeat(30, axis=0)
    for mask in (two, three, two.astype(np.float32) / 255):
        plane = imageio.mask_plane(mask)
        assert holes.grey_share(plane) > holes.PHOTO_GREY_SHARE and not holes.looks_like_photo(plane)


def test_a_photo_as_mask_warns_naming_the_rule(model, tmp_path):
    photo = np.asarray(Image.open(SAMPLES / "images" / "coffee.png").convert("RGB").resize((64, 64)))
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(photo, 90))
    with pytest.warns(UserWarning, match=r"the mask looks like a photo.*>= 128 in an 8-bit mask") as caught:
        inpaint(model, tmp_path / "photo.jpg", tmp_path / "photo.jpg")
    assert caught[0].filename == __file__  # the warning points at the caller's line
    with warnings.catch_warnings():  # a JPEG mask and an antialiased one: no warning
        warnings.simplefilter("error")
        inpaint(model, photo, jpeg_bytes(box(64, 64), 75))
        inpaint(model, photo, antialiased_strokes(size=64, width=3))


def test_an_empty_mask_returns_the_photo_with_a_warning(model):
    image = gradient(30, 40)
    for empty in (np.zeros((30, 40), np.uint8), np.full((30, 40), 127, np.uint8), np.zeros((30, 40), bool)):
        with pytest.warns(UserWarning, match="the mask has no hole, so the photo is returned unchanged") as caught:
            out = inpaint(model, image, empty)
        assert np.array_equal(np.asarray(out), image) and caught[0].filename == __file__
