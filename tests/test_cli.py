"""The command lines as a user types them (each test runs the real command in a subprocess).

User errors are one line on stderr with exit status 2 (`--debug`: the traceback); `--help` shows
every default; training without ImageNet VGG weights names the flags to use; Ctrl-C and SIGTERM
save a checkpoint and say how to resume; `csa-inpaint` fills one photo; evaluate is recursive.
"""
from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csa_lib.engine import checkpoint as ckpt
from csa_lib.cli import train as train_cli
from csa_lib import vgg
from csa_lib.cli.conventions import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGE = ROOT / "data" / "samples" / "images" / "coffee.png"
SAMPLE_MASK = ROOT / "data" / "samples" / "masks" / "irregular_1.png"
MODULES = {"train": "csa_lib.cli.train", "evaluate": "csa_lib.cli.evaluate", "demo": "csa_lib.cli.demo",
           "inpaint": "csa_lib.cli.inpaint"}
NO_NET = "http://127.0.0.1:9"  # a closed port: any download attempt fails at once, nothing is fetched


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
            "TORCH_HOME": str(tmp_path / "torch_home"), "https_proxy": NO_NET, "HTTPS_PROXY": NO_NET,
            "http_proxy": NO_NET, "HTTP_PROXY": NO_NET, "no_proxy": "", "NO_PROXY": ""}


