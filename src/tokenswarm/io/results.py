"""What an experiment returns, and how it is written to and read from disk.

An experiment returns a :class:`Result`: its parameters, scalar metrics, the claims it
checks against the papers (each with measured value, expectation and pass/fail), an
optional ``xarray.Dataset`` of raw data and matplotlib figures. :meth:`Result.save` writes
an output directory::

    out_dir/
      <figure>.png     one per entry of Result.figures
      <animation>.gif  already written by the experiment, listed in Result.animations
      data.zarr/       Result.data, if any
      result.json      the summary, written last

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
import enum
import json
import math
import os
import pathlib
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

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
    "load_result",
    "load_data",
    "atomic_write_text",
    "temporary_sibling",
]

RESULT_FILE = "result.json"
DATA_STORE = "data.zarr"

@dataclass
class Claim:
    """One statement from a paper, checked by an experiment.

    Attributes:
        name: short identifier, e.g. ``"clusters to one point"``.
        reference: where the paper states it, e.g. ``"2312.10794 Thm 6.8, eq. (6.9)"``.
        measured: what the experiment observed (number, list or text).
        expected: the criterion, e.g. ``"< 1e-08"``, ``"in [0.9, 1.1]"`` or a number.
        passed: whether ``measured`` meets ``expected``.
        detail: anything a reader needs to judge the check (sample size, test used...).
    """

    name: str
    reference: str
    measured: Any
    expected: str | float
    passed: bool
    detail: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": str(self.name),
            "reference": str(self.reference),
            "measured": to_jsonable(self.measured),
            "expected": to_jsonable(self.expected),
            "passed": bool(self.passed),
            "detail": str(self.detail),
        }


@dataclass
class Result:
    """Everything one experiment run produced.

    ``params`` is filled in by the registry with the parsed parameters and the run
    settings (seed, device, dtype, quick), so an experiment may pass ``{}``.

    Attributes:
        experiment: registered name of the experiment.
        params: parameter values used (JSON-able after :func:`to_jsonable`).
        metrics: scalar or small-array measurements, by name.
        claims: the paper statements checked by this run.
        data: raw data saved as ``data.zarr`` (e.g. trajectories with dims
            ``(time, token, coordinate)``).
        figures: ``name -> Figure``; saved as ``name.png`` and then closed.
        animations: ``name -> path`` of files the experiment already wrote (GIF, MP4);
            they must lie inside the output directory so the report can link them.
        seconds: wall time of the computation, set by the registry.
    """

    experiment: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    claims: list[Claim]
    data: xarray.Dataset | None = None
    figures: dict[str, matplotlib.figure.Figure] = field(default_factory=dict)
    animations: dict[str, pathlib.Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def all_passed(self) -> bool:
        return all(claim.passed for claim in self.claims)

    def to_json_dict(self, outputs: list[str]) -> dict[str, Any]:
        """The summary written to ``result.json`` and printed by ``--json``.

        Keys are exactly ``experiment, params, metrics, claims, outputs, seconds``.
        """
        return {
            "experiment": str(self.experiment),
            "params": to_jsonable(self.params),
            "metrics": to_jsonable(self.metrics),
            "claims": [claim.to_json_dict() for claim in self.claims],
            "outputs": [str(output) for output in outputs],
            "seconds": to_jsonable(float(self.seconds)),
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
            _save_dataset(directory, self.data)
            relative.append(DATA_STORE)
        relative.append(RESULT_FILE)
        summary = self.to_json_dict(relative)
        atomic_write_text(directory / RESULT_FILE, _dumps(summary) + "\n")
        return [str(directory / name) for name in relative]


# --------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------


def check(
    name: str, reference: str, measured: Any, expected: str | float, passed: bool, detail: str = ""
) -> Claim:
    """A claim whose criterion the caller evaluated (statistical tests, structural checks)."""
    return Claim(name, reference, _plain(measured), expected, bool(passed), detail)


def claim_less(name: str, reference: str, measured: Any, bound: float, detail: str = "") -> Claim:
    """Passes when ``measured < bound`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Claim(name, reference, value, f"< {bound:g}", bool(value < bound), detail)


def claim_greater(name: str, reference: str, measured: Any, bound: float, detail: str = "") -> Claim:
    """Passes when ``measured > bound`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Claim(name, reference, value, f"> {bound:g}", bool(value > bound), detail)


def claim_between(
    name: str, reference: str, measured: Any, low: float, high: float, detail: str = ""
) -> Claim:
    """Passes when ``low <= measured <= high`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Claim(name, reference, value, f"in [{low:g}, {high:g}]", bool(low <= value <= high), detail)


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
    if rtol is None and atol is None:
        raise ValueError(f"claim_close({name!r}): give rtol, atol or both")
    relative = 0.0 if rtol is None else rtol
    absolute = 0.0 if atol is None else atol
    value = _as_float(measured)
    tolerance = absolute + relative * abs(target)
    return Claim(
        name,
        reference,
        value,
        f"{target:.6g} ± {tolerance:.2g}",
        bool(abs(value - target) <= tolerance),
        detail,
    )


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
    with xarray.open_zarr(store, consolidated=False) as dataset:
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


def _save_dataset(directory: pathlib.Path, data: xarray.Dataset) -> None:
    """Write ``data`` to a temporary store, then swap it in for ``data.zarr``.

    A directory cannot be replaced atomically while it exists, so an older store is first
    renamed aside and deleted only after the new one is in place; a crash at any point
    leaves either the old or the new store under ``data.zarr`` (or, in the instant between
    the two renames, the old store under a ``.data.zarr.old-*`` name).
    """
    target = directory / DATA_STORE
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{DATA_STORE}.", suffix=".tmp", dir=directory))
    try:
        store = staging / DATA_STORE
        _with_variable_length_text(data).to_zarr(store, mode="w-", consolidated=False)
        retired = None
        if target.exists():
            retired = pathlib.Path(tempfile.mkdtemp(prefix=f".{DATA_STORE}.old-", dir=directory))
            os.replace(target, retired / DATA_STORE)
        os.replace(store, target)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
