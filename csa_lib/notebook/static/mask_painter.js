const TOOLS = [["brush", "Brush"], ["eraser", "Eraser"], ["rect", "Rectangle"]];

// A new element of `tag` with the class `className` ("" for none).
function makeElement(tag, className) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

function makeButton(label, title) {
  const b = makeElement("button", "csa-mp-btn");
  b.type = "button"; b.textContent = label; b.title = title;
  return b;
}

const round2 = (v) => Math.round(v * 100) / 100;

// Paint one stroke in image pixel units (the context's transform maps them to the canvas), with the
// rasteriser's conventions: brush points are pixel centres (pixel i is centred on i, so shift by 0.5);
// rect corners are pixel edges, snapped with Math.round (columns round(min x) .. round(max x) - 1).
function drawStroke(ctx, stroke) {
  const pts = stroke.points || [];
  if (!pts.length) return;
  ctx.globalCompositeOperation = stroke.tool === "eraser" ? "destination-out" : "source-over";
  if (stroke.tool === "rect") {
    const a = pts[0], b = pts[pts.length - 1];
    const x0 = Math.round(Math.min(a[0], b[0])), y0 = Math.round(Math.min(a[1], b[1]));
    const x1 = Math.round(Math.max(a[0], b[0])), y1 = Math.round(Math.max(a[1], b[1]));
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    return;
  }
  const r = Math.max(Number(stroke.size) || 1, 0.5);
  ctx.beginPath();
  if (pts.length === 1) {
    ctx.arc(pts[0][0] + 0.5, pts[0][1] + 0.5, r, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.lineWidth = 2 * r; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.moveTo(pts[0][0] + 0.5, pts[0][1] + 0.5);
  for (const p of pts.slice(1)) ctx.lineTo(p[0] + 0.5, p[1] + 0.5);
  ctx.stroke();
}

function render({ model, el }) {
  // Set a model attribute and send it to Python: every change the front end makes goes this way.
  const commit = (key, value) => { model.set(key, value); model.save_changes(); };
  const root = makeElement("div", "csa-mp");
  const toolbar = makeElement("div", "csa-mp-toolbar");
  const toolButtons = {};
  for (const [tool, label] of TOOLS) {
    const b = makeButton(label, `${label} tool`);
    b.dataset.tool = tool;
    b.addEventListener("click", () => commit("tool", tool));
    toolButtons[tool] = b;
    toolbar.appendChild(b);
  }
  const sizeLabel = makeElement("label", "");
  sizeLabel.textContent = "size";
  const size = makeElement("input", "csa-mp-size");
  size.type = "range"; size.min = "1"; size.title = "brush radius (image pixels)";
  const sizeValue = makeElement("span", "");
  size.addEventListener("input", () => commit("brush_size", Number(size.value)));
  const undo = makeButton("Undo", "remove the last stroke");
  undo.addEventListener("click", () => commit("strokes", model.get("strokes").slice(0, -1)));
  const clear = makeButton("Clear", "remove all strokes");
  clear.addEventListener("click", () => commit("strokes", []));
  toolbar.append(sizeLabel, size, sizeValue, undo, clear);

  const stage = makeElement("div", "csa-mp-stage");
  const canvas = makeElement("canvas", "csa-mp-canvas");
  stage.appendChild(canvas);
  const error = makeElement("div", "csa-mp-error");
  const info = makeElement("div", "csa-mp-info");
  root.append(toolbar, stage, error, info);
  el.appendChild(root);

  const ctx = canvas.getContext("2d");
  const maskCanvas = document.createElement("canvas");
  const mctx = maskCanvas.getContext("2d");
  const img = new Image();
  let imgReady = false;
  let current = null;   // the stroke being drawn, in image pixels
  let hover = null;     // pointer position, in image pixels
  let pending = false;

  const imageSize = () => [model.get("image_width"), model.get("image_height")];

  function layout() {
    const [w, h] = [model.get("display_width"), model.get("display_height")];
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${w}px`;
    for (const line of [error, info]) line.style.maxWidth = `${Math.max(w, 320)}px`;  // long messages wrap
    canvas.width = Math.max(1, Math.round(w * dpr));
    canvas.height = Math.max(1, Math.round(h * dpr));
    maskCanvas.width = canvas.width; maskCanvas.height = canvas.height;
    const [iw, ih] = imageSize();
    size.max = String(Math.max(8, Math.round(Math.max(iw, ih) / 4)));
    requestDraw();
  }

  function draw() {
    pending = false;
    const [iw, ih] = imageSize();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!imgReady || !iw || !ih) return;
    const sx = canvas.width / iw, sy = canvas.height / ih;
    ctx.imageSmoothingEnabled = sx < 1;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    mctx.setTransform(1, 0, 0, 1, 0, 0);
    mctx.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
    mctx.setTransform(sx, 0, 0, sy, 0, 0);
    mctx.fillStyle = mctx.strokeStyle = model.get("overlay_color");
    for (const s of model.get("strokes")) drawStroke(mctx, s);
    if (current) drawStroke(mctx, current);
    mctx.globalCompositeOperation = "source-over";
    ctx.globalAlpha = model.get("overlay_opacity");
    ctx.drawImage(maskCanvas, 0, 0);
    ctx.globalAlpha = 1;
    if (hover && !current && model.get("tool") !== "rect") {
      ctx.setTransform(sx, 0, 0, sy, 0.5 * sx, 0.5 * sy);
      ctx.beginPath();
      ctx.arc(hover[0], hover[1], model.get("brush_size"), 0, 2 * Math.PI);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.lineWidth = 1.5; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.stroke();
      ctx.lineWidth = 0.75; ctx.strokeStyle = "rgba(0,0,0,0.9)"; ctx.stroke();
    }
  }

  function requestDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }

  // CSS pixels of the pointer -> image pixels: pixel edges for rect corners, pixel centres for brush points.
  function toImage(ev, tool) {
    const r = canvas.getBoundingClientRect();
    const [iw, ih] = imageSize();
    const shift = tool === "rect" ? 0 : 0.5;
    return [round2((ev.clientX - r.left) * iw / r.width - shift), round2((ev.clientY - r.top) * ih / r.height - shift)];
  }

  function setError(message) {
    if (model.get("error") !== message) commit("error", message);
  }

  function loadImage() {
    imgReady = false;
    canvas.dataset.ready = "0";
    const data = model.get("image_data");
    if (data) img.src = data; else requestDraw();
    updateInfo();
  }
  img.onload = () => { imgReady = true; canvas.dataset.ready = "1"; requestDraw(); };
  img.onerror = () => { if (model.get("image_data")) setError("The browser could not decode this image."); };

  function updateTools() {
    for (const [tool, b] of Object.entries(toolButtons)) b.classList.toggle("active", tool === model.get("tool"));
    size.value = String(model.get("brush_size"));
    sizeValue.textContent = `${model.get("brush_size")} px`;
    requestDraw();
  }

  function updateInfo() {
    const [iw, ih] = imageSize();
    const n = model.get("strokes").length;
    const percent = Math.round(100 * model.get("display_width") / iw);
    const strokes = `${n} stroke${n === 1 ? "" : "s"}`;
    info.textContent = iw ? `${iw}\u00d7${ih} px, shown at ${percent}%, ${strokes}` : "No image loaded.";
  }

  function updateError() {
    const message = model.get("error");
    error.textContent = message;
    error.style.display = message ? "block" : "none";
  }

  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || !imgReady) return;
    ev.preventDefault();
    canvas.setPointerCapture(ev.pointerId);
    const tool = model.get("tool");
    const p = toImage(ev, tool);
    current = { tool, size: model.get("brush_size"), points: tool === "rect" ? [p, p] : [p] };
    requestDraw();
  });
  canvas.addEventListener("pointermove", (ev) => {
    const p = toImage(ev, current ? current.tool : "brush");
    hover = current ? null : p;
    if (current) {
      if (current.tool === "rect") current.points[1] = p;
      else {
        const last = current.points[current.points.length - 1];
        if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 0.25) current.points.push(p);
      }
    }
    requestDraw();
  });
  const finish = () => {
    if (!current) return;
    const stroke = current;
    current = null;
    commit("strokes", [...model.get("strokes"), stroke]);
    requestDraw();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  canvas.addEventListener("pointerleave", () => { hover = null; requestDraw(); });

  const handlers = {
    "change:image_data": loadImage,
    "change:display_width": layout,
    "change:display_height": layout,
    "change:strokes": () => { updateInfo(); requestDraw(); },
    "change:tool": updateTools,
    "change:brush_size": updateTools,
    "change:overlay_color": requestDraw,
    "change:overlay_opacity": requestDraw,
    "change:error": updateError,
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);
  layout(); updateTools(); updateError(); loadImage();
  return () => { for (const [event, fn] of Object.entries(handlers)) model.off(event, fn); };
}

export default { render };
