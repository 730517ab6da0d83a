"""The inpainting app: `InpaintApp`, the mask painter beside its result (paint, inpaint, repeat).

Paint a hole on the `mask_painter.MaskPainter`, press Inpaint (or tick auto, which inpaints a moment
after each stroke), see the fill beside the input; use the result as the next input, save the PNGs,
or upload a photo of your own.
"""
from __future__ import annotations

import asyncio
import html
import os
import time
from pathlib import Path
from typing import Any, Callable

import ipywidgets as W
import numpy as np
from PIL import Image

from csa_lib import holes
from csa_lib.imageio import ImageLike

from .. import inference
from .mask_painter import PREVIEW_MAX, UPLOAD_LABEL, MaskPainter, load_image, png_bytes

InpaintFn = Callable[[Image.Image, Image.Image], Image.Image]


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
