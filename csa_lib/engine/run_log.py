"""A training run's loss log: rows averaged over `log_every` steps, in memory, in `log.csv` and in TensorBoard.

`RunLog.record(logs, step, epoch)` adds one step's losses; every `every` steps it closes a row
`{"step", "epoch", <mean of each loss>}`, appends it to `history` and (on the writing rank) to
`<run>/log.csv` and `<run>/tb`. The steps not yet averaged travel in checkpoints (`state_dict`), and
`truncate_csv` drops the rows a crashed run wrote after its last checkpoint, so a resumed log has
every step once.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

LOG_NAME = "log.csv"


def write_csv_row(path: str | os.PathLike, row: dict[str, float]) -> None:
    """Append `row` to the CSV at `path`; a new file gets `row`'s keys as header, an existing one keeps its own."""
    path = Path(path)
    header = None
    if path.is_file() and path.stat().st_size > 0:
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or list(row), extrasaction="ignore", restval="")
        if header is None:
            writer.writeheader()
        writer.writerow(row)


def truncate_csv(path: str | os.PathLike, step: int) -> None:
    """Drop the rows of the CSV at `path` whose `step` is past `step` (written by a run that crashed before its next checkpoint)."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    col = header.index("step") if "step" in header else None
    keep = [r for r in body if col is None or (r and int(float(r[col])) <= step)]
    if len(keep) != len(body):
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([header, *keep])
        os.replace(tmp, path)


class RunLog:
    """Averages per-step losses into rows every `every` steps; `write=False` (ranks other than 0) keeps them in memory only.

    Args:
        out_dir: the run folder (`log.csv` and `tb/` go there).
        every: steps per row (at least 1).
        write: append rows to `log.csv` (and TensorBoard, once `open_tensorboard` was called).
    """

    def __init__(self, out_dir: str | os.PathLike, every: int, write: bool = True):
        self.out_dir = Path(out_dir)
        self.every = max(1, every)
        self.write = write
        self.history: list[dict[str, float]] = []  # one averaged row every `every` steps
        self.pending: dict[str, float] = {}  # sums of the steps since the last row
        self.count = 0
        self.tb: Any = None  # a SummaryWriter when TensorBoard is installed and open

    @property
    def path(self) -> Path:
        """`<out_dir>/log.csv`."""
        return self.out_dir / LOG_NAME

    def record(self, logs: dict[str, float], step: int, epoch: int) -> dict[str, float] | None:
        """Add the losses of step `step`; returns the row it closed, or None between rows."""
        for k, v in logs.items():
            self.pending[k] = self.pending.get(k, 0.0) + float(v)
        self.count += 1
        if step % self.every:
            return None
        row = {"step": step, "epoch": epoch}
        row.update({k: v / self.count for k, v in self.pending.items()})
        self.pending, self.count = {}, 0
        self.history.append(row)
        if self.write:
            write_csv_row(self.path, row)
            if self.tb is not None:
                for k, v in row.items():
                    if k not in ("step", "epoch"):
                        self.tb.add_scalar(f"train/{k}", v, step)
        return row

    def state_dict(self) -> dict[str, Any]:
        """The steps not yet averaged into a row (a checkpoint's `log_state`)."""
        return {"pending": dict(self.pending), "count": self.count}

    def load_state_dict(self, state: dict[str, Any], history: list[dict[str, float]]) -> None:
        """Restore `state_dict()` and the rows so far (a checkpoint's `log_state` and `history`)."""
        self.history = list(history)
        self.pending, self.count = dict(state.get("pending", {})), int(state.get("count", 0))

    def truncate(self, step: int) -> None:
        """Drop `log.csv` rows past `step`."""
        truncate_csv(self.path, step)

    def open_tensorboard(self, step: int) -> None:
        """Start writing rows to `<out_dir>/tb` too (events after `step` are purged); a no-op without tensorboard."""
        if self.tb is not None:
            return
        try:  # imported here: tensorboard is optional and slow to import
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=step or None)

    def flush(self) -> None:
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
