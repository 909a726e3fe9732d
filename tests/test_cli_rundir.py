"""A finished result is never lost or mixed: real ``python -m tokenswarm`` processes are
interrupted (SIGTERM, SIGINT, SIGKILL) while they write into a directory that holds a
finished run, and bad ``--out`` paths are refused with exit code 2 and one line.

The fake experiment ``fake_slow`` (tests/fake_experiments.py) writes half of its GIF, then
creates a sentinel file and waits: the signal is sent the moment the sentinel appears.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import xarray
from fake_experiments import SLOW_SENTINEL_ENV, register_all, register_slow
from PIL import Image
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.experiments.registry import unregister

TESTS_DIR = pathlib.Path(__file__).parent
MARKER = ".tokenswarm-run"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.app, list(args), prog_name="tokenswarm")


def snapshot(directory: pathlib.Path) -> dict[str, str]:
    """Every file under ``directory`` (hidden ones too) -> sha256 of its bytes."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def read_gif_frames(path: pathlib.Path) -> int:
    with Image.open(path) as image:
        assert image.format == "GIF"
        frames = image.n_frames
        for index in range(frames):
            image.seek(index)
            image.load()
    return frames


def assert_consistent_run(directory: pathlib.Path, seed: int) -> None:
    """result.json lists exactly what is there, every listed file reads, seed as expected."""
    summary = json.loads((directory / "result.json").read_text())
    assert summary["experiment"] == "fake_slow" and summary["params"]["seed"] == seed
    outputs = summary["outputs"]
    present = {path.name for path in directory.iterdir()} - {MARKER}
    assert present == {pathlib.PurePosixPath(output).parts[0] for output in outputs}
    for output in outputs:
        path = directory / output
        if path.suffix == ".gif":
            assert read_gif_frames(path) == 6
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.name == "data.zarr":
            with xarray.open_zarr(path, consolidated=False) as data:
                assert data["values"].load().shape == (5,)
    # the figure belongs to the same run as result.json: its seed decides the GIF colours
    from fake_experiments import gif_bytes

    assert (directory / "slow.gif").read_bytes() == gif_bytes(seed, 6)


def leftovers(parent: pathlib.Path, name: str) -> list[str]:
    return sorted(path.name for path in parent.iterdir() if path.name.startswith(f".{name}."))


def environment(sentinel: pathlib.Path | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
        cli.EXTRA_EXPERIMENTS_ENV: "fake_slow_autoregister",
        **extra,
    }
    env.pop(SLOW_SENTINEL_ENV, None)
    if sentinel is not None:
        env[SLOW_SENTINEL_ENV] = str(sentinel)
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tokenswarm", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(sentinel: pathlib.Path, process: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not sentinel.exists():
        if process.poll() is not None:
            raise AssertionError(f"process ended before writing: {process.communicate()}")
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.01)


def assert_one_line_interruption(stderr: str, signame: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: interrupted by {signame}"), stderr


EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}


