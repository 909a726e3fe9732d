"""tokenswarm.io.rundir: build in a partial sibling, swap in whole, never delete foreign files."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from tokenswarm.io import rundir
from tokenswarm.io.results import Result, load_result
from tokenswarm.io.rundir import MARKER, RunDirectory, RunDirError
from tokenswarm.params import UsageError


def listing(directory: pathlib.Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def siblings(parent: pathlib.Path, name: str = "run") -> list[str]:
    return sorted(path.name for path in parent.iterdir() if path.name.startswith(f".{name}."))


def finished(target: pathlib.Path, text: str) -> None:
    with RunDirectory(target, handle_signals=False) as partial:
        (partial / "a.txt").write_text(text)
        (partial / "sub").mkdir()
        (partial / "sub" / "b.txt").write_text(text)
        rundir.write_marker(partial / "sub", ["b.txt"])


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_new_target_is_built_in_a_hidden_sibling_and_swapped_in(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "deep" / "run"
    stage = RunDirectory(target, handle_signals=False)
    with stage as partial:
        assert partial.parent == target.parent and partial.name.startswith(f".run.partial-{os.getpid()}-")
        assert (partial / MARKER).is_file() and not target.exists()
        (partial / "a.txt").write_text("new")
        assert stage.final_path(partial / "a.txt") == str(target / "a.txt")
    assert listing(target)["a.txt"] == "new"
    assert json.loads((target / MARKER).read_text())["entries"] == ["a.txt"]
    assert siblings(target.parent) == []


def test_a_finished_run_is_replaced_whole(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    with RunDirectory(target, handle_signals=False) as partial:
        (partial / "c.txt").write_text("new")
        assert listing(target)["a.txt"] == "old"  # untouched while the new one is built
    assert sorted(listing(target)) == [MARKER, "c.txt"]  # nothing of the old run mixed in
    assert siblings(tmp_path) == []


def test_a_symlink_to_a_run_stays_a_symlink(tmp_path: pathlib.Path) -> None:
    real = tmp_path / "real"
    finished(real, "old")
    link = tmp_path / "link"
    link.symlink_to(real)
    with RunDirectory(link, handle_signals=False) as partial:
        (partial / "n.txt").write_text("new")
    assert link.is_symlink() and sorted(listing(real)) == [MARKER, "n.txt"]
    assert siblings(tmp_path, "real") == [] and siblings(tmp_path, "link") == []


def test_an_empty_directory_is_accepted(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with RunDirectory(target, handle_signals=False) as partial:
        (partial / "a.txt").write_text("x")
    assert sorted(listing(target)) == [MARKER, "a.txt"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_build_leaves_the_old_run(tmp_path: pathlib.Path, error: BaseException) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    before = listing(target)
    with pytest.raises(type(error)), RunDirectory(target, handle_signals=False) as partial:
        (partial / "a.txt").write_text("half")
        raise error
    assert listing(target) == before
    assert siblings(tmp_path) == []


def test_foreign_directories_are_refused_before_anything_is_created(tmp_path: pathlib.Path) -> None:
    foreign = tmp_path / "run"
    foreign.mkdir()
    (foreign / "data.zarr").mkdir()
    with pytest.raises(RunDirError, match="not a tokenswarm run"):
        RunDirectory(foreign).prepare()
    assert isinstance(RunDirError("x"), UsageError)  # the CLI maps it to exit code 2
    # a run holding a file of somebody else's (also in a marked sub-directory) is refused
    finished(foreign.with_name("mine"), "old")
    (foreign.with_name("mine") / "sub" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="sub/notes.txt"):
        RunDirectory(foreign.with_name("mine")).prepare()
    assert siblings(tmp_path) == [] and siblings(tmp_path, "mine") == []


def test_runs_written_before_the_marker_existed_are_recognised(tmp_path: pathlib.Path) -> None:
    legacy = tmp_path / "run"
    Result("x", {}, {}, []).save(legacy)
    (legacy / "extra.png").write_bytes(b"")
    assert rundir.foreign_entries(legacy) == ["extra.png"]
    (legacy / "extra.png").unlink()
    (legacy / ".data.zarr.0123abcd.tmp").mkdir()  # left by an interrupted old version
    assert rundir.is_tokenswarm_directory(legacy)
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("<html>")
    Result("x", {}, {}, []).save(report / "x")
    (report / "broken").mkdir()
    (report / "broken" / "error.txt").write_text("Traceback")
    assert rundir.is_tokenswarm_directory(report)
    (report / "x" / "mine.txt").write_text("mine")
    assert rundir.foreign_entries(report) == ["x/mine.txt"]
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "index.html").write_text("a web site")
    (tmp_path / "plain" / "style.css").write_text("")
    assert rundir.foreign_entries(tmp_path / "plain") == ["style.css"]


def test_stale_siblings_of_dead_processes_are_cleaned_and_live_or_unmarked_ones_kept(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    pid = dead_pid()
    stale = tmp_path / f".run.partial-{pid}-00ab"
    stale.mkdir()
    rundir.write_marker(stale, [])
    unmarked = tmp_path / f".run.partial-{pid}-00cd"  # not ours: no marker
    unmarked.mkdir()
    alive = tmp_path / f".run.partial-{os.getppid()}-00ef"  # a running process's build
    alive.mkdir()
    rundir.write_marker(alive, [])
    other = tmp_path / f".other.partial-{pid}-0011"  # another target's
    other.mkdir()
    rundir.write_marker(other, [])
    with RunDirectory(target, handle_signals=False) as partial:
        (partial / "a.txt").write_text("new")
    assert not stale.exists()
    assert unmarked.exists() and alive.exists() and other.exists()


def test_a_run_killed_between_the_two_renames_is_put_back(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    retired = tmp_path / f".run.old-{dead_pid()}-0a0b"
    os.replace(target, retired)
    # the next command finds the target missing and the old run aside: it restores it and
    # then refuses nothing (it is a run), building the new one as usual
    stage = RunDirectory(target, handle_signals=False).prepare()
    assert listing(target)["a.txt"] == "old" and not retired.exists()
    with stage as partial:
        (partial / "z.txt").write_text("new")
    assert sorted(listing(target)) == [MARKER, "z.txt"]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: tmp / "file", "is a file"),
        (lambda tmp: pathlib.Path("/dev/null"), "not a directory"),
        (lambda tmp: tmp / "file" / "below", "Not a directory"),
        (lambda tmp: pathlib.Path("/proc/tokenswarm/run"), "/proc/tokenswarm/run"),
        (lambda tmp: pathlib.Path("/"), "root"),
    ],
)
def test_bad_targets_raise_one_line_run_dir_errors(tmp_path: pathlib.Path, make, fragment: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("keep")
    with pytest.raises(RunDirError) as caught:
        RunDirectory(make(tmp_path)).prepare()
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert (tmp_path / "file").read_text() == "keep"


def test_parse_out_refuses_empty_paths_and_escapes_control_characters() -> None:
    default = pathlib.Path("runs/x")
    assert rundir.parse_out(None, default) == default
    assert rundir.parse_out("a/b", default) == pathlib.Path("a/b")
    for empty in ("", "  "):
        with pytest.raises(RunDirError, match="--out is empty"):
            rundir.parse_out(empty, default)
    assert rundir.printable("a\x1b[0m\nb\tc\u202ed") == "a\\x1b[0m\\nb\\tc\\u202ed"


def test_result_save_never_replaces_files_it_did_not_write(tmp_path: pathlib.Path) -> None:
    import xarray

    (tmp_path / "data.zarr").mkdir()
    (tmp_path / "data.zarr" / "mine").write_text("not tokenswarm's")
    result = Result("x", {}, {}, [], data=xarray.Dataset({"v": ("i", [1.0])}))
    with pytest.raises(FileExistsError, match="data.zarr"):
        result.save(tmp_path)
    assert (tmp_path / "data.zarr" / "mine").read_text() == "not tokenswarm's"
    assert not (tmp_path / "result.json").exists()
    # a directory tokenswarm saved into before may be saved into again (library use)
    (tmp_path / "data.zarr" / "mine").unlink()
    (tmp_path / "data.zarr").rmdir()
    result.save(tmp_path)
    result.save(tmp_path)
    assert load_result(tmp_path)["outputs"] == ["data.zarr", "result.json"]


@pytest.fixture
def watched_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's os._exit becomes SystemExit so that the test process survives it."""

    def fake_exit(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(rundir, "_exit", fake_exit)
    monkeypatch.setattr(rundir, "_COMPLETED", [])


@pytest.mark.usefixtures("watched_exit")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_building_removes_the_partial_and_exits_with_one_line(
    tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str], signum: int, code: int
) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    before = listing(target)
    capfd.readouterr()
    with pytest.raises(SystemExit) as caught, RunDirectory(target) as partial:
        (partial / "a.txt").write_text("half")
        os.kill(os.getpid(), signum)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
        raise AssertionError("the handler did not end the build")
    assert caught.value.code == code
    assert listing(target) == before and siblings(tmp_path) == []
    name = signal.Signals(signum).name
    assert capfd.readouterr().err == f"error: interrupted by {name}; {target} was left as it was\n"
    assert signal.getsignal(signum) is not rundir._on_signal  # previous handler restored


@pytest.mark.usefixtures("watched_exit")
def test_signal_during_the_swap_is_held_back_until_it_is_complete(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "run"
    finished(target, "old")
    real_replace = os.replace

    def replace_and_signal(source, destination):  # type: ignore[no-untyped-def]
        if pathlib.Path(source) == target:  # the old run is moved aside: the swap has begun
            os.kill(os.getpid(), signal.SIGTERM)  # arrives between the renames: must wait
        return real_replace(source, destination)

    capfd.readouterr()
    with pytest.raises(SystemExit) as caught, RunDirectory(target) as partial:
        (partial / "n.txt").write_text("new")
        monkeypatch.setattr(rundir.os, "replace", replace_and_signal)
    monkeypatch.setattr(rundir.os, "replace", real_replace)
    assert caught.value.code == 143
    assert sorted(listing(target)) == [MARKER, "n.txt"]  # swapped in completely
    assert siblings(tmp_path) == []
    assert capfd.readouterr().err == f"error: interrupted by SIGTERM after {target} was complete\n"
