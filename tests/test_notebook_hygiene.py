"""Notebook hygiene: valid nbformat, no absolute paths or installs, clean outputs, small files, SMOKE first.

Every notebook under `notebooks/` is checked on its own (parametrised), so a new notebook is covered
as soon as it is added. Only the walkthrough and attention-map notebooks may keep outputs (STYLE.md,
"CI-friendly notebooks"); those outputs must not hold errors, tracebacks or absolute paths.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
MAY_KEEP_OUTPUTS = {"walkthrough.ipynb", "attention_maps.ipynb"}
MAX_BYTES = 2 * 1024 * 1024
MIN_NOTEBOOKS = 5

# /home, /work, /root, /tmp as the start of a path (not "../work" or "data_root"), and Windows drives
# (C:\\ in a string literal, C:\Users\..., C:\file.txt; not LaTeX such as $D:\frac$).
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/(?:home|work|root|tmp)(?![\w-])"
                           r"|(?<![\w$\\{])[A-Za-z]:(?:\\\\|\\[\w .-]+[\\.])")
INSTALL = re.compile(r"^\s*[!%]\s*pip\b|^\s*%\s*conda\b|^\s*!\s*conda\b", re.MULTILINE)
TEXT_MIME = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")


def _id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOK_DIR))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output_texts(cell: nbformat.NotebookNode) -> list[str]:
    """The readable text of a code cell's outputs (streams, tracebacks, text/* data; images skipped)."""
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(_text(out.get("text", "")))
        elif out.get("output_type") == "error":
            texts.append("\n".join(out.get("traceback", [])))
        for mime in TEXT_MIME:
            if mime in out.get("data", {}):
                texts.append(_text(out["data"][mime]))
    return texts


def _imported_names(source: str) -> set[str]:
    """Names bound by the import statements of a cell (IPython magics and shell lines dropped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(name for alias in node.names for name in (alias.name, alias.asname) if name)
    return names


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= MIN_NOTEBOOKS, f"expected at least {MIN_NOTEBOOKS} notebooks, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_valid_nbformat_and_small(path: Path):
    assert path.stat().st_size < MAX_BYTES, f"{_id(path)} is {path.stat().st_size / 1e6:.1f} MB (limit 2 MB)"
    nbformat.validate(_read(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_absolute_paths_or_installs(path: Path):
    for index, cell in enumerate(_read(path).cells):
        source = _text(cell.source)
        where = f"{_id(path)} cell {index}"
        assert not ABSOLUTE_PATH.search(source), f"{where}: absolute path {ABSOLUTE_PATH.search(source)[0]!r}"
        if cell.cell_type == "code":
            assert not INSTALL.search(source), f"{where}: installs packages (put them in pyproject.toml)"
            for text in _output_texts(cell):
                found = ABSOLUTE_PATH.search(text)
                assert not found, f"{where}: absolute path {found[0]!r} in an output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_errors_in_outputs(path: Path):
    for index, cell in enumerate(_read(path).cells):
        for out in cell.get("outputs", []):
            where = f"{_id(path)} cell {index}"
            assert out.get("output_type") != "error", f"{where}: stale error output {out.get('ename')}"
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                assert "Traceback" not in _text(out.get("text", "")), f"{where}: traceback on stderr"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in MAY_KEEP_OUTPUTS], ids=_id)
def test_committed_clean(path: Path):
    for index, cell in enumerate(_read(path).cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{_id(path)} cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{_id(path)} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_first_code_cell_imports_smoke(path: Path):
    code = [cell for cell in _read(path).cells if cell.cell_type == "code"]
    assert code, f"{_id(path)} has no code cell"
    names = _imported_names(_text(code[0].source))
    assert "SMOKE" in names, f"{_id(path)}: the first code cell must import SMOKE (from csa_lib.config)"
    assert "*" not in names, f"{_id(path)}: no star imports"


def test_no_pyc_files_tracked():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tracked = [f for f in listed.splitlines() if f.endswith((".pyc", ".pyo")) or "__pycache__/" in f]
    assert not tracked, f"compiled Python files are tracked in git: {tracked[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_title_cell_comes_first(path: Path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown" and _text(first.source).startswith("# "), \
        f"{_id(path)}: the first cell must be the title (a '# ...' markdown cell), above the imports"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_answers_hide_in_collapsed_cells_not_html(path: Path):
    cells = _read(path).cells
    for index, cell in enumerate(cells):
        source = _text(cell.source)
        assert "<details" not in source, f"{_id(path)} cell {index}: raw <details> HTML (JupyterLab shows it as is)"
        if "answer" in cell.metadata.get("tags", []):
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, \
                f"{_id(path)} cell {index}: an answer cell must be collapsed (jupyter.source_hidden)"
    if path.name == "walkthrough.ipynb":
        answers = [c for c in cells if c.cell_type == "markdown" and "answer" in c.metadata.get("tags", [])]
        assert len(answers) >= 6 and all(_text(c.source).startswith("**Answer.**") for c in answers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_notebook_deletes_a_folder_tree(path: Path):
    for index, cell in enumerate(_read(path).cells):
        if cell.cell_type == "code":
            assert "rmtree" not in _text(cell.source), \
                f"{_id(path)} cell {index}: deletes a folder tree (use csa_lib.utils.fresh_run_dir)"
