"""What an experiment returns, and how it is written to and read from disk.

An experiment returns a :class:`Result`: its parameters, scalar metrics, the claims it
checks against the papers (each with measured value, expectation and pass/fail), an
optional ``xarray.Dataset`` of raw data and matplotlib figures. :meth:`Result.save` writes
an output directory::

    out_dir/
      <figure>.png     one per entry of Result.figures
      <animation>.gif  already written by the experiment, listed in Result.animations
      data.zarr/       Result.data, if any (consolidated metadata)
      result.json      the summary, written last

Both are self-describing. ``result.json`` records the versions, the UTC timestamp, the
wall time and the machine (cores, device, platform) next to the parameters. The
dataset's attributes record the same provenance (tokenswarm, torch and Python versions,
the parameters as JSON, the seed, the command line, the timestamp), and every variable
and coordinate carries the CF attributes ``long_name`` and ``units``: an experiment sets
them where it knows better, :data:`QUANTITIES` names the quantities that recur across
experiments, and anything else is described by its name with units ``"1"``
(dimensionless, CF's spelling): tokens live on the unit sphere and time is depth, so
tokenswarm's quantities are dimensionless unless marked (angles in ``rad``, wall
times in ``s``, information in ``nat``).

:meth:`Result.save` never replaces a file it did not write (one not listed by an earlier
``result.json`` or the ``.tokenswarm-run`` marker of :mod:`tokenswarm.io.rundir`). The
commands build a run in a partial sibling directory and swap it in whole
(:class:`tokenswarm.io.rundir.RunDirectory`), so a finished run is never rewritten in place.

Every file is written atomically (temporary sibling, then ``os.replace``; the Zarr store
goes to a temporary directory that is renamed into place), and ``result.json`` is written
last, so its presence means the whole run was saved: a crash never leaves a half-written
summary that a report would take for a finished result.

JSON conventions: numpy and torch scalars/arrays become Python numbers/lists, paths and
dtypes become strings, and non-finite floats (NaN, +-inf) become ``null`` because strict
JSON has no spelling for them. A claim whose measurement is non-finite therefore shows
``"measured": null`` and, since every comparison with NaN is false, ``"passed": false``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import pathlib
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenswarm.io.refs import Ref, parse_references

if TYPE_CHECKING:  # heavy imports only where they are used
    import matplotlib.figure
    import xarray

__all__ = [
    "Claim",
    "Result",
    "RESULT_FILE",
    "DATA_STORE",
    "check",
    "claim_less",
    "claim_greater",
    "claim_between",
    "claim_close",
    "to_jsonable",
    "describe_variables",
    "versions",
    "machine",
    "utc_timestamp",
    "QUANTITIES",
    "load_result",
    "load_data",
    "atomic_write_text",
    "temporary_sibling",
    "replace_directory",
]

RESULT_FILE = "result.json"
DATA_STORE = "data.zarr"

@dataclass
class Claim:
    """One statement from a paper, checked by an experiment.

    Attributes:
        name: short identifier, e.g. ``"clusters to one point"``.
        reference: where the paper states it, as text, e.g. ``"2312.10794 Thm 6.8, eq. (6.9)"``.
        measured: what the experiment observed (number, list or text).
        expected: the criterion, e.g. ``"< 1e-08"``, ``"in [0.9, 1.1]"`` or a number.
        passed: whether ``measured`` meets ``expected``; ``None`` when the run cannot decide
            (too small a sample, a crossing beyond the simulated time): *inconclusive*.
        detail: anything a reader needs to judge the check (sample size, test used, and for an
            inconclusive claim what would decide it).
        refs: the same references, structured (paper id and place); parsed from ``reference``
            when not given and the text starts with an arXiv id.
    """

    name: str
    reference: str
    measured: Any
    expected: str | float
    passed: bool | None
    detail: str = ""
    refs: tuple[Ref, ...] = ()

    def __post_init__(self) -> None:
        if not self.refs:
            try:
                self.refs = parse_references(self.reference)
            except ValueError:
                self.refs = ()

    @property
    def status(self) -> str:
        """``"pass"``, ``"fail"`` or ``"inconclusive"``."""
        return "inconclusive" if self.passed is None else "pass" if self.passed else "fail"

    def to_json_dict(self) -> dict[str, Any]:
        first = self.refs[0] if self.refs else None
        return {
            "name": str(self.name),
            "reference": str(self.reference),
            "measured": to_jsonable(self.measured),
            "expected": to_jsonable(self.expected),
            "passed": None if self.passed is None else bool(self.passed),
            "detail": str(self.detail),
            "status": self.status,
            "paper": first.paper if first else None,
            "where": first.where if first else None,
            "refs": [ref.to_json_dict() for ref in self.refs],
        }


@dataclass
class Result:
    """Everything one experiment run produced.

    ``params`` is filled in by the registry with the parsed parameters and the run
    settings (seed, device, dtype, quick), so an experiment may pass ``{}``.

    Attributes:
        experiment: registered name of the experiment (filled in by the registry).
        params: parameter values used (JSON-able after :func:`to_jsonable`; filled in by the
            registry with the parsed parameters and run settings).
        metrics: scalar or small-array measurements, by name.
        claims: the paper statements checked by this run.
        data: raw data saved as ``data.zarr`` (e.g. trajectories with dims
            ``(time, token, coordinate)``).
        figures: ``name -> Figure``; saved as ``name.png`` and then closed.
        animations: ``name -> path`` of files the experiment already wrote (GIF, MP4);
            they must lie inside the output directory so the report can link them.
        seconds: wall time of the computation, set by the registry.
        timestamp: UTC time (ISO 8601) at which the computation ended, set by the
            registry (or by :meth:`save` if still empty).
    """

    experiment: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    data: xarray.Dataset | None = None
    figures: dict[str, matplotlib.figure.Figure] = field(default_factory=dict)
    animations: dict[str, pathlib.Path] = field(default_factory=dict)
    seconds: float = 0.0
    timestamp: str = ""

    @property
    def all_passed(self) -> bool:
        """No claim failed (inconclusive claims do not count as failures)."""
        return all(claim.passed is not False for claim in self.claims)

    def to_json_dict(self, outputs: list[str]) -> dict[str, Any]:
        """The summary written to ``result.json`` and printed by ``--json``.

        Keys: ``experiment, params, metrics, claims, outputs, seconds`` and the
        provenance ``versions`` (:func:`versions`), ``timestamp`` (UTC, ISO 8601) and
        ``machine`` (:func:`machine`).
        """
        return {
            "experiment": str(self.experiment),
            "params": to_jsonable(self.params),
            "metrics": to_jsonable(self.metrics),
            "claims": [claim.to_json_dict() for claim in self.claims],
            "outputs": [str(output) for output in outputs],
            "seconds": to_jsonable(float(self.seconds)),
            "versions": versions(),
            "timestamp": self.timestamp or None,
            "machine": machine(str(self.params.get("device", "cpu"))),
        }

    def save(self, out_dir: str | os.PathLike[str]) -> list[str]:
        """Write figures, data and ``result.json`` (last) into ``out_dir``.

        Figures are closed after saving so that long ``reproduce`` runs do not accumulate
        open matplotlib figures.

        Returns:
            Absolute paths of everything written, ``result.json`` last. Inside
            ``result.json`` the same paths are stored relative to ``out_dir`` so that the
            directory can be moved or archived.

        Raises:
            ValueError: an animation path does not exist or lies outside ``out_dir``, or a
                figure name is not a plain file name.
        """
        from tokenswarm.io import rundir  # rundir imports this module

        directory = pathlib.Path(out_dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self.timestamp = self.timestamp or utc_timestamp()
        planned = [f"{_plain_file_name(name)}.png" for name in self.figures]
        planned += [DATA_STORE] if self.data is not None else []
        planned.append(RESULT_FILE)
        # Replace only what tokenswarm wrote: a data.zarr or figure of somebody else's is
        # never deleted.
        written = rundir.written_entries(directory)
        clashes = [name for name in planned if os.path.lexists(directory / name) and name not in written]
        if clashes:
            raise FileExistsError(
                f"{directory} already holds {', '.join(clashes)}, not written by tokenswarm; "
                "save into a new or empty directory"
            )
        # animations checked before anything is written: a rejected save leaves no files
        animations = [_animation_relative_path(directory, name, path) for name, path in self.animations.items()]
        relative: list[str] = []
        for name, figure in self.figures.items():
            relative.append(_save_figure(directory, name, figure))
        relative.extend(animations)
        if self.data is not None:
            _save_dataset(directory, self._self_described_data())
            relative.append(DATA_STORE)
        relative.append(RESULT_FILE)
        summary = self.to_json_dict(relative)
        atomic_write_text(directory / RESULT_FILE, _dumps(summary) + "\n")
        return [str(directory / name) for name in relative]

    def _self_described_data(self) -> xarray.Dataset:
        """``data`` with CF attributes on every variable and the run's provenance."""
        assert self.data is not None
        data = describe_variables(self.data)
        params = to_jsonable(self.params)
        versions_now = versions()
        data.attrs.update(
            experiment=str(self.experiment),
            tokenswarm_version=versions_now["tokenswarm"],
            torch_version=versions_now["torch"] or "not imported",
            python_version=versions_now["python"],
            parameters=json.dumps(params, ensure_ascii=False, allow_nan=False, sort_keys=True),
            seed=params.get("seed", "not recorded") if isinstance(params, dict) else "not recorded",
            command_line=shlex.join(sys.argv),
            timestamp=self.timestamp or utc_timestamp(),
        )
        return data


