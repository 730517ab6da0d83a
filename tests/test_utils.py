"""csa_lib.utils.fresh_run_dir: a notebook's run folder, emptied of only what that notebook wrote."""
from __future__ import annotations

import pytest

from csa_lib.utils import RUN_MARKER, fresh_run_dir


def _trainer_outputs(folder):
    for name in ("step_00000010.pt", "last.pt", "log.csv", "samples/step_00000010.png", "tb/events.out.tfevents.1"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")


def test_fresh_run_dir_creates_and_marks(tmp_path):
    folder = fresh_run_dir(tmp_path / "runs" / "nb", "train.ipynb")
    assert folder.is_dir() and (folder / RUN_MARKER).read_text().strip() == "train.ipynb"


def test_fresh_run_dir_removes_only_its_own_outputs(tmp_path):
    folder = fresh_run_dir(tmp_path / "nb", "train.ipynb")
    _trainer_outputs(folder)
    (folder / "my_notes.txt").write_text("keep me")
    (folder / "samples" / "favourite.png").write_bytes(b"keep")
    fresh_run_dir(folder, "train.ipynb")
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert left == [RUN_MARKER, "my_notes.txt", "samples/favourite.png"]
    assert not (folder / "tb").exists()


@pytest.mark.parametrize("owner", [None, "other.ipynb"])
def test_fresh_run_dir_never_empties_a_folder_it_did_not_create(tmp_path, owner):
    folder = tmp_path / "precious_run"
    _trainer_outputs(folder)
    if owner:
        (folder / RUN_MARKER).write_text(owner)
    before = sorted(p.name for p in folder.rglob("*"))
    with pytest.raises(FileExistsError, match="precious_run.*nothing was deleted"):
        fresh_run_dir(folder, "train.ipynb")
    assert sorted(p.name for p in folder.rglob("*")) == before
