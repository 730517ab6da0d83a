"""The README's draw_mask picture: the MaskPainter in JupyterLab with the demo weights, three strokes, Inpaint.

Reuses the browser test's JupyterLab + Playwright harness (tests/test_browser_mask_painter.py) with
the shipped model and the astronaut instead of its stand-in; needs Debian's chromium (`make
browser-deps`). Writes docs/images/nb_draw_mask.png.

    python scripts/readme_draw_mask_picture.py
"""
from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import test_browser_mask_painter as T  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


SETUP_CELL = f"""\
from csa_lib.inference import load_model
from csa_lib.notebook.inpaint_app import InpaintApp
app = InpaintApp(load_model(device="cpu"), "{REPO}/data/samples/images/astronaut.png", output_dir="outputs")
app.painter.brush_size = 9
app
"""


def main() -> None:
    """Start JupyterLab in a temporary folder, paint three strokes, press Inpaint, screenshot the widget."""
    root = Path(tempfile.mkdtemp())
    (root / T.NOTEBOOK).write_text(json.dumps(T._notebook(SETUP_CELL)))
    token = secrets.token_hex(16)
    proc, base, log = T._start_server(root, token)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=T.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(60_000)
            panel, cells, box = T._open_painter(page, base, token)
            T._drag(page, box, (0.28, 0.24), (0.42, 0.36))  # a stroke across the face
            T._drag(page, box, (0.55, 0.62), (0.80, 0.68))  # one over the chest
            panel.locator(".csa-mp-btn[data-tool='rect']").click()
            T._drag(page, box, (0.08, 0.55), (0.30, 0.80))  # a box on the arm
            panel.locator(".csa-mp-info").filter(has_text="3 strokes").wait_for()
            panel.get_by_role("button", name="Inpaint", exact=True).click()
            panel.locator(".widget-html").filter(has_text="Inpainted").wait_for(timeout=60_000)
            panel.locator("img.widget-image").wait_for()
            page.wait_for_timeout(500)
            cells.nth(0).locator(".jp-OutputArea-output").screenshot(path=str(REPO / "docs" / "images" / "nb_draw_mask.png"))
            browser.close()
    finally:
        T._stop_server(proc, base, token)
    print("wrote docs/images/nb_draw_mask.png")


if __name__ == "__main__":
    main()