# --------------------------------------------------------------------------------------
# Provenance and CF attributes
# --------------------------------------------------------------------------------------


def utc_timestamp() -> str:
    """Now, in UTC, as ISO 8601 to the second (``2026-01-31T12:00:00+00:00``)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def versions() -> dict[str, str | None]:
    """Versions of tokenswarm, Python, torch and numpy (``None``: not imported here)."""
    import tokenswarm

    def loaded(module: str) -> str | None:
        found = sys.modules.get(module)  # the version in use, without importing it
        return str(getattr(found, "__version__", "")) or None if found is not None else None

    return {
        "tokenswarm": tokenswarm.__version__,
        "python": platform.python_version(),
        "torch": loaded("torch"),
        "numpy": loaded("numpy"),
    }


def machine(device: str = "cpu") -> dict[str, Any]:
    """Where a run ran: CPU cores, the torch device (with its name for CUDA) and platform."""
    description: dict[str, Any] = {"cores": os.cpu_count(), "device": device, "platform": platform.platform()}
    torch = sys.modules.get("torch")
    if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
        description["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return description


#: ``name -> (long_name, units)`` of the quantities that recur across experiments (CF
#: attributes for variables and coordinates that do not set their own).
QUANTITIES: dict[str, tuple[str, str]] = {
    "t": ("time (depth)", "1"),
    "beta": ("inverse temperature", "1"),
    "n": ("number of tokens", "1"),
    "d": ("dimension", "1"),
    "run": ("independent run", "1"),
    "seed": ("seed index", "1"),
    "token": ("token index", "1"),
    "dim": ("coordinate index", "1"),
    "layer": ("layer index", "1"),
    "bin": ("histogram bin", "1"),
    "density": ("density on the circle", "1"),
    "w1": ("Wasserstein-1 distance to the mean-field density", "1"),
    "fraction": ("fraction of runs clustered", "1"),
    "standard_error": ("standard error", "1"),
    "energy": ("interaction energy", "1"),
    "clusters": ("number of clusters", "1"),
    "x": ("token position on the sphere", "1"),
    "rho": ("mean pairwise inner product", "1"),
}
#: Units by name prefix / suffix for the quantities that are not dimensionless.
_PREFIX_UNITS = {"theta": "rad", "angle": "rad"}
_SUFFIX_UNITS = {"seconds": "s"}


def describe_variables(data: xarray.Dataset) -> xarray.Dataset:
    """A shallow copy of ``data`` with ``long_name`` and ``units`` on every variable and
    coordinate: kept where set, else from :data:`QUANTITIES`, else the name (underscores
    as spaces) and units from the name's prefix or suffix, ``"1"`` otherwise."""
    described = data.copy(deep=False)
    for name, variable in described.variables.items():
        attrs = dict(variable.attrs)  # a copy: the caller's dataset is not modified
        text = str(name)
        long_name, units = QUANTITIES.get(text, (text.replace("_", " "), _units_from_name(text)))
        attrs.setdefault("long_name", long_name)
        attrs.setdefault("units", units)
        described[name].attrs = attrs
    return described


