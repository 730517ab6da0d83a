"""Notebook widgets: `MaskPainter` (draw a hole mask over an image) and `InpaintApp` (paint, inpaint, repeat).

`MaskPainter` is an `anywidget` whose front-end is a plain ES module and a style sheet shipped as
package data (`csa_lib/notebook/static/mask_painter.js` and `.css`), so it needs no build step and runs in
JupyterLab 4, Notebook 7, VS Code and Colab. The browser only records strokes, in the image's own
pixel coordinates (pixel centres at integers); the kernel rasterises them with
`csa_lib.masks.strokes_to_mask`, so `painter.mask` is exact at the image's resolution however the
canvas happens to be scaled on screen, and `set_strokes` paints the same mask without a browser.
"""
from __future__ import annotations

import asyncio
import base64
import html
import io
import os
import time
from pathlib import Path
from typing import Any, Callable

import anywidget
import ipywidgets as W
import numpy as np
import traitlets as T
from PIL import Image

from csa_lib import holes, imageio
from csa_lib.imageio import ImageLike

from .. import inference
from ..masks import strokes_to_mask
InpaintFn = Callable[[Image.Image, Image.Image], Image.Image]

TOOLS = ("brush", "eraser", "rect")
UPLOAD_LABEL = "Upload a photo\u2026"  # the upload button's label (mask_painter.css draws it)
PREVIEW_MAX = 1024  # longest side of the PNG sent to the browser (2x a 512-px canvas, for hi-dpi screens)

# The front-end, shipped as package data. Read as text, not given to anywidget as a Path: a Path
# becomes a class-level FileContents whose change signal keeps every widget alive after close().
STATIC = Path(__file__).with_name("static")
_CSS = (STATIC / "mask_painter.css").read_text(encoding="utf-8")
_ESM = (STATIC / "mask_painter.js").read_text(encoding="utf-8")


def load_image(image: ImageLike) -> Image.Image:
    """A path, encoded bytes, PIL image, array or tensor -> RGB PIL image, read by `csa_lib.imageio`; else ValueError."""
    return Image.fromarray(imageio.read_image(image))


