"""Parameter sweeps on dask.distributed: every point of a grid, one run directory each.

A sweep runs one registered experiment at every point of a grid (the product of its axes,
``--grid beta=1,2,4 --grid n=16,32``) with the other parameters fixed (``-p``), and keeps
its results in a *store*::

    STORE/
      sweep.json          the manifest: experiment, fixed parameters, run settings, grid, points
      .sweep.lock         held while a sweep rewrites the manifest or the tables
      points/ID/          one run directory per point (result.json, data.zarr, figures)
      metrics.parquet     one row per finished point: its grid values, seed, scalar metrics
                          and claims (``metrics.NAME``, ``claims.NAME.passed``/``.measured``)
      metrics.zarr        the same table as an xarray Dataset with the grid as coordinates

Rules that make a sweep reproducible and resumable:

* A point's values are parsed exactly as ``-p KEY=VALUE`` would be
  (:func:`tokenswarm.params.parse_grid_values`) and every point is validated (parameters,
  cross-field checks, counts) before anything runs.
* A point's id (its directory name) and its seed are functions of the point alone: the id
  is readable (``beta=1.0_n=16``) when the values allow, else a prefix plus a hash of the
  canonical point; the seed is ``SeedSequence(seed, spawn_key=hash(point))``. Scheduling
  order, worker count and retries therefore never change a number, and the table is
  rebuilt from disk in grid order: 1 or 4 workers give identical tables.
* A point is finished iff ``points/ID/result.json`` exists. Each point is built in a
  partial sibling and renamed into place only if nobody finished it meanwhile
  (:class:`tokenswarm.io.rundir.RunDirectory` with ``replace=False``), so a task retried
  after its worker died, or run by two sweeps at once, is written exactly once.
  Re-running a sweep skips finished points; a grid with more values on the same axes adds
  only the new points; a store of another experiment, other fixed parameters or other
  run settings is refused.

Run with :func:`run_sweep` (a ``LocalCluster`` of ``workers`` processes, an existing
scheduler by ``address``, or a ``distributed.Client`` you made, e.g. on a dask-jobqueue
cluster); read back with :func:`load_table` and :func:`load_view`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import pathlib
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tokenswarm.experiments import load_for, registry
from tokenswarm.io import rundir
from tokenswarm.io.results import (
    RESULT_FILE,
    atomic_write_text,
    load_result,
    replace_directory,
    temporary_sibling,
    to_jsonable,
)
from tokenswarm.params import (
    ParameterError,
    UsageError,
    format_value,
    parse_grid_values,
    parse_key_values,
    parse_overrides,
)

if TYPE_CHECKING:
    import pandas
    import xarray

__all__ = [
    "MANIFEST",
    "MAX_POINTS",
    "POINTS_DIR",
    "TABLE",
    "VIEW",
    "Point",
    "PointTask",
    "SweepPlan",
    "SweepSummary",
    "build_table",
    "load_table",
    "load_view",
    "parse_grid",
    "plan_sweep",
    "point_id",
    "point_seed",
    "run_point",
    "run_sweep",
]

MANIFEST = "sweep.json"
#: Held (flock) while a sweep reads, extends and writes the manifest.
LOCK = ".sweep.lock"
POINTS_DIR = "points"
TABLE = "metrics.parquet"
VIEW = "metrics.zarr"
#: More points than this is a mistyped range, not a sweep (each point is a run directory).
MAX_POINTS = 100_000
_READABLE_VALUE = re.compile(r"^[A-Za-z0-9.,+-]+$")
_MAX_READABLE_ID = 120
#: How long to try to reach a scheduler given by address.
CONNECT_TIMEOUT = "10s"
_SETTINGS = ("experiment", "fixed", "quick", "seed", "device", "dtype")


# --------------------------------------------------------------------------------------
# The plan: typed grid, points, ids and seeds
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One grid point: ``values`` maps each axis to its typed value (in axis order)."""

    id: str
    values: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: what to run at which points, with which settings.

    Attributes:
        experiment: registered experiment name.
        fixed: typed values of the ``-p`` parameters (the same at every point).
        axes: axis name -> typed values, in the order given.
        points: the product of the axes, first axis slowest.
        quick, seed, device, dtype: run settings, as for ``tokenswarm run``; ``seed`` is
            the base from which every point's seed is derived.
    """

    experiment: str
    fixed: Mapping[str, Any]
    axes: Mapping[str, tuple[Any, ...]]
    points: tuple[Point, ...]
    quick: bool
    seed: int
    device: str
    dtype: str

    def settings(self) -> dict[str, Any]:
        """What identifies the sweep a store belongs to (the grid may grow)."""
        return {
            "experiment": self.experiment,
            "fixed": to_jsonable(dict(self.fixed)),
            "quick": self.quick,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
        }


def parse_grid(items: Sequence[str]) -> dict[str, str]:
    """Split ``--grid KEY=VALUES`` options into ``{key: values text}``.

    Raises:
        UsageError: no grid at all, an item without ``=``, an empty key, or a key twice.
    """
    if not items:
        raise UsageError("a sweep needs at least one --grid KEY=V1,V2,... (e.g. --grid beta=1,2,4)")
    return parse_key_values(items, option="--grid", form="KEY=V1,V2,...", example="beta=1,2,4")


def canonical(values: Mapping[str, Any]) -> str:
    """The JSON text identifying a point (keys sorted; floats in shortest round-trip form)."""
    return json.dumps(to_jsonable(dict(values)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(values: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(canonical(values).encode("utf-8")).digest()


def _id_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips, unlike format_value's 12 digits
    if isinstance(value, (list, tuple)):
        return ",".join(_id_text(item) for item in value)
    return format_value(value)


def point_id(values: Mapping[str, Any]) -> str:
    """A stable directory name for a point: ``beta=1.0_n=16``.

    When a value holds characters unsafe in a file name (or ``_``/``=``, which would make
    the name ambiguous) or the name would be long, the name is a sanitised prefix plus 12
    hex digits of the hash of the canonical point.
    """
    texts = {name: _id_text(value) for name, value in values.items()}
    readable = "_".join(f"{name}={text}" for name, text in texts.items())
    if all(_READABLE_VALUE.match(text) for text in texts.values()) and len(readable) <= _MAX_READABLE_ID:
        return readable
    prefix = re.sub(r"[^A-Za-z0-9.,+=_-]+", "~", readable)[:80]
    return f"{prefix}-{_digest(values).hex()[:12]}"


def point_seed(seed: int, values: Mapping[str, Any]) -> int:
    """The seed of the point ``values`` in a sweep with base ``seed`` (63 bits).

    ``SeedSequence(seed, spawn_key=...)`` keyed by the hash of the canonical point: the
    same point always gets the same seed, different points independent streams, whatever
    the order in which they are scheduled.
    """
    digest = _digest(values)
    spawn_key = tuple(int.from_bytes(digest[index : index + 4], "little") for index in range(0, 16, 4))
    state = np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(1, dtype=np.uint64)
    return int(state[0]) & (2**63 - 1)


def plan_sweep(
    experiment: str,
    grid: Mapping[str, str | Sequence[Any]],
    fixed: Mapping[str, Any] | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float64",
    check_device: bool = True,
) -> SweepPlan:
    """Parse and validate a sweep without running anything.

    Args:
        experiment: a registered name (the caller imports the experiment modules).
        grid: axis -> values, as command-line text (``"1,2,4"``, ``"0.5:2:0.5"``) or a
            sequence of values; at least one axis.
        fixed: ``-p`` overrides, the same at every point; an axis may not be fixed too.
        check_device: whether ``device`` must exist here (not when the workers are
            elsewhere, e.g. GPU nodes behind a scheduler).

    Raises:
        UsageError: unknown experiment, parameter or value, an empty grid or axis, a
            value given twice, a parameter both in the grid and fixed, more than
            :data:`MAX_POINTS` points, or a point that is invalid as a whole.
    """
    spec = registry.get(experiment)
    fixed = dict(fixed or {})
    if not grid:
        raise UsageError("a sweep needs at least one --grid KEY=V1,V2,... (e.g. --grid beta=1,2,4)")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise UsageError(f"parameter '{both[0]}' is both in --grid and in -p; give it in one place")
    axes: dict[str, tuple[Any, ...]] = {}
    for name, values in grid.items():
        if isinstance(values, str):
            axes[name] = tuple(parse_grid_values(spec.params, name, values, experiment=experiment))
        else:
            axes[name] = tuple(_typed_values(spec.params, name, values, experiment))
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_POINTS:
        raise UsageError(f"the grid has {count} points, more than {MAX_POINTS}; sweep a coarser grid")
    registry.parse_dtype(dtype)
    if check_device:
        registry.parse_device(device)
    else:
        _check_device_name(device)
    registry.check_seed(seed)
    # The fixed values alone: an unknown name or a bad value is reported as such. A
    # cross-field check may fail without the grid's values and pass with them, so only
    # the points decide (and give the typed fixed values).
    try:
        parse_overrides(spec.params, fixed, base=spec.quick if quick else None, experiment=experiment)
        fixed_error = None
    except ParameterError as error:
        fixed_error = str(error)
    points = []
    typed_fixed: dict[str, Any] = {}
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        try:
            _, params = registry.prepare(experiment, {**fixed, **values}, quick=quick, dtype=dtype)
        except ParameterError as error:
            if str(error) == fixed_error:
                raise
            where = ", ".join(f"{name}={format_value(value)}" for name, value in values.items())
            raise ParameterError(f"grid point {where}: {error}") from None
        if not points:
            typed_fixed = {name: getattr(params, name) for name in fixed}
        points.append(Point(point_id(values), values, point_seed(seed, values)))
    ids = [point.id for point in points]
    if len(set(ids)) != len(ids):  # values equal as text but not as values (1 vs "1")
        points = [dataclasses.replace(p, id=f"{p.id}-{_digest(p.values).hex()[:12]}") for p in points]
    return SweepPlan(experiment, typed_fixed, axes, tuple(points), quick, seed, str(device), str(dtype))


def _typed_values(params_cls: type, name: str, values: Sequence[Any], experiment: str) -> list[Any]:
    if isinstance(values, (bytes, Mapping)) or not isinstance(values, Sequence) or not values:
        raise UsageError(f"grid axis '{name}' needs a non-empty list of values, got {values!r:.80}")
    typed = []
    for value in values:
        parsed = getattr(parse_overrides(params_cls, {name: value}, experiment=experiment), name)
        if parsed in typed:
            raise ParameterError(f"grid axis '{name}' gives {format_value(parsed)} twice; give each value once")
        typed.append(parsed)
    return typed


def _check_device_name(device: str) -> None:
    import torch

    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"invalid device {device!r}; use cpu, cuda, cuda:N or mps") from None


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


def _shown(store: pathlib.Path) -> str:
    return rundir.printable(os.fspath(store))


def _read_manifest(store: pathlib.Path) -> dict[str, Any]:
    """The store's manifest (raises :class:`UsageError` when it is unreadable or malformed)."""
    try:
        with open(store / MANIFEST, encoding="utf-8") as stream:
            manifest = json.load(stream)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise UsageError(f"--store {_shown(store)} has an unreadable {MANIFEST} ({reason}); use another --store") from None
    keys = {*_SETTINGS, "grid", "points"}
    points = manifest.get("points") if isinstance(manifest, dict) else None
    valid = (
        isinstance(manifest, dict)
        and keys <= set(manifest)
        and isinstance(manifest["grid"], dict)
        and isinstance(points, list)
        and all(isinstance(p, dict) and {"id", "values", "seed"} <= set(p) for p in points)
        and all(isinstance(p["id"], str) and re.fullmatch(r"[^/\\\x00.][^/\\\x00]*", p["id"]) for p in points)
    )
    if not valid:
        raise UsageError(f"--store {_shown(store)} has a malformed {MANIFEST}; use another --store")
    return manifest