def _units_from_name(name: str) -> str:
    for prefix, units in _PREFIX_UNITS.items():
        if name.startswith(prefix):
            return units
    for suffix, units in _SUFFIX_UNITS.items():
        if name.endswith(suffix):
            return units
    return "1"


# --------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------


# Claims built inside ``run()`` (experiments without claim rules): the same criteria as the
# verdicts of :mod:`tokenswarm.io.claims`, which imports this module, hence the local imports.


def _claim(name: str, reference: str, judged: Any) -> Claim:
    return Claim(name, reference, judged.measured, judged.expected, judged.passed, judged.detail)


def check(
    name: str, reference: str, measured: Any, expected: str | float, passed: bool, detail: str = ""
) -> Claim:
    """A claim whose criterion the caller evaluated (statistical tests, structural checks)."""
    from tokenswarm.io.claims import verdict

    return _claim(name, reference, verdict(measured, expected, bool(passed), detail))


def claim_less(name: str, reference: str, measured: Any, bound: float, detail: str = "") -> Claim:
    """Passes when ``measured < bound`` (a NaN measurement fails)."""
    from tokenswarm.io.claims import less

    return _claim(name, reference, less(measured, bound, detail))


def claim_greater(name: str, reference: str, measured: Any, bound: float, detail: str = "") -> Claim:
    """Passes when ``measured > bound`` (a NaN measurement fails)."""
    from tokenswarm.io.claims import greater

    return _claim(name, reference, greater(measured, bound, detail))


