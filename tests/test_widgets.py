"""Kernel-side tests of `MaskPainter` and `InpaintApp` (no browser: strokes are set from Python)."""
from __future__ import annotations

import asyncio
import base64
import datetime
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csa_lib.notebook import mask_painter
from csa_lib.notebook.inpaint_app import InpaintApp
from csa_lib.notebook.mask_painter import MaskPainter


def checker_image(height: int = 80, width: int = 100) -> np.ndarray:
    """(H,W,3) uint8 gradient whose blue channel is 30 or 230, so a mean-colour fill changes every pixel."""
    yy, xx = np.mgrid[0:height, 0:width]
    blue = ((xx // 10 + yy // 10) % 2) * 200 + 30
    return np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), blue], axis=-1).astype(np.uint8)


def mean_fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Fake inpainting: fill the hole (mask > 0) with the mean colour of the known pixels."""
    pixels = np.array(image)
    hole = np.asarray(mask) > 0
    pixels[hole] = pixels[~hole].mean(axis=0).astype(np.uint8)
    return Image.fromarray(pixels)


BRUSH = {"tool": "brush", "size": 5, "points": [[20, 40], [60, 40]]}
RECT = {"tool": "rect", "size": 1, "points": [[90, 30], [70, 10]]}


def test_brush_stroke_geometry() -> None:
    """A horizontal brush stroke becomes a capsule of the given radius at the image's resolution."""
    painter = MaskPainter(checker_image())
    painter.set_strokes([BRUSH])
    mask = painter.mask
    assert mask.shape == (80, 100) and mask.dtype == bool
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max()) == (35, 45)
    assert (cols.min(), cols.max()) == (15, 65)
    assert mask[40, 20:61].all() and mask[36:45, 40].all()
    assert not mask[47, 40] and not mask[40, 67] and not mask[:30].any()
    capsule = 2 * 5 * 40 + math.pi * 5 ** 2
    assert abs(mask.sum() - capsule) < 0.1 * capsule


def test_rect_eraser_and_stroke_order() -> None:
    """rect fills the box between its corners (pixel edges); a later eraser stroke clears what it covers."""
    painter = MaskPainter(checker_image())
    painter.set_strokes([RECT])
    expected = np.zeros((80, 100), bool)
    expected[10:30, 70:90] = True
    np.testing.assert_array_equal(painter.mask, expected)
    painter.add_stroke({"tool": "eraser", "size": 3, "points": [[80, 20]]})
    mask = painter.mask
    assert not mask[20, 80] and mask[10, 70] and mask.sum() < 400
    painter.add_stroke({"tool": "brush", "size": 2, "points": [[80, 20]]})
    assert painter.mask[20, 80]


def test_undo_and_clear() -> None:
    """undo drops the last stroke, clear drops all, and the mask follows."""
    painter = MaskPainter(checker_image())
    painter.set_strokes([BRUSH, RECT])
    both = painter.mask
    painter.undo()
    assert painter.strokes == [mask_painter._check_stroke(BRUSH)]
    assert painter.mask.sum() < both.sum() and not painter.mask[20, 80]
    painter.clear()
    assert painter.strokes == [] and not painter.mask.any()
    painter.undo()  # undo on nothing is harmless
    assert painter.strokes == []


def test_strokes_from_the_browser_are_rasterised() -> None:
    """Strokes arriving through the synced trait (as the JS sends them) update `.mask`."""
    painter = MaskPainter(checker_image())
    painter.strokes = [{"tool": "rect", "size": 4, "points": [[0, 0], [10.4, 5.6]]}]
    assert painter.mask.sum() == 10 * 6


@pytest.mark.parametrize("size, shown", [((640, 480), (512, 384)), ((100, 50), (256, 128)),
                                         ((300, 400), (300, 400)), ((2000, 100), (512, 26)),
                                         ((3000, 4000), (384, 512))])
def test_display_scaling_metadata(size: tuple[int, int], shown: tuple[int, int]) -> None:
    """Images of any size are shown fitted to 512 px (small ones enlarged to 256); strokes stay in image pixels."""
    width, height = size
    painter = MaskPainter(Image.new("RGB", size, (10, 20, 30)))
    assert (painter.image_width, painter.image_height) == size
    assert (painter.display_width, painter.display_height) == shown
    assert painter.scale == pytest.approx(shown[0] / width)
    assert painter.mask.shape == (height, width)
    header, data = painter.image_data.split(",", 1)
    assert header == "data:image/png;base64"
    preview = Image.open(io.BytesIO(base64.b64decode(data)))
    assert max(preview.size) <= mask_painter.PREVIEW_MAX
    assert preview.size[0] / preview.size[1] == pytest.approx(width / height, rel=0.05)
    assert painter.brush_size == max(2, round(max(size) / 24))