def _check_store_path(store: pathlib.Path) -> None:
    shown = _shown(store)
    if os.fspath(store).strip() == "":
        raise UsageError("--store is empty; give a directory path")
    try:
        store.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise UsageError(f"cannot use --store {shown}: {error.strerror or error}") from None
    if not store.is_dir():
        raise UsageError(f"--store {shown} is a file, not a directory; give a directory path")
    if not (store / MANIFEST).is_file() and any(not _is_store_scratch(entry.name) for entry in store.iterdir()):
        raise UsageError(
            f"--store {shown} is a non-empty directory that is not a tokenswarm sweep store "
            f"(no {MANIFEST}); choose a new or empty directory"
        )


def _is_store_scratch(name: str) -> bool:
    """The lock file, or a manifest being written by a sweep that holds the lock."""
    return name == LOCK or (name.startswith(f".{MANIFEST}.") and name.endswith(".tmp"))


@contextlib.contextmanager
def _store_lock(store: pathlib.Path) -> Iterator[None]:
    """Hold the store's lock file while the manifest or the tables are rewritten.

    Two sweeps extending one store at once would otherwise each read the old manifest and
    the second write would drop the first's new points, or swap ``metrics.zarr`` out from
    under each other. ``flock`` is released by the
    kernel when the process dies, so a killed sweep never leaves the store locked. Where
    ``fcntl`` does not exist (Windows) the manifest update is not serialised.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    try:
        handle = open(store / LOCK, "a")  # noqa: SIM115 - closed below
    except OSError as error:
        raise UsageError(f"cannot lock --store {_shown(store)}: {error.strerror or error}") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_store(store: str | os.PathLike[str], plan: SweepPlan) -> dict[str, Any]:
    """Create or extend the store for ``plan``; returns the manifest written.

    Raises:
        UsageError: the path is a file or a foreign directory, the manifest is malformed,
            or the store holds a sweep of another experiment, other fixed parameters,
            other run settings, or over other axes.
    """
    path = pathlib.Path(store)
    _check_store_path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --store {_shown(path)}: {error.strerror or error}") from None
    with _store_lock(path):
        _check_store_path(path)  # again, now that no other sweep can be writing its manifest
        return _extend_manifest(path, plan)


def _extend_manifest(path: pathlib.Path, plan: SweepPlan) -> dict[str, Any]:
    settings = plan.settings()
    grid = {name: to_jsonable(list(values)) for name, values in plan.axes.items()}
    points = [{"id": p.id, "values": to_jsonable(dict(p.values)), "seed": p.seed} for p in plan.points]
    if (path / MANIFEST).is_file():
        manifest = _read_manifest(path)
        for key in _SETTINGS:
            if manifest[key] != settings[key]:
                raise UsageError(
                    f"--store {_shown(path)} holds a sweep with {key} {_setting_text(manifest[key])}, "
                    f"not {_setting_text(settings[key])}; use another --store (or the store's settings)"
                )
        if list(manifest["grid"]) != list(grid):
            raise UsageError(
                f"--store {_shown(path)} sweeps over {', '.join(manifest['grid']) or 'nothing'}, "
                f"not {', '.join(grid)}; use the same --grid keys (more values are fine) or another --store"
            )
        for name, values in grid.items():
            old = manifest["grid"][name]
            grid[name] = old + [value for value in values if value not in old]
        known = {p["id"] for p in manifest["points"]}
        points = manifest["points"] + [p for p in points if p["id"] not in known]
    try:
        (path / POINTS_DIR).mkdir(exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --store {_shown(path)}: {error.strerror or error}") from None
    from tokenswarm import __version__

    manifest = {"tokenswarm": __version__, **settings, "grid": grid, "points": points}
    try:
        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write --store {_shown(path)}: {error.strerror or error}") from None
    return manifest


def _setting_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else format_value(value)


def point_directory(store: str | os.PathLike[str], point: str) -> pathlib.Path:
    return pathlib.Path(store) / POINTS_DIR / point


def is_finished(store: str | os.PathLike[str], point: str) -> bool:
    """A point is finished iff its run directory holds ``result.json``."""
    return (point_directory(store, point) / RESULT_FILE).is_file()


# --------------------------------------------------------------------------------------
# One point (runs on a worker)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point; plain data, pickled to the worker.

    ``extra_modules`` are imported before the experiment is looked up (out-of-tree
    experiments); ``threads`` caps torch's intra-op threads (``None``: leave as is).
    """

    experiment: str
    point: str
    overrides: Mapping[str, Any]
    quick: bool
    seed: int
    device: str
    dtype: str
    target: str
    extra_modules: tuple[str, ...] = ()
    threads: int | None = None