def claim_between(
    name: str, reference: str, measured: Any, low: float, high: float, detail: str = ""
) -> Claim:
    """Passes when ``low <= measured <= high`` (a NaN measurement fails)."""
    from tokenswarm.io.claims import between

    return _claim(name, reference, between(measured, low, high, detail))


def claim_close(
    name: str,
    reference: str,
    measured: Any,
    target: float,
    rtol: float | None = None,
    atol: float | None = None,
    detail: str = "",
) -> Claim:
    """Passes when ``|measured - target| <= atol + rtol * |target|``.

    At least one tolerance must be given: a hidden default tolerance would decide a pass
    silently, which the design forbids.
    """
    from tokenswarm.io.claims import close

    return _claim(name, reference, close(measured, target, rtol, atol, detail))


def _as_float(measured: Any) -> float:
    value = _plain(measured)
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"a claim comparison needs a scalar measurement, got {measured!r}")


def _plain(value: Any) -> Any:
    """Unwrap numpy/torch scalars so claims hold plain Python values."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def to_jsonable(value: Any, path: str = "$") -> Any:
    """Convert ``value`` to plain JSON types (see the module docstring for the rules).

    Raises:
        TypeError: for a value with no sensible JSON form; ``path`` (``$.metrics.x[2]``)
            says where, so the experiment author can fix it rather than lose the field.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    np = sys.modules.get("numpy")  # like torch below: a numpy value implies numpy is imported
    if np is not None:
        if isinstance(value, np.generic):
            return to_jsonable(value.item(), path)
        if isinstance(value, np.ndarray):
            return to_jsonable(value.tolist(), path)
    torch = sys.modules.get("torch")  # a torch value implies torch is already imported
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return to_jsonable(value.detach().cpu().tolist(), path)
        if isinstance(value, torch.dtype):
            return str(value).removeprefix("torch.")
        if isinstance(value, torch.device):
            return str(value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(item, f"{path}[{index}]") for index, item in enumerate(items)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), path)
    raise TypeError(f"cannot store {type(value).__name__} at {path} in JSON: {value!r:.80}")


def _dumps(summary: Mapping[str, Any]) -> str:
    # allow_nan=False: to_jsonable already replaced non-finite floats, so a NaN reaching
    # this point is a bug that must not produce invalid JSON.
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False)