def test_image_inputs_agree(tmp_path: Path) -> None:
    """PIL image, uint8 array, path and PNG bytes all load to the same RGB pixels."""
    array = checker_image()
    path = tmp_path / "x.png"
    Image.fromarray(array).save(path)
    for source in (Image.fromarray(array), array, path, str(path), path.read_bytes()):
        np.testing.assert_array_equal(np.asarray(MaskPainter(source).image), array)
    gray = MaskPainter(array[..., 0])
    assert gray.image.mode == "RGB" and gray.image_width == 100


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    """A missing or non-image file, a bad array or a malformed stroke raises ValueError."""
    with pytest.raises(ValueError, match="not found"):
        MaskPainter(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        MaskPainter(text)
    with pytest.raises(ValueError, match="shape"):
        MaskPainter(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        MaskPainter(12)
    painter = MaskPainter(checker_image())
    for stroke in ({"tool": "spray", "size": 3, "points": [[1, 1]]}, {"tool": "brush", "size": 0, "points": [[1, 1]]},
                   {"tool": "brush", "size": 3, "points": []}, {"tool": "rect", "size": 1, "points": [[1, 1]]}):
        with pytest.raises(ValueError):
            painter.set_strokes([stroke])
    assert painter.strokes == []


def test_set_image_resets_strokes_and_error() -> None:
    """A new image clears the strokes and any error shown in the widget."""
    painter = MaskPainter(checker_image(), brush_size=7)
    assert painter.brush_size == 7
    painter.set_strokes([BRUSH])
    painter.error = "old problem"
    painter.set_image(checker_image(40, 60))
    assert painter.strokes == [] and painter.error == "" and painter.mask.shape == (40, 60)
    painter.brush_size = 0
    assert painter.brush_size == 1


def test_esm_is_a_self_contained_module() -> None:
    """The front-end is one ES module with a default export, no imports (no CDN, no build step)."""
    esm = MaskPainter._esm
    assert "export default" in esm and "import " not in esm
    for name in ("strokes", "brush_size", "tool", "error", "image_data", "display_width", "save_changes"):
        assert name in esm


def test_the_front_end_sends_every_change_through_commit() -> None:
    """mask_painter.js: one `commit` sets and saves a model attribute, one `makeElement` makes a classed element."""
    esm = MaskPainter._esm
    assert esm.count("model.save_changes()") == 1 and "const commit = (key, value) =>" in esm
    for key in ("tool", "brush_size", "strokes", "error"):
        assert f'commit("{key}", ' in esm and f'model.set("{key}"' not in esm
    assert esm.count(".className = ") == 1  # inside makeElement only


def test_front_end_is_the_package_files() -> None:
    """`_esm` / `_css` are the text of csa_lib/notebook/static/mask_painter.{js,css}, plain strings on class and instance."""
    static = Path(mask_painter.__file__).with_name("static")
    esm = (static / "mask_painter.js").read_text(encoding="utf-8")
    css = (static / "mask_painter.css").read_text(encoding="utf-8")
    assert type(MaskPainter._esm) is str and type(MaskPainter._css) is str  # no anywidget FileContents
    assert MaskPainter._esm == esm and MaskPainter._css == css
    painter = MaskPainter(checker_image())
    assert painter._esm == esm and painter._css == css  # what the browser is sent
    assert "function render(" in esm and ".csa-mp-canvas" in css


def test_inpaint_button_changes_only_the_hole() -> None:
    """Clicking Inpaint with a fake inpaint_fn changes every hole pixel and nothing else."""
    image = checker_image()
    app = InpaintApp(image=image, inpaint_fn=mean_fill)
    app.painter.set_strokes([BRUSH, RECT])
    app.inpaint_button.click()
    assert app.result is not None, app.status.value
    changed = (np.asarray(app.result) != image).any(axis=-1)
    np.testing.assert_array_equal(changed, app.mask)
    np.testing.assert_array_equal(app.result_mask, app.mask)
    assert "Inpainted" in app.status.value and app.result_view.value[:4] == b"\x89PNG"
    assert app.result_view.layout.display != "none"


def test_known_pixels_are_kept_even_if_the_model_changes_them() -> None:
    """The app pastes known pixels back, and resizes an output of the wrong size."""
    image = checker_image()
    app = InpaintApp(image=image, inpaint_fn=lambda im, m: Image.new("RGB", (50, 40), (0, 0, 0)))
    app.painter.set_strokes([RECT])
    result = np.asarray(app.inpaint())
    mask = app.mask
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert (result[mask] == 0).all()


def test_nothing_to_inpaint_and_failures_are_reported() -> None:
    """No image, an empty mask or a failing inpaint_fn give a red status line, not an exception."""
    app = InpaintApp(inpaint_fn=mean_fill)
    app.inpaint_button.click()
    assert app.result is None and "Load an image" in app.status.value
    app.load_image_bytes(Image.fromarray(checker_image()).tobytes(), "raw.bin")  # raw pixels, not a file
    assert "Could not load" in app.painter.error and app.painter.image is None
    app.painter.set_image(checker_image())
    app.inpaint_button.click()
    assert app.result is None and "Paint a mask" in app.status.value

    def broken(image: Image.Image, mask: Image.Image) -> Image.Image:
        raise RuntimeError("model exploded")

    app.inpaint_fn = broken
    app.painter.set_strokes([RECT])
    app.inpaint_button.click()
    assert app.result is None and "model exploded" in app.status.value and "#c00000" in app.status.value


def test_save_writes_result_and_mask(tmp_path: Path) -> None:
    """Save writes input, mask (255 = hole) and result PNGs and shows where."""
    app = InpaintApp(image=checker_image(), inpaint_fn=mean_fill, output_dir=tmp_path / "outputs")
    app.save_button.click()
    assert "Nothing to save" in app.status.value and not (tmp_path / "outputs").exists()
    app.painter.set_strokes([BRUSH])
    app.inpaint_button.click()
    paths = app.save()
    assert set(paths) == {"input", "mask", "result"} and all(p.is_file() for p in paths.values())
    np.testing.assert_array_equal(np.asarray(Image.open(paths["mask"])) == 255, app.mask)
    np.testing.assert_array_equal(np.asarray(Image.open(paths["result"])), np.asarray(app.result))
    assert str(paths["result"]) in app.status.value
    assert paths["mask"].name in app.status.value and paths["input"].name in app.status.value  # all three named
    second = app.save()
    assert second["result"] != paths["result"] and len(list((tmp_path / "outputs").glob("*.png"))) == 6


def test_use_result_as_new_input() -> None:
    """The result becomes the painter's image, with no strokes, ready for more painting."""
    app = InpaintApp(image=checker_image(), inpaint_fn=mean_fill)
    app.painter.set_strokes([RECT])
    result = app.inpaint()
    app.use_result_button.click()
    np.testing.assert_array_equal(np.asarray(app.painter.image), np.asarray(result))
    assert app.painter.strokes == [] and app.result is None
    app.painter.set_strokes([BRUSH])
    second = app.inpaint()
    changed = (np.asarray(second) != np.asarray(result)).any(axis=-1)
    assert changed.any() and not changed[~app.mask].any()


def test_upload_loads_images_and_reports_bad_files() -> None:
    """The FileUpload replaces the input with a good image and shows a visible error for a non-image."""
    app = InpaintApp(image=checker_image(), inpaint_fn=mean_fill)
    buffer = io.BytesIO()
    Image.fromarray(checker_image(30, 50)).save(buffer, format="PNG")

    def upload(name: str, content: bytes) -> None:
        app.upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                             "last_modified": datetime.datetime.now()},)

    upload("small.png", buffer.getvalue())
    assert (app.painter.image_width, app.painter.image_height) == (50, 30) and app.painter.error == ""
    upload("<notes>.txt", b"hello, not an image")
    assert "Could not load" in app.painter.error and "&lt;notes&gt;" in app.status.value
    assert app.painter.image_width == 50  # the previous image stays