def _run(tmp_path: Path, module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def _assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _help_blocks(text: str) -> dict[str, str]:
    """--help text -> {first flag of an option: its help text}, wrapped lines joined."""
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        found = re.match(r"^  (-{1,2}[\w-]+)", line)
        if found:
            current = found.group(1)
            blocks[current] = line
        elif current and line.startswith("      "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return {flag: " ".join(block.split()) for flag, block in blocks.items()}


@pytest.mark.parametrize("name", MODULES)
def test_help_shows_every_default(tmp_path, name):
    done = _run(tmp_path, MODULES[name], "--help")
    assert done.returncode == 0, done.stderr
    blocks = _help_blocks(done.stdout)
    assert "--debug" in blocks and len(blocks) >= 4, blocks
    required = {"inpaint": {"-o"}}.get(name, set())
    missing = [flag for flag, text in blocks.items()
               if flag not in {"-h", *required} and "default" not in text.lower()]
    assert not missing, f"{name} --help gives no default for {missing}"


@pytest.mark.parametrize("name, args, needle", [
    ("train", ["--data-root", "no/such/folder", "--no-use-vgg", "--max-steps", "1"], "no/such/folder"),
    ("train", ["--image-size", "100"], "image_size"),
    ("train", ["--batch-size", "eight"], "--batch-size"),
    ("evaluate", ["--images", "no/such/folder", "--methods", "telea"], "no/such/folder"),
    ("evaluate", ["--methods", "magic"], "magic"),
    ("demo", ["--samples", "no/such/folder"], "no/such/folder"),
    ("inpaint", ["no/such/photo.png", SAMPLE_MASK, "-o", "out.png"], "no/such/photo.png"),
    ("inpaint", [SAMPLE_IMAGE, SAMPLE_MASK], "-o"),
    ("inpaint", [SAMPLE_IMAGE, SAMPLE_MASK, "-o", "out.png", "--blend", "soft"], "--blend"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, name, args, needle):
    _assert_one_line_error(_run(tmp_path, MODULES[name], *args), needle)


def test_debug_shows_the_traceback(tmp_path):
    done = _run(tmp_path, "csa_lib.cli.evaluate", "--images", "no/such/folder", "--methods", "telea", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr and "no/such/folder" in done.stderr


def test_stlpips_weights_without_the_package_name_the_install(tmp_path, monkeypatch, capsys):
    """--vgg-weights stlpips without stlpips-pytorch: its own install hint, not the ImageNet advice."""
    monkeypatch.setattr(vgg.importlib.util, "find_spec", lambda name: None)
    code = train_cli.main(["--smoke", "--data-root", "synthetic", "--use-vgg", "--vgg-weights", "stlpips",
                           "--checkpoints-dir", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 2 and "stlpips-pytorch" in error and "pip install" in error and "ImageNet" not in error


def test_training_without_imagenet_weights_names_the_flags(tmp_path):
    done = _run(tmp_path, "csa_lib.cli.train", "--data-root", "synthetic", "--image-size", "64", "--ngf", "4",
                "--ndf", "4", "--max-steps", "1", "--num-workers", "0", "--checkpoints-dir", tmp_path / "run")
    error = next(line for line in done.stderr.splitlines() if line.startswith("csa-train: error:"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "--no-use-vgg" in error and "--vgg-weights PATH" in error and "--vgg-weights stlpips" in error
    assert "vgg_weights=None" not in done.stderr  # the advice is in the flags the user types
    assert not (tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()


def _step_rows(log: Path) -> list[int]:
    if not log.is_file():
        return []
    with open(log, newline="") as f:
        return [int(float(row["step"])) for row in csv.DictReader(f) if row.get("step")]


@pytest.mark.parametrize("sig, code, group", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_signal_saves_the_step_reached_and_says_how_to_resume(tmp_path, sig, code, group):
    run = tmp_path / "run"
    # Ctrl-C in a terminal reaches the whole process group, the data-loader worker too (group=True)
    command = [sys.executable, "-m", "csa_lib.cli.train", "--smoke", "--data-root", "synthetic", "--device", "cpu",
               "--checkpoints-dir", str(run), "--max-steps", "100000", "--save-every", "100000",
               "--save-every-minutes", "0", "--sample-every", "0", "--num-workers", "1"]
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_step_rows(run / "log.csv")) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1][-3000:]
        seen = max(_step_rows(run / "log.csv"))
        assert not (run / "last.pt").exists()  # nothing was saved before the signal
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    step = ckpt.load_checkpoint(run / "last.pt")["step"]
    assert step >= seen and step == max(_step_rows(run / "log.csv"))
    assert f"{sig.name}: stopped at step {step}" in stderr
    assert f"--checkpoints-dir {run} --resume" in stderr
    done = _run(tmp_path, "csa_lib.cli.train", "--checkpoints-dir", run, "--resume", "--max-steps", step + 1)
    assert done.returncode == 0 and f"at step {step} " in done.stderr, done.stderr[-3000:]
    assert ckpt.load_checkpoint(run / "last.pt")["step"] == step + 1


def test_inpaint_one_photo(tmp_path):
    out = tmp_path / "filled.png"
    done = _run(tmp_path, "csa_lib.cli.inpaint", SAMPLE_IMAGE, SAMPLE_MASK, "-o", out, "--blend", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB"))
    hole = np.asarray(Image.open(SAMPLE_MASK).convert("L")) > 0
    result = np.asarray(Image.open(out))
    assert result.shape == photo.shape
    assert np.array_equal(result[~hole], photo[~hole])  # known pixels unchanged
    assert np.abs(result[hole].astype(int) - photo[hole]).mean() > 0  # the hole was filled, not copied
    # the same as the library call with the same blend
    from csa_lib.inference import inpaint, load_model
    expected = np.asarray(inpaint(load_model(device="cpu"), SAMPLE_IMAGE, SAMPLE_MASK, blend="none"))
    assert np.abs(result.astype(int) - expected).max() <= 1


def test_inpaint_refuses_to_overwrite_its_input(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(SAMPLE_IMAGE.read_bytes())
    _assert_one_line_error(_run(tmp_path, "csa_lib.cli.inpaint", photo, SAMPLE_MASK, "-o", photo), "overwrite")
    assert photo.read_bytes() == SAMPLE_IMAGE.read_bytes()


def test_the_old_train_command_says_where_the_command_went(tmp_path):
    done = _run(tmp_path, "csa_lib.train", "--help")
    assert done.returncode == 1 and "python -m csa_lib.cli.train" in done.stderr, done.stderr


def test_inpaint_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["csa-inpaint"] == "csa_lib.cli.inpaint:main"


def test_evaluate_searches_subfolders(tmp_path):
    images = tmp_path / "photos"
    for sub in ("a", "b/c"):
        (images / sub).mkdir(parents=True)
        Image.open(SAMPLE_IMAGE).resize((64, 64)).save(images / sub / "same_name.png")
    done = _run(tmp_path, "csa_lib.cli.evaluate", "--images", images, "--masks", "center", "--methods", "telea",
                "--size", "64", "--out", tmp_path / "eval")
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "eval" / "results.csv", newline="") as f:
        names = sorted(row["image"] for row in csv.DictReader(f))
    assert names == ["a/same_name", "b/c/same_name"]


def _readme_commands() -> list[list[str]]:
    """`python -m csa_lib.<module> ...` lines of the README's bash blocks, continuations joined, comments cut."""
    import shlex

    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("python -m csa_lib."):
                commands.append(shlex.split(line)[2:])
    return commands


def test_readme_commands_use_flags_that_exist(tmp_path):
    """Each README command parses (its module's own parser); the runnable inpaint line really runs."""
    from csa_lib.eval import evaluate
    from csa_lib.cli import inpaint, train as train_cli

    commands = _readme_commands()
    modules = {args[0] for args in commands}
    assert {"csa_lib.cli.train", "csa_lib.cli.evaluate", "csa_lib.cli.inpaint"} <= modules, modules
    parsers = {"csa_lib.cli.train": train_cli.build_parser, "csa_lib.cli.evaluate": evaluate._parser,
               "csa_lib.cli.inpaint": inpaint.build_parser}
    for module, *args in commands:
        parsers[module]().parse_args(args)  # exits (status 2) on a flag that does not exist
    runnable = [args for args in commands if args[0] == "csa_lib.cli.inpaint" and args[1].startswith("data/samples/")]
    assert runnable
    for module, *args in runnable:
        out = tmp_path / "readme_filled.png"
        done = subprocess.run([sys.executable, "-m", module, *[str(ROOT / a) if a.startswith("data/") else a
                                                                for a in args[:-1]], str(out)],
                              cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]


def test_readme_fine_tune_line_matches_ndf_to_ngf():
    tune = next(args for args in _readme_commands() if "--init-generator" in args)
    assert tune[tune.index("--ngf") + 1] == tune[tune.index("--ndf") + 1]
    assert "--max-steps" in (ROOT / "README.md").read_text()


def _lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_a_photo_as_mask_warns_in_one_plain_line(tmp_path):
    photo, out = tmp_path / "photo.jpg", tmp_path / "out.png"
    Image.open(SAMPLE_IMAGE).convert("RGB").save(photo, quality=90)
    done = _run(tmp_path, "csa_lib.cli.inpaint", photo, photo, "-o", out)
    assert done.returncode == 0 and out.is_file(), done.stderr[-3000:]
    lines = _lines(done)
    assert len(lines) == 1 and lines[0].startswith("csa-inpaint: warning: the mask looks like a photo"), lines
    assert ">= 128 in an 8-bit mask" in lines[0]
    assert "UserWarning" not in done.stderr and ".py" not in done.stderr  # no category, no file path


def test_an_empty_mask_gives_the_photo_back_with_a_warning(tmp_path):
    black, out = tmp_path / "black.png", tmp_path / "out.png"
    Image.new("L", Image.open(SAMPLE_IMAGE).size, 0).save(black)
    done = _run(tmp_path, "csa_lib.cli.inpaint", SAMPLE_IMAGE, black, "-o", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _lines(done) == ["csa-inpaint: warning: the mask has no hole, so the photo is returned unchanged: no "
                            "pixel is at least half intensity (>= 128 in an 8-bit mask); paint the hole white "
                            "(255) on black"]
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB")))


def test_inpaint_help_states_the_mask_rule(tmp_path):
    done = _run(tmp_path, "csa_lib.cli.inpaint", "--help")
    text = " ".join(done.stdout.split())
    assert done.returncode == 0 and "nonzero" not in text
    assert "at least half intensity, >= 128 in an 8-bit mask" in text
    assert "mask the mask, same size as the photo: hole where it is at least half intensity, >= 128 in 8-bit" in text


def test_run_cli_formats_warnings_as_one_line_and_keeps_them_real():
    """Inside run_cli a shown warning is one line; it is still a warning (recorded here), and the format comes back."""
    seen = []

    def body() -> int:
        seen.append(warnings.formatwarning("first part\n  second part", UserWarning, "/x/y.py", 3))
        warnings.warn("first part", UserWarning)
        return 0

    default_format = warnings.formatwarning
    with pytest.warns(UserWarning, match="first part"):
        assert run_cli("prog", False, body) == 0
    assert seen == ["prog: warning: first part second part\n"] and warnings.formatwarning is default_format
    with pytest.warns(UserWarning):  # --debug: Python's own format, with the file and the category
        run_cli("prog", True, body)
    assert "/x/y.py:3: UserWarning: first part" in seen[1]


def test_training_with_a_huge_lr_stops_with_one_line_naming_it(tmp_path):
    run = tmp_path / "run"
    done = _run(tmp_path, "csa_lib.cli.train", "--smoke", "--data-root", "synthetic", "--device", "cpu", "--lr", "1e4",
                "--max-steps", "300", "--checkpoints-dir", run)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in _lines(done) if not line.startswith("csa-train: warning: ")]
    assert len(errors) == 1 and "UserWarning" not in done.stderr, _lines(done)  # the random-VGG warning: one line
    found = re.match(r"csa-train: error: training diverged at step (\d+): (g_total|d_total) ", errors[0])
    assert found and int(found.group(1)) <= 300, errors[0]
    assert "lower --lr (Config.lr, now 10000)" in errors[0] and "no checkpoint was written" in errors[0]
    assert not list(run.glob("*.pt"))  # nothing with exploded weights was saved


def test_every_jupyter_command_in_the_docs_starts_as_root_too():
    """`jupyter lab` refuses to start as root without --allow-root (class containers often run as root)."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    commands = [(path.name, found.group(0)) for path in texts
                for found in re.finditer(r"jupyter\s+(?:lab|notebook)\b[^`\n]*(?:\n[^`\n]*)?(?=`)", path.read_text())]
    assert any(name == "README.md" for name, _ in commands), commands
    missing = [(name, command) for name, command in commands if "--allow-root" not in command]
    assert not missing, missing