@pytest.fixture
def slow_registry() -> Iterator[None]:
    register_all()
    register_slow()
    try:
        yield
    finally:
        for name in ("fake_ok", "fake_raise", "fake_slow"):
            unregister(name)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A finished fake_slow run (seed 1) made by the CLI; tests copy it."""
    directory = tmp_path_factory.mktemp("finished") / "run"
    register_all()
    register_slow()
    try:
        result = invoke("run", "fake_slow", "--seed", "1", "--out", str(directory))
    finally:
        for name in ("fake_ok", "fake_raise", "fake_slow"):
            unregister(name)
    assert result.exit_code == 0, result.output
    assert_consistent_run(directory, seed=1)
    return directory


# --------------------------------------------------------------------------------------
# interrupted while writing
# --------------------------------------------------------------------------------------


def test_signals_at_the_moment_of_writing_leave_the_finished_run_intact(
    finished_run: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cases = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        parent = tmp_path / sig.name
        parent.mkdir()
        target = parent / "run"
        shutil.copytree(finished_run, target)
        sentinel = parent / "writing"
        args = ["run", "fake_slow", "--seed", "2", "-p", "wait=60", "--out", str(target)]
        cases[sig] = (target, sentinel, snapshot(target), start(args, environment(sentinel)))
    for sig, (target, sentinel, before, process) in cases.items():
        wait_for(sentinel, process)
        process.send_signal(sig)
    for sig, (target, sentinel, before, process) in cases.items():
        stdout, stderr = process.communicate(timeout=60)
        assert_consistent_run(target, seed=1)
        assert snapshot(target) == before  # not one byte of the finished run changed
        assert process.returncode == EXIT_CODES[sig], (sig, stderr)
        assert stdout == ""
        if sig == signal.SIGKILL:
            # cannot be handled: the partial directory stays, recognisable by its marker
            (partial,) = leftovers(target.parent, "run")
            assert partial.startswith(".run.partial-") and (target.parent / partial / MARKER).is_file()
        else:
            assert_one_line_interruption(stderr, sig.name)
            assert stderr == f"error: interrupted by {sig.name}; {target} was left as it was\n"
            assert leftovers(target.parent, "run") == []

    # the next run into the same target removes the dead process's partial directory
    target = cases[signal.SIGKILL][0]
    rerun = subprocess.run(
        [sys.executable, "-m", "tokenswarm", "run", "fake_slow", "--seed", "3", "--json", "--out", str(target)],
        env=environment(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(target.parent, "run") == []
    assert_consistent_run(target, seed=3)
    assert json.loads(rerun.stdout)["outputs"][-1] == str(target / "result.json")


def test_signals_at_random_moments_leave_the_old_or_the_new_run(
    finished_run: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Seeded random moments: one during start-up, the others 0-2.5 s after the partial
    directory appears (writing the GIF, saving, swapping, or already finished)."""
    rng = random.Random(20261203)
    cases = []
    for index, sig in enumerate([signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM]):
        after_partial = index > 0
        delay = rng.uniform(0.0, 2.5) if after_partial else rng.uniform(0.3, 1.5)
        target = tmp_path / f"case{index}" / "run"
        shutil.copytree(finished_run, target)
        args = ["run", "fake_slow", "--seed", "2", "-p", "wait=0.4", "--out", str(target)]
        process = start(args, environment())
        fire_at = None if after_partial else time.monotonic() + delay
        cases.append({"sig": sig, "delay": delay, "target": target, "before": snapshot(target),
                      "process": process, "fire_at": fire_at})
    pending = list(cases)
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        for case in list(pending):
            if case["process"].poll() is not None:
                pending.remove(case)
                continue
            if case["fire_at"] is None and leftovers(case["target"].parent, "run"):
                case["fire_at"] = now + case["delay"]
            if case["fire_at"] is not None and now >= case["fire_at"]:
                case["process"].send_signal(case["sig"])
                pending.remove(case)
        time.sleep(0.005)
    for case in cases:
        sig, target, process = case["sig"], case["target"], case["process"]
        _, stderr = process.communicate(timeout=90)
        context = (sig.name, round(case["delay"], 2), process.returncode, stderr)
        if process.returncode == 0:  # finished before the signal: the whole new run
            assert_consistent_run(target, seed=2)
            assert leftovers(target.parent, "run") == [], context
        else:
            assert process.returncode == EXIT_CODES[sig], context
            if sig != signal.SIGKILL:
                assert_one_line_interruption(stderr, sig.name)
                assert leftovers(target.parent, "run") == [], context
            if sig == signal.SIGKILL and snapshot(target) != case["before"] or "was complete" in stderr:
                assert_consistent_run(target, seed=2)  # the signal came after the swap
            else:
                assert snapshot(target) == case["before"], context
        print("random moment:", context[:3])


