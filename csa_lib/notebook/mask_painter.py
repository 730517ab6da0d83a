"""The mask painter: `MaskPainter`, a notebook widget to draw a hole mask over an image.

`MaskPainter` is an `anywidget` whose front-end is a plain ES module and a style sheet shipped as
package data (`csa_lib/notebook/static/mask_painter.js` and `.css`), so it needs no build step and runs in
JupyterLab 4, Notebook 7, VS Code and Colab. The browser only records strokes, in the image's own
pixel coordinates (pixel centres at integers); the kernel rasterises them with
`csa_lib.recorded_strokes.strokes_to_mask`, so `painter.mask` is exact at the image's resolution however the
canvas happens to be scaled on screen, and `set_strokes` paints the same mask without a browser.
`inpaint_app.InpaintApp` puts the painter beside its result (paint, inpaint, repeat).
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as T
from PIL import Image

from csa_lib import holes, imageio
from csa_lib.imageio import ImageLike

from ..recorded_strokes import strokes_to_mask

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
