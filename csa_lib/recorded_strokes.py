"""Recorded strokes -> a hole mask: `strokes_to_mask`, the one rasteriser of what the mask painter records.

A stroke is ``{"tool": "brush" | "eraser" | "rect", "size": r, "points": [[x, y], ...]}`` in the
image's own pixel coordinates; `csa_lib.notebook.mask_painter` records them in the browser and the
kernel rasterises them here, at the image's resolution. The mask follows `csa_lib.masks`'s convention:
float32, 1 = hole.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from csa_lib import holes

__all__ = ["strokes_to_mask"]


def strokes_to_mask(strokes: Sequence[Mapping[str, Any]], height: int, width: int) -> np.ndarray:
    """Rasterise recorded strokes, in order, into a float32 (height, width) mask, 1 = hole.

    Each stroke is ``{"tool": "brush" | "eraser" | "rect", "size": r, "points": [[x, y], ...]}`` in image
    pixel coordinates (x = column, y = row). Brush paints 1 and eraser paints 0, both as lines of width
    ``2r`` with round caps and joints (a disc of radius ``r`` at every point). ``rect`` fills 1 over the
    box between its two corner points, columns ``round(min x) .. round(max x) - 1`` and rows likewise
    (so ``[[0, 0], [width, height]]`` covers the whole image); its ``size`` is ignored.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}")
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for number, stroke in enumerate(strokes):
        tool = stroke.get("tool")
        points = [(float(p[0]), float(p[1])) for p in stroke.get("points", [])]
        if tool == "rect":
            if len(points) != 2:
                raise ValueError(f"stroke {number}: a rect needs exactly two corner points, got {len(points)}")
            (xa, ya), (xb, yb) = points
            x0, x1 = round(min(xa, xb)), round(max(xa, xb))
            y0, y1 = round(min(ya, yb)), round(max(ya, yb))
            if x1 > x0 and y1 > y0:
                draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
        elif tool in ("brush", "eraser"):
            fill = 255 if tool == "brush" else 0
            radius = float(stroke.get("size", 1))
            if radius <= 0:
                raise ValueError(f"stroke {number}: size must be positive, got {radius}")
            if len(points) > 1:
                draw.line(points, fill=fill, width=max(1, round(2 * radius)))
            for x, y in points:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)
        else:
            raise ValueError(f"stroke {number}: unknown tool {tool!r} (use 'brush', 'eraser' or 'rect')")
    return holes.hole_of(canvas).astype(np.float32)  # (height, width)