def test_reproduce_interrupted_keeps_the_finished_report(
    slow_registry: None, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report"
    monkeypatch.setenv("FAKE_SLOW_WAIT", "0")
    result = invoke("reproduce", "--quick", "--seed", "1", "--only", "fake_slow", "--out", str(report))
    assert result.exit_code == 0, result.output
    before = snapshot(report)
    assert "fake_slow/slow.gif" in before and "index.html" in before
    sentinel = tmp_path / "writing"
    process = start(
        ["reproduce", "--quick", "--seed", "2", "--only", "fake_slow", "--out", str(report)],
        environment(sentinel, FAKE_SLOW_WAIT="60"),
    )
    wait_for(sentinel, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert_consistent_run(report / "fake_slow", seed=1)
    assert snapshot(report) == before
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM")
    assert leftovers(tmp_path, "report") == []


def test_reproduce_replaces_the_whole_report(
    slow_registry: None, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new report never keeps an experiment directory of the old one (no mixing)."""
    report = tmp_path / "report"
    monkeypatch.setenv("FAKE_SLOW_WAIT", "0")
    first = invoke("reproduce", "--quick", "--seed", "1", "--only", "fake_ok,fake_slow", "--out", str(report))
    assert first.exit_code == 0, first.output
    assert (report / "fake_ok" / "result.json").is_file()
    second = invoke("reproduce", "--quick", "--seed", "2", "--only", "fake_slow", "--out", str(report))
    assert second.exit_code == 0, second.output
    assert sorted(path.name for path in report.iterdir()) == sorted([MARKER, "fake_slow", "index.html"])
    assert_consistent_run(report / "fake_slow", seed=2)
    assert f"report: {report / 'index.html'}" in second.stdout
    assert leftovers(tmp_path, "report") == []


def test_run_replaces_a_finished_run_and_reports_final_paths(finished_run: pathlib.Path, tmp_path: pathlib.Path,
                                                             slow_registry: None) -> None:
    target = tmp_path / "run"
    shutil.copytree(finished_run, target)
    # an old run (from before the marker existed) had one more output than the new one
    # will write: it must not survive
    (target / MARKER).unlink(missing_ok=True)
    (target / "older.png").write_bytes((target / "noise.png").read_bytes())
    summary = json.loads((target / "result.json").read_text())
    summary["outputs"].insert(0, "older.png")
    (target / "result.json").write_text(json.dumps(summary))
    result = invoke("run", "fake_slow", "--seed", "2", "--json", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert not (target / "older.png").exists()
    assert_consistent_run(target, seed=2)
    summary = json.loads(result.stdout)
    assert set(summary) == {"experiment", "params", "metrics", "claims", "outputs", "seconds", "versions", "timestamp", "machine"}
    assert all(pathlib.Path(path).is_relative_to(target) and pathlib.Path(path).exists() for path in summary["outputs"])
    assert leftovers(tmp_path, "run") == []


# --------------------------------------------------------------------------------------
# refused output paths: exit 2, one line, nothing touched
# --------------------------------------------------------------------------------------


def assert_refused(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


COMMANDS = {
    "run": ["run", "fake_slow", "--out"],
    "reproduce": ["reproduce", "--quick", "--only", "fake_slow", "--out"],
    "simulate": ["simulate", "--d", "2", "--n", "3", "--t", "0.1", "--out"],
}


@pytest.mark.usefixtures("slow_registry")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_empty_out_is_refused_and_the_working_directory_untouched(
    command: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data.zarr").mkdir()
    (tmp_path / "data.zarr" / "mine").write_text("not tokenswarm's")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert_refused(invoke(*COMMANDS[command], ""), "--out is empty")
    assert snapshot(tmp_path) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.zarr"]


@pytest.mark.usefixtures("slow_registry")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_foreign_directories_are_refused_untouched(command: str, tmp_path: pathlib.Path, finished_run: pathlib.Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.zarr").mkdir()
    (foreign / "notes.txt").write_text("mine")
    before = snapshot(foreign)
    assert_refused(invoke(*COMMANDS[command], str(foreign)), "not a tokenswarm run")
    assert snapshot(foreign) == before
    # a finished run into which somebody put a file of their own is not replaced either
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "notes.txt").write_text("mine")
    before = snapshot(run)
    assert_refused(invoke(*COMMANDS[command], str(run)), "notes.txt")
    assert snapshot(run) == before
    assert leftovers(tmp_path, "foreign") == leftovers(tmp_path, "run") == []


@pytest.mark.usefixtures("slow_registry")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_output_paths_exit_2_with_one_line(command: str, tmp_path: pathlib.Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("keep")
    assert_refused(invoke(*COMMANDS[command], str(a_file)), "is a file")
    assert a_file.read_text() == "keep"
    assert_refused(invoke(*COMMANDS[command], "/dev/null"), "/dev/null", "not a directory")
    assert_refused(invoke(*COMMANDS[command], "/proc/tokenswarm-out"), "/proc/tokenswarm-out")
    assert_refused(invoke(*COMMANDS[command], str(a_file / "below")), "a-file/below")
    # control characters in an echoed path are escaped, not sent to the terminal
    odd = tmp_path / "odd\x1b[31m\nname"
    odd.write_text("keep")
    result = invoke(*COMMANDS[command], str(odd))
    assert_refused(result, "odd\\x1b[31m\\nname")
    assert "\x1b" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only directory")
@pytest.mark.usefixtures("slow_registry")
def test_unwritable_parent_exits_2(tmp_path: pathlib.Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        assert_refused(invoke(*COMMANDS["run"], str(locked / "run")), "locked/run")
    finally:
        locked.chmod(0o755)


def test_reproduce_on_a_bad_path_in_a_real_process_prints_one_line(tmp_path: pathlib.Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "tokenswarm", "reproduce", "--quick", "--only", "fake_slow", "--out", "/proc/x/report"],
        env=environment(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert process.returncode == 2 and process.stdout == ""
    assert process.stderr.strip().splitlines() == [process.stderr.strip()]
    assert process.stderr.startswith("error: ") and "/proc/x/report" in process.stderr