def run_point(task: PointTask) -> dict[str, Any]:
    """Run one point into its run directory unless it is finished.

    Returns ``{"point", "status", "error", "seconds"}`` with status ``completed``,
    ``skipped`` (finished before, or by another writer while this one ran: its build is
    discarded) or ``failed`` (the experiment raised; ``error`` is the traceback). An
    exception is returned rather than raised, so that dask does not retry a deterministic
    failure; a worker that dies is handled by the scheduler, which runs the task again.
    """
    from tokenswarm.runtime.threads import torch_threads

    start = time.perf_counter()
    target = pathlib.Path(task.target)
    if (target / RESULT_FILE).is_file():
        return {"point": task.point, "status": "skipped", "error": None, "seconds": 0.0}
    try:
        load_for(task.experiment, task.extra_modules, strict=True)
        stage = rundir.RunDirectory(target, handle_signals=False, replace=False).prepare()
        # worker processes share the terminal's stdout: an experiment's print must not
        # land in the middle of the command's JSON
        with contextlib.redirect_stdout(sys.stderr), torch_threads(task.threads, task.device), stage as partial:
            registry.run_experiment(
                task.experiment, task.overrides, quick=task.quick, seed=task.seed,
                device=task.device, dtype=task.dtype, out_dir=partial,
            )
    except Exception:  # noqa: BLE001 - reported per point; the other points go on
        return {"point": task.point, "status": "failed", "error": traceback.format_exc(),
                "seconds": time.perf_counter() - start}
    status = "skipped" if stage.kept_existing else "completed"
    return {"point": task.point, "status": status, "error": None, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------
# The sweep (runs on the client)
# --------------------------------------------------------------------------------------


@dataclass
class SweepSummary:
    """What one sweep command did (``tasks = completed + skipped + failed`` when it ends)."""

    experiment: str
    store: str
    tasks: int
    completed: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    table: str = ""
    interrupted: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        summary = dataclasses.asdict(self)
        del summary["interrupted"]
        return summary


def _failure_line(error: str) -> str:
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "error"


@contextlib.contextmanager
def _client(workers: int | None, address: str | None) -> Iterator[Any]:
    """A distributed client: on a new LocalCluster of ``workers`` processes, or ``address``."""
    import logging

    from distributed import Client, LocalCluster

    if address is not None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            raise UsageError(f"cannot connect to the dask scheduler at --scheduler {address}: {error}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or 1, threads_per_worker=1, processes=True,
        dashboard_address=":0", silence_logs=logging.ERROR,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_sweep(
    plan: SweepPlan,
    store: str | os.PathLike[str],
    *,
    workers: int | None = None,
    address: str | None = None,
    client: Any = None,
    extra_modules: Sequence[str] = (),
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> SweepSummary:
    """Run every unfinished point of ``plan`` into ``store`` and rebuild the tables.

    Args:
        workers: size of the ``LocalCluster`` started for this sweep (default 1), each a
            process with one thread and ``cpu_count // workers`` torch threads.
        address: an existing scheduler (``tcp://host:8786``) instead of a LocalCluster.
        client: an existing ``distributed.Client`` (for instance on a dask-jobqueue
            ``SLURMCluster``) instead of either.
        extra_modules: modules the workers import to register out-of-tree experiments.
        on_point: called in the client with each point's outcome as it arrives.

    The table is rebuilt even when the sweep is interrupted (the exception propagates),
    so every finished point is in it.

    Raises:
        UsageError: a store that does not fit ``plan`` or an unreachable scheduler.
    """
    if sum(option is not None for option in (workers, address, client)) > 1:
        raise UsageError("give at most one of workers, a scheduler address or a client")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    start = time.perf_counter()
    store_path = pathlib.Path(store)
    open_store(store_path, plan)
    summary = SweepSummary(plan.experiment, str(store_path.resolve()), tasks=len(plan.points))
    todo = [point for point in plan.points if not is_finished(store_path, point.id)]
    summary.skipped = len(plan.points) - len(todo)
    threads = max(1, (os.cpu_count() or 1) // (workers or 1)) if address is None and client is None else None
    fixed = dict(plan.fixed)
    tasks = {
        point.id: PointTask(
            plan.experiment, point.id, {**fixed, **point.values}, plan.quick, point.seed, plan.device,
            plan.dtype, str(point_directory(store_path, point.id).resolve()), tuple(extra_modules), threads,
        )
        for point in todo
    }
    # unique per store and settings: two sweeps on one scheduler never share a task
    prefix = hashlib.sha256((summary.store + canonical(plan.settings())).encode()).hexdigest()[:12]

    def record(outcome: dict[str, Any]) -> None:
        status = outcome["status"]
        if status == "failed":
            summary.failed += 1
            point = next(p for p in todo if p.id == outcome["point"])
            summary.failures.append({"point": outcome["point"], "params": to_jsonable(dict(point.values)),
                                     "error": _failure_line(outcome["error"] or "")})
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.completed += 1
        if on_point is not None:
            on_point(outcome)

    try:
        if tasks:
            context = contextlib.nullcontext(client) if client is not None else _client(workers, address)
            with context as active:
                _submit_and_wait(active, tasks, prefix, record)
    except BaseException:
        summary.interrupted = True
        raise
    finally:
        summary.table = str(write_tables(store_path))
        summary.seconds = time.perf_counter() - start
    return summary


def _submit_and_wait(
    client: Any, tasks: Mapping[str, PointTask], prefix: str, record: Callable[[dict[str, Any]], None]
) -> None:
    from distributed import as_completed

    futures = {
        client.submit(run_point, task, key=f"tokenswarm-sweep-{prefix}-{point}", pure=False, retries=2): point
        for point, task in tasks.items()
    }
    try:
        for future in as_completed(futures):
            point = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                outcome = {"point": point, "status": "failed", "seconds": 0.0,
                           "error": f"{type(error).__name__}: {error}"}
            record(outcome)
            future.release()
    finally:
        for future in futures:
            future.cancel()


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def build_table(store: str | os.PathLike[str]) -> pandas.DataFrame:
    """One row per finished point of the store, in the manifest's order.

    Columns: ``point``, the grid axes (typed; list values as text), ``seed``, then every
    scalar metric as ``metrics.NAME`` and every claim as ``claims.NAME.passed`` (and
    ``claims.NAME.measured`` when the measurement is a number, ``claims.NAME.status`` when
    the result records one), in order of first
    appearance. A metric missing at some point is a missing value there. Wall times are
    left out so that the table is a function of the grid alone.
    """
    import pandas

    path = pathlib.Path(store)
    manifest = _read_manifest(path)
    axes = list(manifest["grid"])
    rows = []
    for point in manifest["points"]:
        try:
            summary = load_result(point_directory(path, point["id"]))
        except (OSError, ValueError):
            continue  # unfinished (or unreadable: it runs again)
        row: dict[str, Any] = {"point": point["id"], **{axis: point["values"].get(axis) for axis in axes}}
        row["seed"] = point["seed"]
        for name, value in (summary.get("metrics") or {}).items():
            if _scalar(value):
                row[f"metrics.{name}"] = value
        seen: dict[str, int] = {}
        for claim in summary.get("claims") or []:
            name = str(claim.get("name"))
            seen[name] = seen.get(name, 0) + 1
            name = name if seen[name] == 1 else f"{name} ({seen[name]})"
            row[f"claims.{name}.passed"] = claim.get("passed")  # None: inconclusive
            if isinstance(claim.get("status"), str):
                row[f"claims.{name}.status"] = claim["status"]
            measured = claim.get("measured")
            if isinstance(measured, (int, float)) and not isinstance(measured, bool):
                row[f"claims.{name}.measured"] = measured
        rows.append(row)
    columns = list(dict.fromkeys(["point", *axes, "seed", *(name for row in rows for name in row)]))
    table = {name: _column([row.get(name) for row in rows]) for name in columns}
    table["point"] = np.array([row["point"] for row in rows], dtype=object)  # text, also when empty
    return pandas.DataFrame(table)


def _column(values: list[Any]) -> Any:
    """A typed column: int64, float64 (missing -> NaN), bool, nullable boolean or text."""
    import pandas

    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pandas.array(values, dtype="boolean") if len(present) < len(values) else np.array(values, dtype=bool)
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
        if present and len(present) == len(values) and all(isinstance(value, int) for value in present):
            return np.array(values, dtype=np.int64)
        return np.array([math.nan if value is None else float(value) for value in values], dtype=np.float64)
    return np.array([_text(value) for value in values], dtype=object)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(_text(item) or "none" for item in value)
    return format_value(value)


def _fastparquet() -> Any:
    # fastparquet's import reads a pandas option that pandas 3 deprecates; the warning is
    # about fastparquet's internals, not about anything the user can change
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastparquet
    return fastparquet


def write_tables(store: str | os.PathLike[str]) -> pathlib.Path:
    """Rebuild ``metrics.parquet`` and ``metrics.zarr`` from the finished points; each is
    replaced whole, so a reader sees the old table or the new one. Done under the store's
    lock: two sweeps finishing at once write one after the other, the second from the
    points both finished."""
    fastparquet = _fastparquet()
    path = pathlib.Path(store)
    with _store_lock(path):
        table = build_table(path)
        target = path / TABLE
        with temporary_sibling(target) as temporary:
            fastparquet.write(str(temporary), table, write_index=False, stats=False)
            os.replace(temporary, target)
        _write_view(path, _to_view(table, _read_manifest(path)))
    return target


def load_table(store: str | os.PathLike[str]) -> pandas.DataFrame:
    """``STORE/metrics.parquet`` as a DataFrame (text columns as Python strings)."""
    parquet = _fastparquet().ParquetFile(str(pathlib.Path(store) / TABLE))
    return parquet.to_pandas()


def _missing(value: Any) -> bool:
    import pandas

    return value is None or value is pandas.NA or (isinstance(value, float) and math.isnan(value))


def _to_view(table: pandas.DataFrame, manifest: Mapping[str, Any]) -> xarray.Dataset:
    """The table as variables over the grid axes (the seed stays in the table: 63-bit
    integers do not survive the NaN that marks an unfinished point)."""
    import xarray

    axes = list(manifest["grid"])
    coordinates = {}
    for axis in axes:
        values = _column(list(manifest["grid"][axis]))
        coordinates[axis] = np.sort(values) if values.dtype.kind in "if" else values
    index = [{value: position for position, value in enumerate(coordinates[axis].tolist())} for axis in axes]
    shape = tuple(len(coordinates[axis]) for axis in axes)
    cells = [
        tuple(index[position][value] for position, value in enumerate(row))
        for row in table[axes].itertuples(index=False, name=None)
    ]
    data = {}
    for column in table.columns:
        if column in axes or column == "seed":
            continue
        array = np.full(shape, None, dtype=object)
        for cell, value in zip(cells, table[column].tolist()):
            array[cell] = None if _missing(value) else value
        complete = all(value is not None for value in array.flat)
        kind = table[column].dtype.kind  # b: bool or nullable boolean, i/u/f: numbers, O: text
        if kind == "b" and complete:
            array = array.astype(bool)
        elif kind in "biuf":
            array = np.array([math.nan if value is None else float(value) for value in array.flat]).reshape(shape)
        else:
            array = np.array(["" if value is None else str(value) for value in array.flat], dtype=object).reshape(shape)
        data[column] = (axes, array)
    return xarray.Dataset(data, coords=coordinates, attrs={"experiment": manifest["experiment"]})


def _write_view(path: pathlib.Path, view: xarray.Dataset) -> None:
    replace_directory(path / VIEW, lambda store: view.to_zarr(store, mode="w-", consolidated=False))


def load_view(store: str | os.PathLike[str]) -> xarray.Dataset:
    """``STORE/metrics.zarr``: every table column as a variable over the grid axes
    (numeric axes sorted; a point not finished is NaN/None)."""
    import xarray

    with xarray.open_zarr(pathlib.Path(store) / VIEW, consolidated=False) as view:
        return view.load()
