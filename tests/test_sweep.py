"""``tokenswarm sweep`` and :mod:`tokenswarm.sweep`, driven by the cheap ``fake_sweep`` experiment.

Clusters are real ``distributed`` clusters of worker processes: two module-wide local
clusters (1 and 2 workers; 4 workers are slow on 2 cores and add nothing the 2-worker run
does not show), and a scheduler and a worker started as separate processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pandas
import pytest
from fake_sweep import NAME, register_sweep_fakes
from typer.testing import CliRunner

from tokenswarm import cli, sweep
from tokenswarm.experiments.registry import unregister
from tokenswarm.io import rundir
from tokenswarm.params import ParameterError, UsageError, parse_grid_values

TESTS_DIR = pathlib.Path(__file__).parent
SOURCE_DIR = TESTS_DIR.parent / "src"
EXTRA = ("fake_sweep_autoregister",)
SUMMARY_KEYS = {"experiment", "store", "tasks", "completed", "skipped", "failed", "failures", "seconds", "table"}


@pytest.fixture
def fake_sweep() -> Iterator[str]:
    name = register_sweep_fakes()
    try:
        yield name
    finally:
        unregister(name)


def _environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(SOURCE_DIR), str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, cli.EXTRA_EXPERIMENTS_ENV: ",".join(EXTRA)}


@pytest.fixture(scope="module")
def clusters() -> Iterator[dict[int, object]]:
    """A client on a local cluster of 1 and of 2 worker processes (each with a nanny)."""
    from distributed import Client, LocalCluster

    made = []
    try:
        clients = {}
        for workers in (1, 2):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
            made.append(cluster)
            clients[workers] = Client(cluster)
            made.append(clients[workers])
        yield clients
    finally:
        for item in reversed(made):
            item.close()


def plan(grid=None, fixed=None, **settings):  # type: ignore[no-untyped-def]
    return sweep.plan_sweep(NAME, grid or {"a": "0:2:1", "mode": "x,y"}, fixed or {}, **settings)


# --------------------------------------------------------------------------------------
# The plan: values, ids, seeds
# --------------------------------------------------------------------------------------


def test_grid_values_are_parsed_and_checked_like_overrides() -> None:
    from fake_sweep import SweepParams

    assert parse_grid_values(SweepParams, "a", "0:6:2") == [0, 2, 4, 6]
    assert parse_grid_values(SweepParams, "b", "1,2.5") == [1.0, 2.5]
    assert all(isinstance(value, float) for value in parse_grid_values(SweepParams, "b", "1,2"))
    assert parse_grid_values(SweepParams, "times", "1,2;3") == [(1.0, 2.0), (3.0,)]
    for name, text, fragment in [
        ("b", "0,1", "out of range"),
        ("a", "1,1", "gives 1 twice"),
        ("a", "", "empty"),
        ("mode", "x,z", "one of x|y"),
        ("times", "2,1", "increasing"),
        ("bb", "1", "did you mean 'b'"),
    ]:
        with pytest.raises(ParameterError, match=fragment):
            parse_grid_values(SweepParams, name, text)


@pytest.mark.usefixtures("fake_sweep")
def test_ids_and_seeds_are_functions_of_the_point_alone() -> None:
    first = plan({"a": "0,1,2", "mode": "x,y"}, seed=5)
    # another order of the values, another grid around the same points
    second = plan({"a": "2,1", "mode": "y,x"}, seed=5)
    seeds = {point.id: point.seed for point in first.points}
    assert [point.id for point in first.points][:2] == ["a=0_mode=x", "a=0_mode=y"]
    assert all(seeds[point.id] == point.seed for point in second.points)
    assert len(set(seeds.values())) == len(seeds)  # one stream per point
    assert plan({"a": "0"}, seed=6).points[0].seed != plan({"a": "0"}, seed=5).points[0].seed
    # a value unsafe in a file name: sanitised prefix plus a hash, still unique and stable
    odd = plan({"log": "/tmp/x,a b", "a": "0"}).points[0].id
    assert "/" not in odd and " " not in odd and odd == plan({"log": "/tmp/x,a b", "a": "0"}).points[0].id
    floats = plan({"b": "0.1,0.30000000000000004,0.3"})
    assert len({point.id for point in floats.points}) == 3


@pytest.mark.usefixtures("fake_sweep")
def test_every_point_is_validated_before_anything_runs(tmp_path: pathlib.Path) -> None:
    with pytest.raises(UsageError, match="both in --grid and in -p"):
        plan({"a": "1"}, {"a": "2"})
    with pytest.raises(UsageError, match="at least one --grid"):
        sweep.plan_sweep(NAME, {}, {})
    with pytest.raises(UsageError, match="more than"):
        plan({"a": "0:400:1", "b": "1:400:1"})
    with pytest.raises(UsageError, match="unknown experiment"):
        sweep.plan_sweep("fake_nope", {"a": "1"})
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# Running: identical tables, resuming, failures, a killed worker
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_sweep")
def test_one_and_two_workers_give_identical_tables_and_a_rerun_resumes(
    tmp_path: pathlib.Path, clusters: dict[int, object]
) -> None:
    the_plan = plan({"a": "0:3:1", "mode": "x,y"}, {"fail_at": "3"}, seed=11)
    seen: list[str] = []
    one = sweep.run_sweep(the_plan, tmp_path / "one", client=clusters[1], extra_modules=EXTRA,
                          on_point=lambda outcome: seen.append(outcome["point"]))
    two = sweep.run_sweep(the_plan, tmp_path / "two", client=clusters[2], extra_modules=EXTRA)
    for summary in (one, two):
        assert (summary.tasks, summary.completed, summary.skipped, summary.failed) == (8, 6, 0, 2)
        assert {failure["point"] for failure in summary.failures} == {"a=3_mode=x", "a=3_mode=y"}
        assert all(failure["error"] == "RuntimeError: boom at a=3" for failure in summary.failures)
    assert sorted(seen) == sorted(point.id for point in the_plan.points)
    table = sweep.load_table(tmp_path / "one")
    pandas.testing.assert_frame_equal(table, sweep.load_table(tmp_path / "two"))
    assert list(table["point"]) == [point.id for point in the_plan.points if point.values["a"] != 3]
    assert list(table.columns[:4]) == ["point", "a", "mode", "seed"]
    assert table["a"].dtype == "int64" and table["metrics.value"].dtype == "float64"
    assert table["claims.small.passed"].dtype == bool and "metrics.vector" not in table.columns
    assert table["metrics.nothing"].isna().tolist() == [False, False, True, True, False, False]
    # each point's run directory is what `tokenswarm run` would write with the point's seed
    point = the_plan.points[3]
    saved = json.loads((tmp_path / "one" / "points" / point.id / "result.json").read_text())
    assert saved["params"]["seed"] == point.seed and saved["params"]["a"] == 1 and saved["params"]["mode"] == "y"
    assert saved["metrics"]["noise"] == table.loc[3, "metrics.noise"]

    view = sweep.load_view(tmp_path / "one")
    assert list(view["a"].values) == [0, 1, 2, 3] and list(view["mode"].values) == ["x", "y"]
    assert float(view["metrics.value"].sel(a=2, mode="y")) == 2 * 0.5 + 1
    assert view["metrics.value"].sel(a=3).isnull().all()  # failed points are missing

    # resume: one point deleted, the failing ones tried again, nothing else runs
    finished = tmp_path / "one" / "points" / "a=1_mode=x"
    shutil.rmtree(finished)
    again = sweep.run_sweep(the_plan, tmp_path / "one", client=clusters[1], extra_modules=EXTRA)
    assert (again.completed, again.skipped, again.failed) == (1, 5, 2)
    pandas.testing.assert_frame_equal(sweep.load_table(tmp_path / "one"), table)


@pytest.mark.usefixtures("fake_sweep")
def test_a_larger_grid_runs_only_the_new_points_and_a_different_sweep_is_refused(
    tmp_path: pathlib.Path, clusters: dict[int, object]
) -> None:
    store = tmp_path / "store"
    first = sweep.run_sweep(plan({"a": "0,1"}), store, client=clusters[2], extra_modules=EXTRA)
    assert (first.completed, first.skipped) == (2, 0)
    wider = sweep.run_sweep(plan({"a": "1,2"}), store, client=clusters[2], extra_modules=EXTRA)
    assert (wider.tasks, wider.completed, wider.skipped) == (2, 1, 1)
    assert list(sweep.load_table(store)["a"]) == [0, 1, 2]  # every finished point of the store
    for other, fragment in [
        (plan({"a": "0"}, {"b": "2"}), "fixed"),
        (plan({"a": "0"}, seed=1), "seed"),
        (plan({"a": "0"}, quick=True), "quick"),
        (plan({"a": "0", "mode": "x"}), "sweeps over a, not a, mode"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            sweep.run_sweep(other, store, client=clusters[2], extra_modules=EXTRA)


@pytest.mark.usefixtures("fake_sweep")
def test_a_worker_killed_mid_task_has_its_point_run_again_and_written_once(
    tmp_path: pathlib.Path, clusters: dict[int, object]
) -> None:
    marker, log = tmp_path / "died", tmp_path / "completed.log"
    the_plan = plan({"a": "0:3:1"}, {"die_marker": str(marker), "log": str(log)})
    summary = sweep.run_sweep(the_plan, tmp_path / "store", client=clusters[2], extra_modules=EXTRA)
    assert marker.exists()  # the first attempt at a=0 killed its worker process
    assert (summary.completed, summary.failed) == (4, 0)
    assert sorted(log.read_text().splitlines()) == [f"a={a} b=0.5 mode=x" for a in range(4)]
    points = tmp_path / "store" / "points"
    assert sorted(path.name for path in points.iterdir()) == ["a=0", "a=1", "a=2", "a=3"]  # no partial left
    assert not (points / "a=0" / "half-written.txt").exists()
    assert len(sweep.load_table(tmp_path / "store")) == 4


def _at_once(*calls: Callable[[], object]) -> list[BaseException]:
    """Run ``calls`` in threads started together; what they raised."""
    errors: list[BaseException] = []

    def guarded(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as error:  # pragma: no cover - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.usefixtures("fake_sweep")
def test_two_sweeps_extending_one_store_at_once_keep_both_grids(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is read, extended and written under the store's lock, not raced."""
    store = tmp_path / "store"
    write = sweep.atomic_write_text

    def write_after_a_pause(target, text):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # long enough for the other sweep to read the manifest, were it free
        write(target, text)

    monkeypatch.setattr(sweep, "atomic_write_text", write_after_a_pause)
    sweep.open_store(store, plan({"a": "0"}))
    assert _at_once(lambda: sweep.open_store(store, plan({"a": "1"})), lambda: sweep.open_store(store, plan({"a": "2"}))) == []
    manifest = json.loads((store / sweep.MANIFEST).read_text())
    assert sorted(manifest["grid"]["a"]) == [0, 1, 2]
    assert sorted(point["id"] for point in manifest["points"]) == ["a=0", "a=1", "a=2"]
    assert sorted(path.name for path in store.iterdir()) == sorted([sweep.LOCK, sweep.MANIFEST, sweep.POINTS_DIR])
    # two sweeps finishing at once rewrite the tables one after the other
    replace = os.replace

    def replace_after_a_pause(source, target):  # type: ignore[no-untyped-def]
        time.sleep(0.1)
        replace(source, target)

    monkeypatch.setattr(sweep.os, "replace", replace_after_a_pause)
    assert _at_once(lambda: sweep.write_tables(store), lambda: sweep.write_tables(store)) == []
    monkeypatch.undo()
    assert sorted(path.name for path in store.iterdir()) == sorted(
        [sweep.LOCK, sweep.MANIFEST, sweep.POINTS_DIR, sweep.TABLE, sweep.VIEW]
    )
    # the store is still a store (the lock file alone does not make it foreign)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / sweep.LOCK).write_text("")
    assert sweep.open_store(fresh, plan({"a": "0"}))["grid"] == {"a": [0]}


