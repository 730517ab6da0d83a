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


ANSWER_FIRST_LINE = re.compile(r"^# Answer to exercise (\d+) \(folded")
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.\*\*", re.MULTILINE)
MIN_EXERCISES = {"walkthrough.ipynb": 8, "attention_maps.ipynb": 3}
FOLDED = re.compile(r'^<details class="csa-answer"><summary>')


def _called(source: str) -> list[str]:
    """Names of the functions a cell calls (f(...) and obj.f(...))."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            names.append(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_answers_stay_folded(path: Path):
    """The rule for answers (csa_lib.notebook.teaching): a code cell tagged "answer" with its source hidden, a first
    line that gives nothing away, nothing printed, and a last line `answer(...)` whose output is a closed
    <details>; stored outputs are that and nothing else. Every exercise has its answer right below it."""
    cells = _read(path).cells
    for index, cell in enumerate(cells):
        source, where = _text(cell.source), f"{_id(path)} cell {index}"
        tagged = "answer" in cell.metadata.get("tags", [])
        if cell.cell_type != "code":
            assert not tagged, f"{where}: a markdown answer shows its first line when collapsed; use teaching.answer"
            assert "<details" not in source, f"{where}: raw <details> in markdown; answers go through teaching.answer"
            continue
        called = _called(source)
        assert tagged == ("answer" in called), f"{where}: answer(...) belongs in a cell tagged 'answer', and back"
        if not tagged:
            continue
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, f"{where}: jupyter.source_hidden"
        assert ANSWER_FIRST_LINE.match(source), f"{where}: first line must be '# Answer to exercise N (folded...'"
        last = ast.parse(source).body[-1]
        assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and \
            getattr(last.value.func, "id", None) == "answer", f"{where}: the last line must be answer(...)"
        assert not {"print", "display", "plot_maps"} & set(called), f"{where}: shows something outside the fold"
        assert len(cell.outputs) <= 1, f"{where}: an answer cell has one output, the folded answer"
        for out in cell.outputs:
            page = _text(out.get("data", {}).get("text/html", ""))
            assert out.output_type == "execute_result" and FOLDED.match(page), f"{where}: stored output is not folded"
            opening = page[:page.index(">") + 1]
            assert " open" not in opening, f"{where}: the stored <details> is open"
    numbers = []
    for index, cell in enumerate(cells):
        for found in EXERCISE.finditer(_text(cell.source)) if cell.cell_type == "markdown" else []:
            n = int(found[1])
            numbers.append(n)
            below = cells[index + 1] if index + 1 < len(cells) else None
            match = below is not None and ANSWER_FIRST_LINE.match(_text(below.source))
            assert match and int(match[1]) == n, f"{_id(path)} cell {index}: exercise {n} has no answer cell below it"
    assert numbers == sorted(set(numbers)), f"{_id(path)}: exercises out of order or repeated: {numbers}"
    assert len(numbers) >= MIN_EXERCISES.get(path.name, 0), f"{_id(path)}: only {len(numbers)} exercises"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_no_notebook_deletes_a_folder_tree(path: Path):
    for index, cell in enumerate(_read(path).cells):
        if cell.cell_type == "code":
            assert "rmtree" not in _text(cell.source), \
                f"{_id(path)} cell {index}: deletes a folder tree (use csa_lib.utils.fresh_run_dir)"
