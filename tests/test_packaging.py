"""Project files agree: environment.yaml vs pyproject.toml, constraints pin every dependency, builds ship package data."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yaml_installs_the_project_with_all_extras():
    env = yaml.safe_load((ROOT / "environment.yaml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    install = next(line for line in pip if line.startswith("-e ."))
    assert set(re.search(r"\[(.*)\]", install).group(1).split(",")) == set(extras)
    assert "-c constraints.txt" in pip


def test_constraints_pin_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for reqs in project["optional-dependencies"].values():
        declared |= {_name(r) for r in reqs}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    assert declared <= set(pins), f"unpinned: {sorted(declared - set(pins))}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_every_spec_reference_points_into_the_repository():
    """The modules cite `docs/csa_spec.md` by section: the file ships with the repository and has every cited section."""
    spec = (ROOT / "docs" / "csa_spec.md").read_text()
    sections = set(re.findall(r"^##+ (\d+(?:\.\d+)?)\. ", spec, flags=re.MULTILINE))
    cited = {}
    for path in sorted((ROOT / "csa_lib").rglob("*.py")):
        text = path.read_text()
        assert "../shared/" not in text, f"{path.name} cites a file outside the repository"
        for ref in re.findall(r"docs/csa_spec\.md`{1,2} (§[\d§\-, .]+)", text):
            for number in re.findall(r"\d+(?:\.\d+)?", ref):
                cited.setdefault(number, []).append(path.name)
    assert len({name for names in cited.values() for name in names}) >= 8, cited
    missing = {number: names for number, names in cited.items() if number not in sections}
    assert not missing, f"sections cited but not in docs/csa_spec.md: {missing}"
    assert (ROOT / "tests" / "data" / "csa_state_dict_shapes.json").is_file()


# The package data a built distribution must hold (pyproject.toml: [tool.setuptools.package-data]).
PACKAGE_DATA = ("csa_lib/notebook/static/mask_painter.js", "csa_lib/notebook/static/mask_painter.css")


def _build(tmp_path: Path, hook: str) -> Path:
    """Run setuptools' PEP 517 `hook` (build_wheel / build_sdist) on a copy of the project; the built file.

    A copy, so the build's egg-info and build/ folders stay out of the working tree; no network
    (no isolated environment: the venv's setuptools builds it).
    """
    src, out = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT / "csa_lib", src / "csa_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.mark.slow  # two setuptools builds: a few seconds
def test_wheel_and_sdist_ship_the_widget_front_end(tmp_path):
    """The MaskPainter's JS and CSS are in the built wheel and sdist, byte for byte as in the repository."""
    wheel = _build(tmp_path / "wheel", "build_wheel")
    with zipfile.ZipFile(wheel) as zf:
        for name in PACKAGE_DATA:
            assert name in zf.namelist(), f"{name} missing from {wheel.name}"
            assert zf.read(name) == (ROOT / name).read_bytes()
    sdist = _build(tmp_path / "sdist", "build_sdist")
    with tarfile.open(sdist) as tf:
        top = sdist.name.removesuffix(".tar.gz")
        for name in PACKAGE_DATA:
            member = f"{top}/{name}"
            assert member in tf.getnames(), f"{name} missing from {sdist.name}"
            assert tf.extractfile(member).read() == (ROOT / name).read_bytes()


def test_the_readme_tree_names_every_module():
    """The README's tree of `csa_lib` lists every module, each under its own subpackage, and nothing that is gone."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```\n(csa_lib/ .*?)```", text, flags=re.DOTALL).group(1)
    listed, folder = set(), ""
    for line in block.splitlines():
        head, files = line[:12].strip(), line[12:32]
        folder = "" if head == "csa_lib/" else (head or folder)
        for name in re.findall(r"[\w]+\.py", files):
            listed.add(folder + name)
    modules = {str(p.relative_to(ROOT / "csa_lib")) for p in (ROOT / "csa_lib").rglob("*.py") if p.name != "__init__.py"}
    assert listed == modules, (sorted(modules - listed), sorted(listed - modules))
