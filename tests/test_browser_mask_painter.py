"""Real-browser test: paint on the MaskPainter in JupyterLab (headless Debian chromium) and inpaint.

A generated notebook shows an `InpaintApp` with a fake inpaint function on a synthetic 640x480
image (shown at 512x384, so CSS pixels and image pixels differ). Playwright drags a brush stroke
across the canvas and clicks "Inpaint", then ticks "auto" and drags a rectangle (the kernel
inpaints again by itself, debounced), and a second cell prints what the kernel received. The areas
must match the drag geometry converted to image pixels, and the result must differ from the input
exactly inside the mask. Last, a non-image upload must show a red message inside the painter.
Screenshots go to outputs/test-artifacts/ (git-ignored).
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real Chromium: tens of seconds

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "outputs" / "test-artifacts"
NOTEBOOK = "mask_painter_browser.ipynb"
IMAGE_W, IMAGE_H, BRUSH = 640, 480, 12
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SETUP_CELL = f"""\
import numpy as np
from PIL import Image
from csa_lib.notebook.inpaint_app import InpaintApp

yy, xx = np.mgrid[0:{IMAGE_H}, 0:{IMAGE_W}]
checker = ((xx // 40 + yy // 40) % 2) * 200 + 30  # blue is 30 or 230, never the mean
image = np.stack([xx * 255 // {IMAGE_W - 1}, yy * 255 // {IMAGE_H - 1}, checker], axis=-1).astype(np.uint8)


def fake_inpaint(image, mask):
    pixels = np.array(image)
    hole = np.asarray(mask) > 0
    pixels[hole] = pixels[~hole].mean(axis=0).astype(np.uint8)
    return Image.fromarray(pixels)


app = InpaintApp(image=image, inpaint_fn=fake_inpaint, output_dir="outputs")
app.painter.brush_size = {BRUSH}
app
"""

CHECK_CELL = """\
from csa_lib.recorded_strokes import strokes_to_mask

mask = app.painter.mask
print("TOOLS=" + ",".join(s["tool"] for s in app.painter.strokes))
for s in app.painter.strokes:
    print(f"AREA_{s['tool'].upper()}={int(strokes_to_mask([s], *mask.shape).sum())}")
print(f"MASK_SUM={int(mask.sum())}")
if app.result is None:
    print("RESULT=None")
else:
    changed = (np.asarray(app.result) != np.asarray(app.painter.image)).any(axis=-1)
    print(f"INSIDE_CHANGED={int((changed & mask).sum())}")
    print(f"OUTSIDE_CHANGED={int((changed & ~mask).sum())}")
"""


def _notebook(setup: str = SETUP_CELL) -> dict:
    """A two-cell notebook (`setup` + the check cell) with a python3 kernelspec."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [],
              "source": src} for i, src in enumerate([setup, CHECK_CELL])]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


def _free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    """Call the Jupyter server REST API and decode its JSON (None for an empty body)."""
    request = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _start_server(root: Path, token: str) -> tuple[subprocess.Popen, str, Path]:
    """Start JupyterLab on a free port serving `root`; return (process, base URL, log file)."""
    port = _free_port()
    settings = root / ".jupyter" / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(root / ".jupyter" / "config"),
               JUPYTER_RUNTIME_DIR=str(root / ".jupyter" / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".jupyter" / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(root / ".jupyter" / "lab-settings"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log = root / ".jupyter" / "server.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0", "--LabApp.extension_manager=readonly"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
        try:
            _api(base, token, "/api/status")
            return proc, base, log
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    _stop_server(proc, base, token)
    raise RuntimeError(f"jupyter lab did not answer in 120 s:\n{log.read_text()[-3000:]}")


def _stop_server(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server and its kernels down; kill the server's process group if it lingers."""
    try:
        _api(base, token, "/api/shutdown", method="POST")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_kernel_connected(base: str, token: str, timeout: float = 90) -> None:
    """Wait until the notebook's kernel is idle and the page's websocket is connected to it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for session in _api(base, token, "/api/sessions"):
            kernel = session.get("kernel") or {}
            if (session["path"].endswith(NOTEBOOK) and kernel.get("execution_state") == "idle"
                    and kernel.get("connections", 0) > 0):
                return
        time.sleep(0.25)
    pytest.fail("the notebook's kernel never became idle and connected")


def _run_cell(page, cell, tries: int = 4) -> None:
    """Shift+Enter on a cell until its prompt shows it queued or ran (a keypress can be dropped)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(tries):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            cell.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[(\d+|\*)\]")).wait_for(timeout=8_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail("the cell was never executed")


def _open_painter(page, base: str, token: str) -> tuple[Any, Any, dict]:
    """Open the notebook, run its setup cell, wait for the painter: (notebook panel, its cells, canvas box in CSS px)."""
    page.goto(f"{base}/lab/workspaces/{uuid.uuid4().hex}/tree/{NOTEBOOK}?reset&token={token}")
    panel = page.locator(".jp-NotebookPanel:visible")
    cells = panel.locator(".jp-Notebook .jp-Cell")
    cells.nth(1).wait_for()
    _wait_kernel_connected(base, token)
    _run_cell(page, cells.nth(0))
    canvas = panel.locator(".csa-mp-canvas[data-ready='1']")
    canvas.wait_for(timeout=90_000)
    canvas.scroll_into_view_if_needed()
    return panel, cells, canvas.bounding_box()


def _drag(page, box: dict, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    """Press, move and release the mouse between two points given as fractions of `box`; return them in CSS px."""
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in (start, end)]
    page.mouse.move(*points[0])
    page.mouse.down()
    page.mouse.move(*points[1], steps=25)
    page.mouse.up()
    return points


def _values(text: str) -> dict[str, str]:
    """KEY=value lines of a cell's output."""
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.M))


def test_paint_and_inpaint_in_jupyterlab(tmp_path: Path) -> None:
    """Brush and rectangle drags reach the kernel in image pixels; Inpaint (button, then auto) changes just the hole."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

    (tmp_path / NOTEBOOK).write_text(json.dumps(_notebook()))
    token = secrets.token_hex(16)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, base, log = _start_server(tmp_path, token)
    page = None
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1100})
                page.set_default_timeout(60_000)
                panel, cells, box = _open_painter(page, base, token)
                k = IMAGE_W / box["width"]  # image pixels per CSS pixel
                assert abs(box["height"] * k - IMAGE_H) < 2, box

                # A brush stroke across the upper part, then the Inpaint button.
                (bx0, by0), (bx1, by1) = _drag(page, box, (0.15, 0.20), (0.85, 0.32))
                panel.locator(".csa-mp-info").filter(has_text="1 stroke").wait_for()
                panel.get_by_role("button", name="Inpaint", exact=True).click()
                status = panel.locator(".widget-html").filter(has_text="Inpainted")
                status.wait_for(timeout=60_000)
                first_status = status.inner_text()

                # Tick "auto", then drag a rectangle in the lower part: the kernel inpaints by itself.
                panel.locator(".widget-checkbox input[type='checkbox']").check()
                panel.locator(".csa-mp-btn[data-tool='rect']").click()
                (rx0, ry0), (rx1, ry1) = _drag(page, box, (0.25, 0.55), (0.60, 0.85))
                panel.locator(".csa-mp-info").filter(has_text="2 strokes").wait_for()
                sync_api.expect(status).not_to_have_text(first_status, timeout=60_000)
                panel.locator("img.widget-image").wait_for()
                page.wait_for_timeout(300)  # let the result image paint before the screenshot
                cells.nth(0).locator(".jp-OutputArea-output").screenshot(path=str(ARTIFACTS / "mask_painter.png"))

                _run_cell(page, cells.nth(1))
                output = cells.nth(1).locator(".jp-OutputArea-output").filter(has_text="MASK_SUM")
                output.wait_for(timeout=60_000)
                values = _values(output.inner_text())

                # A non-image upload shows a red message inside the painter; the widget stays alive.
                bad = tmp_path / "notes.png"
                bad.write_text("this is not an image")
                with page.expect_file_chooser() as chooser:  # the widget's <input type=file> is detached
                    panel.locator("button.widget-upload").click()
                chooser.value.set_files(str(bad))
                error = panel.locator(".csa-mp-error").filter(has_text="Could not load 'notes.png'")
                error.wait_for(timeout=30_000)
                error_color = error.evaluate("e => getComputedStyle(e).color")
                upload_label = panel.locator("button.widget-upload").evaluate(
                    "b => [getComputedStyle(b, '::after').content, getComputedStyle(b).fontSize]")
                cells.nth(0).locator(".jp-OutputArea-output").screenshot(
                    path=str(ARTIFACTS / "mask_painter_bad_upload.png"))
            finally:
                if page is not None and not (ARTIFACTS / "mask_painter.png").exists():
                    page.screenshot(path=str(ARTIFACTS / "mask_painter_failure.png"), full_page=True)
                browser.close()
    finally:
        _stop_server(proc, base, token)

    assert values.get("TOOLS") == "brush,rect", values
    length = math.hypot(bx1 - bx0, by1 - by0) * k  # drag length in image pixels
    brush_area = 2 * BRUSH * length + math.pi * BRUSH ** 2  # a capsule of radius BRUSH
    rect_area = (round((rx1 - box["x"]) * k) - round((rx0 - box["x"]) * k)) * \
                (round((ry1 - box["y"]) * k) - round((ry0 - box["y"]) * k))
    assert abs(int(values["AREA_BRUSH"]) - brush_area) < 0.06 * brush_area, (values, brush_area)
    assert abs(int(values["AREA_RECT"]) - rect_area) < 0.03 * rect_area, (values, rect_area)
    mask_sum = int(values["MASK_SUM"])
    assert mask_sum == int(values["AREA_BRUSH"]) + int(values["AREA_RECT"]), values  # the two do not overlap
    assert values.get("RESULT") != "None", values
    assert int(values["OUTSIDE_CHANGED"]) == 0, values
    assert int(values["INSIDE_CHANGED"]) == mask_sum, values
    assert error_color == "rgb(192, 0, 0)", error_color
    assert upload_label == ['"Upload a photo\u2026"', "0px"], upload_label  # no "Load image (0)"