def test_auto_mode_without_event_loop_runs_at_once() -> None:
    """With auto ticked and no running event loop, each stroke triggers an inpaint immediately."""
    app = InpaintApp(image=checker_image(), inpaint_fn=mean_fill)
    app.painter.set_strokes([RECT])
    assert app.result is None
    app.auto_checkbox.value = True
    app.painter.set_strokes([BRUSH])
    assert app.result is not None and app.result_mask.sum() == app.mask.sum()


def test_auto_mode_is_debounced_in_a_kernel_loop() -> None:
    """Inside an event loop (as in a kernel), a burst of strokes gives one inpaint after the debounce delay."""
    calls = []

    def counting(image: Image.Image, mask: Image.Image) -> Image.Image:
        calls.append(int((np.asarray(mask) > 0).sum()))
        return mean_fill(image, mask)

    app = InpaintApp(image=checker_image(), inpaint_fn=counting, debounce=0.05)
    app.auto_checkbox.value = True

    async def burst() -> None:
        app.painter.set_strokes([BRUSH])
        app.painter.add_stroke(RECT)
        assert calls == []
        await asyncio.sleep(0.3)

    asyncio.run(burst())
    assert calls == [int(app.mask.sum())]


def test_default_inpaint_loads_the_model_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without inpaint_fn, the app calls csa_lib.inference (load_model once, then inpaint)."""
    from csa_lib import inference

    loads = []
    monkeypatch.setattr(inference, "load_model", lambda path=None: loads.append(path) or "MODEL")
    monkeypatch.setattr(inference, "inpaint", lambda model, image, mask: mean_fill(image, mask) if model == "MODEL"
                        else None)
    app = InpaintApp(image=checker_image())
    assert loads == []
    app.painter.set_strokes([RECT])
    app.inpaint_button.click()
    app.inpaint_button.click()
    assert loads == [None] and app.model == "MODEL" and app.result is not None


def test_upload_button_has_a_plain_label() -> None:
    """ipywidgets draws "description (count)"; the painter's CSS replaces that text with UPLOAD_LABEL."""
    import re

    from csa_lib.notebook import mask_painter

    app = InpaintApp(image=checker_image(), inpaint_fn=mean_fill)
    assert "csa-upload" in app.upload._dom_classes and app.upload.description == mask_painter.UPLOAD_LABEL
    rule = re.search(r"\.csa-upload\.widget-upload::after \{ content: \"([^\"]*)\"", mask_painter._CSS)
    shown = re.sub(r"\\([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), rule.group(1))
    assert shown == mask_painter.UPLOAD_LABEL == "Upload a photo\u2026"
    assert re.search(r"\.csa-upload\.widget-upload \{ font-size: 0; \}", mask_painter._CSS)  # hides "... (0)"


def test_strokes_through_the_synced_trait_are_validated_and_capped() -> None:
    """The browser's path (`set_state`, as a comm message applies it) checks strokes as `set_strokes` does."""
    painter = MaskPainter(checker_image())  # 100 x 80: the diagonal is about 128 px
    diagonal = math.hypot(100, 80)
    painter.set_state({"strokes": [{"tool": "brush", "size": 1e6, "points": [[5, 5]]}]})
    assert painter.strokes[0]["size"] == pytest.approx(diagonal) and painter.mask.all()
    painter.set_strokes([{"tool": "brush", "size": 1e9, "points": [[5, 5]]}])
    assert painter.strokes[0]["size"] == pytest.approx(diagonal)
    painter.brush_size = 10 ** 7
    assert painter.brush_size == int(diagonal)
    before = list(painter.strokes)
    for bad, why in (({"tool": "spray", "size": 3, "points": [[1, 1]]}, "tool"),
                     ({"tool": "brush", "size": "huge", "points": [[1, 1]]}, "size"),
                     ({"tool": "brush", "size": 3, "points": [[1, float("nan")]]}, "points"),
                     ({"tool": "rect", "size": 1, "points": [[1, 1]]}, "rect")):
        painter.set_state({"strokes": [*before, bad]})  # must not raise out of the comm handler
        assert painter.strokes == before
        assert painter.error.startswith("Stroke refused") and why in painter.error
    painter.set_state({"strokes": [*before, BRUSH]})
    assert painter.error == "" and len(painter.strokes) == 2


def test_errors_in_auto_mode_and_refused_strokes_show_in_the_status_line() -> None:
    def broken(image: Image.Image, mask: Image.Image) -> Image.Image:
        raise RuntimeError("model exploded")

    app = InpaintApp(image=checker_image(), inpaint_fn=broken)
    app.auto_checkbox.value = True
    app.painter.set_state({"strokes": [{"tool": "laser", "size": 3, "points": [[1, 1]]}]})
    assert "Stroke refused" in app.status.value and "laser" in app.status.value
    app.painter.set_state({"strokes": [BRUSH]})  # auto mode inpaints from the observer: the error is shown
    assert "model exploded" in app.status.value and "#c00000" in app.status.value