def load_result(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``out_dir/result.json`` (raises ``FileNotFoundError`` if the run never finished)."""
    with open(pathlib.Path(out_dir) / RESULT_FILE, encoding="utf-8") as stream:
        return json.load(stream)


def load_data(out_dir: str | os.PathLike[str]) -> xarray.Dataset | None:
    """Load ``out_dir/data.zarr`` into memory, or ``None`` if the run saved no data."""
    import xarray

    store = pathlib.Path(out_dir) / DATA_STORE
    if not store.exists():
        return None
    # consolidated=None: the consolidated metadata when present (every store written
    # since it was introduced), the per-array metadata of older stores otherwise
    with _quiet_consolidation(), xarray.open_zarr(store, consolidated=None) as dataset:
        return dataset.load()


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


@contextmanager
def temporary_sibling(target: pathlib.Path) -> Iterator[pathlib.Path]:
    """A fresh, not yet created path next to ``target``, removed if the block fails.

    Same directory, hence same filesystem, so ``os.replace`` onto ``target`` is atomic.
    The file is left for the caller to create (rather than ``mkstemp``) so that it gets
    the usual umask-derived permissions instead of mkstemp's private 0600.
    """
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        yield temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` so that readers see the old file or the new, never half."""
    target_path = pathlib.Path(target)
    with temporary_sibling(target_path) as temporary:
        with open(temporary, "x", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target_path)


def _save_figure(directory: pathlib.Path, name: str, figure: matplotlib.figure.Figure) -> str:
    import matplotlib.pyplot as plt

    from tokenswarm.plots._common import DPI, finish_figure

    file_name = f"{_plain_file_name(name)}.png"
    try:
        finish_figure(figure)
        with temporary_sibling(directory / file_name) as temporary:
            figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight")
            os.replace(temporary, directory / file_name)
    finally:
        plt.close(figure)
    return file_name


def _plain_file_name(name: str) -> str:
    if not name or name in {".", ".."} or any(sep in name for sep in ("/", "\\", os.sep)):
        raise ValueError(f"figure name {name!r} must be a plain file name without directories")
    return name


def _animation_relative_path(directory: pathlib.Path, name: str, path: pathlib.Path) -> str:
    resolved = pathlib.Path(path)
    if not resolved.is_absolute():
        resolved = directory / resolved
    resolved = resolved.resolve()
    if not resolved.is_file():
        raise ValueError(f"animation {name!r}: file {resolved} does not exist")
    try:
        return resolved.relative_to(directory).as_posix()
    except ValueError:
        raise ValueError(
            f"animation {name!r}: {resolved} lies outside the output directory {directory}; "
            "write animations into RunContext.out_dir"
        ) from None


def _with_variable_length_text(data: xarray.Dataset) -> xarray.Dataset:
    """Store text labels (e.g. a ``scheme`` coordinate) as variable-length strings.

    Zarr v3 has no specification for numpy's fixed-width unicode dtype and warns that such
    arrays may become unreadable; variable-length strings are specified.
    """
    # Plain Variables, not DataArrays: a DataArray would carry (and restore) its
    # fixed-width coordinates along with it.
    text_coords = {
        name: coord.variable.astype(object) for name, coord in data.coords.items() if coord.dtype.kind == "U"
    }
    text_vars = {name: var.variable.astype(object) for name, var in data.data_vars.items() if var.dtype.kind == "U"}
    return data.assign_coords(text_coords).assign(text_vars)


@contextmanager
def _quiet_consolidation() -> Iterator[None]:
    """Zarr 3 warns on every store that consolidated metadata is not (yet) in its
    specification (xarray and zarr read it), and xarray on every older store that lacks
    it; neither says anything the user can act on, so neither is printed on each run."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # a store written before consolidation was introduced: read per array, as before
        warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated metadata")
        yield


def replace_directory(target: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    """Have ``write(path)`` build a directory in a hidden sibling, then swap it in for ``target``.

    A directory cannot be replaced atomically while it exists, so an older one is first
    renamed aside and deleted only after the new one is in place; a crash at any point
    leaves either the old or the new directory under ``target`` (or, in the instant between
    the two renames, the old one under a ``.NAME.old-*`` name).
    """
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        built = staging / target.name
        write(built)
        retired = None
        if target.exists():
            retired = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired / target.name)
        os.replace(built, target)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save_dataset(directory: pathlib.Path, data: xarray.Dataset) -> None:
    """Write ``data`` as ``directory/data.zarr``, replacing an older store whole (:func:`replace_directory`)."""

    def write(store: pathlib.Path) -> None:
        with _quiet_consolidation():
            _with_variable_length_text(data).to_zarr(store, mode="w-", consolidated=True)

    replace_directory(directory / DATA_STORE, write)