def test_a_point_finished_meanwhile_is_not_written_twice(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "points" / "p"
    first = rundir.RunDirectory(target, handle_signals=False, replace=False).prepare()
    second = rundir.RunDirectory(target, handle_signals=False, replace=False).prepare()
    with first as partial:
        (partial / "result.json").write_text("first")
    with second as partial:
        (partial / "result.json").write_text("second")
    assert (target / "result.json").read_text() == "first"
    assert not first.kept_existing and second.kept_existing
    assert sorted(path.name for path in target.parent.iterdir()) == ["p"]


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.app, ["sweep", NAME, *args], prog_name="tokenswarm")


def _foreign(path: pathlib.Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("mine")


def _other_sweep(path: pathlib.Path) -> None:
    sweep.open_store(path, plan({"a": "1"}, {"b": "2"}))


def _malformed(path: pathlib.Path) -> None:
    path.mkdir()
    (path / sweep.MANIFEST).write_text('{"experiment": ')


@pytest.mark.usefixtures("fake_sweep")
@pytest.mark.parametrize(
    ("args", "setup", "fragment"),
    [
        (["--grid", "a=1,x"], None, "'x' is not an int"),
        (["--grid", "a=1,1"], None, "gives 1 twice"),
        (["--grid", "q=1"], None, "unknown parameter 'q'"),
        (["--grid", "a"], None, "must have the form KEY=V1,V2"),
        (["--grid", "a=1", "--grid", "a=2"], None, "'a' is given twice"),
        ([], None, "at least one --grid"),
        (["--grid", "a=1", "-p", "a=2"], None, "both in --grid and in -p"),
        (["--grid", "a=1", "-p", "b=0"], None, "out of range"),
        (["--grid", "a=1", "--workers", "0"], None, "--workers must be >= 1"),
        (["--grid", "a=1", "--workers", "1", "--scheduler", "tcp://x:1"], None, "not both"),
        (["--grid", "a=1", "--device", "nope"], None, "invalid device"),
        (["--grid", "a=1"], lambda path: path.write_text("x"), "is a file"),
        (["--grid", "a=1"], _foreign, "not a tokenswarm sweep store"),
        (["--grid", "a=1"], _other_sweep, "holds a sweep with fixed"),
        (["--grid", "a=1"], _malformed, "unreadable sweep.json"),
    ],
)
def test_malformed_grids_and_stores_exit_2_with_one_line(tmp_path: pathlib.Path, args, setup, fragment) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    if setup is not None:
        setup(store)
    result = invoke(*args, "--store", str(store))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_unknown_experiment_and_missing_store_exit_2() -> None:
    result = CliRunner().invoke(cli.app, ["sweep", "fake_nope", "--grid", "a=1", "--store", "x"])
    assert result.exit_code == 2 and "unknown experiment 'fake_nope'" in result.stderr
    result = CliRunner().invoke(cli.app, ["sweep", "kuramoto", "--grid", "n=8"])
    assert result.exit_code == 2 and "--store" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _start(args: list[str], log: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as stream:
        return subprocess.Popen([sys.executable, *args], env=_environment(), stdout=stream, stderr=subprocess.STDOUT)


def _wait_for(path: pathlib.Path, processes: list[subprocess.Popen[bytes]], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        assert all(process.poll() is None for process in processes), "a process ended early"
        time.sleep(0.1)


@pytest.mark.usefixtures("fake_sweep")
def test_cli_sweep_on_a_scheduler_started_as_a_separate_process(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler_file = tmp_path / "scheduler.json"
    processes = []
    try:
        processes.append(_start(["-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log"))
        _wait_for(scheduler_file, processes)
        processes.append(_start(["-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                                 "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path)],
                                tmp_path / "worker.log"))
        address = json.loads(scheduler_file.read_text())["address"]
        monkeypatch.setenv(cli.EXTRA_EXPERIMENTS_ENV, ",".join(EXTRA))
        store = tmp_path / "store"
        result = invoke("--grid", "a=0:2:1", "--grid", "mode=x,y", "--quick", "--scheduler", address,
                        "--store", str(store), "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)  # exactly one JSON document (the prints went to stderr)
        assert set(summary) == SUMMARY_KEYS
        assert (summary["tasks"], summary["completed"], summary["skipped"], summary["failed"]) == (6, 6, 0, 0)
        assert summary["table"] == str((store / "metrics.parquet").resolve())
        assert list(sweep.load_table(store)["metrics.value"]) == [0.0, 1.0, 0.25, 1.25, 0.5, 1.5]  # quick: b=0.25
        again = invoke("--grid", "a=0:2:1", "--grid", "mode=x,y", "--quick", "--scheduler", address,
                       "--store", str(store), "--json")
        assert json.loads(again.stdout)["skipped"] == 6 and json.loads(again.stdout)["completed"] == 0
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.usefixtures("fake_sweep")
def test_cli_progress_counts_points_done_and_failed(
    tmp_path: pathlib.Path, clusters: dict[int, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenswarm.cli import sweep as sweep_cli

    events: list[object] = []

    class Bar:
        def advance(self) -> None:
            events.append("advance")

        def update(self, *, description: str) -> None:
            events.append(description)

    @contextlib.contextmanager
    def recording_bar(total, description):  # type: ignore[no-untyped-def]
        events.append((total, description))
        yield Bar()

    monkeypatch.setattr(sweep_cli, "progress_bar", recording_bar)
    monkeypatch.setenv(cli.EXTRA_EXPERIMENTS_ENV, ",".join(EXTRA))  # the workers register fake_sweep
    address = clusters[1].scheduler.address  # type: ignore[attr-defined]
    result = invoke("--grid", "a=0:2:1", "-p", "fail_at=1", "--scheduler", address, "--store", str(tmp_path / "s"))
    assert result.exit_code == 1, result.output  # a point failed
    assert events[0] == (3, f"sweep {NAME}") and events.count("advance") == 3
    assert f"sweep {NAME} (1 failed)" in events
    assert "2 completed, 0 skipped, 1 failed" in result.stdout and "FAILED a=1: RuntimeError: boom at a=1" in result.stdout


def test_cli_sweep_unreachable_scheduler_exits_2(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", "1s")
    result = CliRunner().invoke(cli.app, ["sweep", "kuramoto", "--quick", "--grid", "n=8", "--store",
                                          str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "cannot connect to the dask scheduler" in result.stderr


def test_an_interrupted_sweep_leaves_every_finished_point_readable(tmp_path: pathlib.Path) -> None:
    store = tmp_path / "store"
    args = ["-m", "tokenswarm", "sweep", NAME, "--grid", "a=0:2:1", "-p", "wait=60", "--workers", "1",
            "--store", str(store)]
    process = subprocess.Popen([sys.executable, *args], env=_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        _wait_for(store / "points" / "a=0" / "result.json", [process])
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == 130, stderr
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("error: interrupted by SIGINT; 1 of 3 points are finished"), stderr
    assert stdout == b""
    assert list(sweep.load_table(store)["point"]) == ["a=0"]