def png_bytes(image: Image.Image, max_side: int | None = None) -> bytes:
    """Encode a PIL image as PNG, first shrinking it so its longest side is at most `max_side`."""
    if max_side is not None and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def display_size(width: int, height: int, max_display: int, min_display: int) -> tuple[int, int]:
    """On-screen canvas size: fit the longest side into `max_display`, enlarge it to `min_display` if smaller."""
    longest = max(width, height)
    scale = min(max_display / longest, max(1.0, min_display / longest))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_stroke(stroke: Any, max_size: float | None = None) -> dict:
    """Validate one stroke dict and return it as plain JSON (floats, lists); its size is capped at `max_size`."""
    if not isinstance(stroke, dict):
        raise ValueError(f"a stroke must be a dict, got {type(stroke).__name__}")
    tool = stroke.get("tool", "brush")
    if tool not in TOOLS:
        raise ValueError(f"stroke tool must be one of {TOOLS}, got {tool!r}")
    try:
        size = float(stroke.get("size", 1))
    except (TypeError, ValueError):
        raise ValueError(f"stroke size must be a number, got {stroke.get('size')!r}") from None
    if not size > 0 or not np.isfinite(size):
        raise ValueError(f"stroke size must be a finite number > 0, got {size}")
    if max_size is not None:
        size = min(size, max_size)  # a radius past the image diagonal paints no more, only costs time
    try:
        points = np.asarray(stroke.get("points", []), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("stroke points must be a non-empty list of finite [x, y] pairs") from None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0 or not np.isfinite(points).all():
        raise ValueError("stroke points must be a non-empty list of finite [x, y] pairs")
    if tool == "rect" and len(points) != 2:
        raise ValueError("a rect stroke needs exactly two corner points (pixel edges)")
    return {"tool": tool, "size": size, "points": points.round(2).tolist()}


class MaskPainter(anywidget.AnyWidget):
    """Paint a hole mask over an image (brush, eraser, rectangle, undo, clear); `.mask` is (H,W) bool, True = hole."""

    _esm = _ESM
    _css = _CSS

    image_data = T.Unicode("").tag(sync=True)          # PNG data URL of a preview (longest side <= PREVIEW_MAX)
    image_width = T.Int(0).tag(sync=True)              # the image's own size: strokes are in these pixels
    image_height = T.Int(0).tag(sync=True)
    display_width = T.Int(0).tag(sync=True)            # canvas size on screen, CSS pixels
    display_height = T.Int(0).tag(sync=True)
    strokes = T.List(T.Dict()).tag(sync=True)          # {"tool", "size" (radius, image px), "points" [[x, y], ...]}
    tool = T.Enum(TOOLS, default_value="brush").tag(sync=True)
    brush_size = T.Int(8).tag(sync=True)               # brush / eraser radius in image pixels
    error = T.Unicode("").tag(sync=True)               # shown in red inside the widget
    overlay_color = T.Unicode("#ff1a1a").tag(sync=True)
    overlay_opacity = T.Float(0.5).tag(sync=True)

    def __init__(self, image: ImageLike | None = None, *, brush_size: int | None = None,
                 max_display: int = 512, min_display: int = 256, **kwargs: Any) -> None:
        """Show `image` (PIL, uint8 array or path) scaled to fit `max_display` CSS pixels; ValueError if unreadable."""
        super().__init__(**kwargs)
        self.max_display, self.min_display = max_display, min_display
        self._image: Image.Image | None = None
        self._mask_cache: np.ndarray | None = None
        self.observe(self._drop_cache, names=["strokes", "image_width", "image_height"])
        if image is not None:
            self.set_image(image)
        if brush_size is not None:
            self.brush_size = brush_size

    @property
    def max_brush(self) -> float:
        """The largest brush radius: the image diagonal (a bigger one covers nothing more)."""
        return max(1.0, float(np.hypot(self.image_width, self.image_height))) if self.image_width else float("inf")

    @T.validate("brush_size")
    def _valid_brush_size(self, proposal: dict) -> int:
        """Keep the brush radius between one pixel and the image diagonal."""
        return int(min(max(1, int(proposal["value"])), self.max_brush))

    @T.validate("strokes")
    def _valid_strokes(self, proposal: dict) -> list:
        """Every stroke, from Python or from the browser, checked as `set_strokes` does (size capped)."""
        try:
            return [_check_stroke(s, self.max_brush) for s in proposal["value"]]
        except ValueError as err:
            raise T.TraitError(str(err)) from err

    def set_state(self, sync_data: dict) -> None:
        """Apply a browser update; a bad stroke is refused, shown in `error`, and the browser re-synced."""
        try:
            super().set_state(sync_data)
        except (T.TraitError, ValueError) as err:
            self.error = f"Stroke refused: {err}"
            self.send_state("strokes")  # the browser drops what the kernel refused
        else:
            if "strokes" in sync_data and self.error.startswith("Stroke refused"):
                self.error = ""

    def _drop_cache(self, _change: dict | None = None) -> None:
        """Forget the rasterised mask after the strokes or the image change."""
        self._mask_cache = None

    def set_image(self, image: ImageLike) -> None:
        """Replace the image (clears strokes and errors); ValueError if it cannot be decoded."""
        pil = load_image(image)
        width, height = pil.size
        resized = (width, height) != (self.image_width, self.image_height)
        self._image = pil
        with self.hold_sync():
            self.strokes = []
            self.error = ""
            self.image_width, self.image_height = width, height
            self.display_width, self.display_height = display_size(width, height, self.max_display, self.min_display)
            if resized:
                self.brush_size = max(2, round(max(width, height) / 24))
            self.image_data = "data:image/png;base64," + base64.b64encode(png_bytes(pil, PREVIEW_MAX)).decode("ascii")
        self._drop_cache()

    @property
    def image(self) -> Image.Image | None:
        """The current image as RGB at full resolution (None before one is set)."""
        return self._image

    @property
    def scale(self) -> float:
        """Screen CSS pixels per image pixel."""
        return self.display_width / self.image_width if self.image_width else 1.0

    def set_strokes(self, strokes: list[dict]) -> None:
        """Replace all strokes (validated); the way to paint without a browser."""
        self.strokes = [_check_stroke(s, self.max_brush) for s in strokes]

    def add_stroke(self, stroke: dict) -> None:
        """Append one stroke."""
        self.strokes = [*self.strokes, _check_stroke(stroke, self.max_brush)]

    def undo(self) -> None:
        """Remove the last stroke."""
        self.strokes = self.strokes[:-1]

    def clear(self) -> None:
        """Remove every stroke."""
        self.strokes = []

    @property
    def mask(self) -> np.ndarray:
        """(H,W) bool mask at the image's resolution, True = hole."""
        if self._mask_cache is None:
            raster = strokes_to_mask(list(self.strokes), self.image_height, self.image_width)
            self._mask_cache = np.asarray(raster) > 0.5
        return self._mask_cache.copy()

    def mask_image(self) -> Image.Image:
        """The mask as a PIL 'L' image, 255 = hole."""
        return holes.mask_image(self.mask)


class InpaintApp(W.VBox):
    """Paint a mask, Inpaint (or tick auto), see the result beside the input; reuse or save it; load your own image."""

    def __init__(self, model: Any = None, image: ImageLike | None = None, inpaint_fn: InpaintFn | None = None,
                 *, output_dir: str | os.PathLike = "outputs", debounce: float = 0.5, max_display: int = 512,
                 **kwargs: Any) -> None:
        """`inpaint_fn(image RGB, mask L) -> RGB` defaults to `inference.inpaint` with `model` (loaded on first use)."""
        self.model = model
        self.inpaint_fn = inpaint_fn
        self.output_dir = Path(output_dir)
        self.debounce = debounce
        self.result: Image.Image | None = None
        self.result_mask: np.ndarray | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._saved = 0

        self.painter = MaskPainter(image, max_display=max_display)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description=UPLOAD_LABEL,
                                   tooltip="choose a photo on this computer to paint on")
        self.upload.add_class("csa-upload")  # the painter's CSS shows UPLOAD_LABEL without the file count
        self.inpaint_button = W.Button(description="Inpaint", button_style="primary", tooltip="fill the painted hole")
        self.auto_checkbox = W.Checkbox(value=False, description="auto", indent=False,
                                        tooltip="inpaint after each stroke", layout=W.Layout(width="auto"))
        self.use_result_button = W.Button(description="Use result as input", tooltip="keep painting over the result")
        self.save_button = W.Button(description="Save", tooltip="write the result, mask and input PNGs")
        self.status = W.HTML()
        self.result_view = W.Image(format="png", layout=W.Layout(display="none"))
        self.result_box = W.VBox([W.HTML("<b>Result</b>"), self.result_view])

        self.inpaint_button.on_click(lambda _b: self._guarded(self.inpaint))
        self.use_result_button.on_click(lambda _b: self._guarded(self.use_result))
        self.save_button.on_click(lambda _b: self._guarded(self.save))
        self.upload.observe(self._on_upload, names="value")
        self.painter.observe(self._on_strokes, names="strokes")
        self.painter.observe(self._on_painter_error, names="error")
        self.painter.observe(self._on_display_size, names=["display_width", "display_height"])
        self._on_display_size()

        buttons = [self.upload, self.inpaint_button, self.auto_checkbox, self.use_result_button, self.save_button]
        toolbar = W.HBox(buttons, layout=W.Layout(flex_flow="row wrap", align_items="center"))
        panes = W.HBox([self.painter, self.result_box], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        super().__init__([toolbar, panes, self.status], **kwargs)
        self._say("Paint the region to fill, then press <b>Inpaint</b>." if image is not None
                  else "Load an image to start.")

    @property
    def mask(self) -> np.ndarray:
        """The painter's current (H,W) bool mask, True = hole."""
        return self.painter.mask

    def _say(self, html: str, error: bool = False) -> None:
        """Show a status line (red when it reports an error)."""
        color = "#c00000" if error else "inherit"
        self.status.value = f'<span style="color:{color}">{html}</span>'

    def _guarded(self, action: Callable[[], Any]) -> None:
        """Run a button action and report any exception in the status line instead of losing it."""
        try:
            action()
        except Exception as err:  # noqa: BLE001 - shown to the user, the widget stays alive
            self._say(html.escape(f"{type(err).__name__}: {err}"), error=True)

    def _on_display_size(self, _change: dict | None = None) -> None:
        """Show the result at the same on-screen size as the canvas."""
        self.result_view.layout.width = f"{self.painter.display_width}px"

    def _resolve_inpaint_fn(self) -> InpaintFn:
        """The injected function, or `csa_lib.inference.inpaint` with the model (loaded now if needed)."""
        if self.inpaint_fn is not None:
            return self.inpaint_fn
        if self.model is None:
            self._say("Loading the model…")
            self.model = inference.load_model()
        model = self.model
        return lambda image, mask: inference.inpaint(model, image, mask)

    def inpaint(self) -> Image.Image | None:
        """Fill the painted hole, keep known pixels exactly, show and return the RGB result (None if nothing to do)."""
        image = self.painter.image
        if image is None:
            self._say("Load an image first.", error=True)
            return None
        mask = self.painter.mask
        if not mask.any():
            self._say("Paint a mask first: the hole is empty.", error=True)
            return None
        fn = self._resolve_inpaint_fn()
        start = time.perf_counter()
        output = fn(image, holes.mask_image(mask))
        output = load_image(output)
        if output.size != image.size:
            output = output.resize(image.size, Image.Resampling.BICUBIC)
        composite = holes.composite(np.asarray(output), np.asarray(image), mask)  # (H, W, 3)
        self.result, self.result_mask = Image.fromarray(composite), mask
        self.result_view.value = png_bytes(self.result, PREVIEW_MAX)
        self.result_view.layout.display = None
        self._say(f"Inpainted {int(mask.sum())} px ({mask.mean():.1%} of the image) "
                  f"in {time.perf_counter() - start:.2f} s.")
        return self.result

    def use_result(self) -> None:
        """Make the last result the new input (strokes cleared) so you can paint over it."""
        if self.result is None:
            self._say("No result yet: press Inpaint first.", error=True)
            return
        self.painter.set_image(self.result)
        self.result, self.result_mask = None, None
        self.result_view.layout.display = "none"
        self._say("The result is the new input: paint more and inpaint again.")

    def save(self) -> dict[str, Path]:
        """Write `<stem>_input.png`, `<stem>_mask.png` (255 = hole) and `<stem>_result.png` into `output_dir`."""
        if self.result is None or self.result_mask is None:
            self._say("Nothing to save yet: press Inpaint first.", error=True)
            return {}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stem = time.strftime("inpaint_%Y%m%d-%H%M%S")
        while any(self.output_dir.glob(f"{stem}*_result.png")):
            self._saved += 1
            stem = f"{time.strftime('inpaint_%Y%m%d-%H%M%S')}-{self._saved}"
        paths = {kind: self.output_dir / f"{stem}_{kind}.png" for kind in ("input", "mask", "result")}
        assert self.painter.image is not None
        self.painter.image.save(paths["input"])
        holes.mask_image(self.result_mask).save(paths["mask"])
        self.result.save(paths["result"])
        self._say(f"Saved <code>{html.escape(str(paths['result']))}</code>, "
                  f"<code>{html.escape(paths['mask'].name)}</code> and "
                  f"<code>{html.escape(paths['input'].name)}</code> (result, mask with 255 = hole, input).")
        return paths

    def load_image_bytes(self, data: bytes, name: str = "upload") -> bool:
        """Load an uploaded file as the new input; on failure show why (widget and status line) and return False."""
        try:
            self.painter.set_image(data)
        except ValueError as err:
            message = f"Could not load {name!r}: {err}."
            self.painter.error = message
            self._say(html.escape(message), error=True)
            return False
        self.result, self.result_mask = None, None
        self.result_view.layout.display = "none"
        self._say(f"Loaded {html.escape(name)} ({self.painter.image_width}\u00d7{self.painter.image_height}).")
        return True

    def _on_upload(self, change: dict) -> None:
        """FileUpload callback: load the newest uploaded file."""
        files = change["new"]
        if files:
            item = files[-1]
            self.load_image_bytes(bytes(item["content"]), str(item.get("name", "upload")))

    def _on_painter_error(self, change: dict) -> None:
        """Show the painter's errors (refused strokes, undecodable images) in the status line too."""
        if change["new"]:
            self._say(html.escape(change["new"]), error=True)

    def _on_strokes(self, _change: dict) -> None:
        """In auto mode, inpaint once the strokes have stopped changing for `debounce` seconds (errors: status line)."""
        self._guarded(self._schedule_auto)

    def _schedule_auto(self) -> None:
        """The body of `_on_strokes`: debounce the auto inpaint (or run it now without an event loop)."""
        if not self.auto_checkbox.value or not self.painter.mask.any():
            return
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (plain Python, tests): run at once
            self._guarded(self.inpaint)
            return
        self._pending = loop.call_later(self.debounce, self._run_pending)

    def _run_pending(self) -> None:
        """Debounced auto-inpaint."""
        self._pending = None
        self._guarded(self.inpaint)
