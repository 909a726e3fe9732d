"""Re-derive a finished run's claims from its saved data and compare them with its result.json.

``check_run(DIR)`` reads ``DIR/data.zarr`` (the dataset and, in its ``parameters`` attribute, the
parameters and run settings of the run), evaluates the experiment's claim rules on it
(:mod:`tokenswarm.io.claims`) and compares every claim field with ``DIR/result.json``:
names, references, expectations, details and outcomes exactly, measurements to a relative
1e-12. ``check_tree`` does the same for a ``reproduce`` directory (one run per sub-directory).

A directory that is not a readable run (no result.json, unreadable JSON, no data store,
an unknown experiment, parameters that no longer parse) raises :class:`RunUnreadableError`,
a usage error: ``tokenswarm check`` then exits 2, while 1 means the run is readable and
its claims differ from what the data says.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

from tokenswarm.io.claims import RunSettings, same_measurement
from tokenswarm.io.results import DATA_STORE, RESULT_FILE, load_data, load_result
from tokenswarm.params import UsageError, param_specs, parse_overrides

__all__ = ["RunUnreadableError", "ClaimCheck", "RunCheck", "check_run", "check_tree"]

_COMPARED = ("name", "reference", "expected", "passed", "detail")


class RunUnreadableError(UsageError):
    """The directory is not a finished, readable run of a known experiment."""


@dataclass
class ClaimCheck:
    """One claim: as saved in result.json and as re-derived from the data."""

    name: str
    saved: dict[str, Any] | None
    recomputed: dict[str, Any] | None
    differences: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.differences

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agree": self.agree, "differences": self.differences,
                "saved": self.saved, "recomputed": self.recomputed}


@dataclass
class RunCheck:
    """The outcome of re-checking one run directory."""

    directory: str
    experiment: str
    claims: list[ClaimCheck]

    @property
    def agree(self) -> bool:
        return all(claim.agree for claim in self.claims)

    def to_json_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "experiment": self.experiment, "agree": self.agree,
                "claims": [claim.to_json_dict() for claim in self.claims]}


def _read(directory: pathlib.Path) -> tuple[dict[str, Any], Any]:
    if not directory.is_dir():
        raise RunUnreadableError(f"{directory} is not a directory")
    try:
        saved = load_result(directory)
    except FileNotFoundError:
        raise RunUnreadableError(f"{directory} holds no {RESULT_FILE}: not a finished run") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunUnreadableError(f"{directory / RESULT_FILE} is not readable JSON ({error})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("experiment"), str) \
            or not isinstance(saved.get("claims"), list):
        raise RunUnreadableError(f"{directory / RESULT_FILE} is not a tokenswarm result (no experiment or claims)")
    try:
        data = load_data(directory)
    except Exception as error:  # noqa: BLE001 - any failure to open the store means unreadable
        raise RunUnreadableError(f"{directory / DATA_STORE} cannot be read ({type(error).__name__}: {error})") from None
    if data is None:
        raise RunUnreadableError(f"{directory} holds no {DATA_STORE}: its claims cannot be re-derived")
    return saved, data


def check_run(directory: str | os.PathLike[str]) -> RunCheck:
    """Re-derive the claims of the run in ``directory`` from its data and compare them.

    Raises:
        RunUnreadableError: not a readable run (see the module docstring).
    """
    from tokenswarm.experiments import load_for, registry

    directory = pathlib.Path(directory)
    saved, data = _read(directory)
    name = saved["experiment"]
    load_for(name, strict=False)
    try:
        experiment = registry.get(name)
    except UsageError:
        raise RunUnreadableError(f"{directory}: unknown experiment '{name}'") from None
    if experiment.claims is None:
        raise RunUnreadableError(f"experiment '{name}' builds its claims inside run(); they cannot be re-derived")
    try:
        stored = json.loads(data.attrs["parameters"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise RunUnreadableError(f"{directory / DATA_STORE} has no 'parameters' attribute: written before re-checks existed") from None
    names = {spec.name for spec in param_specs(experiment.params)}
    try:
        params = parse_overrides(experiment.params, {key: value for key, value in stored.items() if key in names},
                                 experiment=name)
    except UsageError as error:
        raise RunUnreadableError(f"{directory}: the saved parameters no longer parse ({error})") from None
    recomputed = [claim.to_json_dict() for claim in
                  experiment.claims.evaluate(data.load(), params, RunSettings.from_params(stored))]
    recomputed = json.loads(json.dumps(recomputed))  # the same JSON round trip as result.json
    return RunCheck(str(directory), name, _compare(saved["claims"], recomputed))


def _compare(saved: list[Any], recomputed: list[dict[str, Any]]) -> list[ClaimCheck]:
    checks: list[ClaimCheck] = []
    for index in range(max(len(saved), len(recomputed))):
        old = saved[index] if index < len(saved) and isinstance(saved[index], dict) else None
        new = recomputed[index] if index < len(recomputed) else None
        name = str((old or new or {}).get("name", f"claim {index}"))
        if old is None or new is None:
            where = "result.json" if old is None else "the data"
            checks.append(ClaimCheck(name, old, new, [f"claim {index} is missing from {where}"]))
            continue
        differences = [f"{key}: {old.get(key)!r} saved, {new.get(key)!r} from the data"
                       for key in _COMPARED if old.get(key) != new.get(key)]
        if not same_measurement(old.get("measured"), new.get("measured")):
            differences.append(f"measured: {old.get('measured')!r} saved, {new.get('measured')!r} from the data")
        checks.append(ClaimCheck(name, old, new, differences))
    return checks


def check_tree(directory: str | os.PathLike[str]) -> list[RunCheck]:
    """Check a run directory, or every run in the sub-directories of a ``reproduce`` report."""
    directory = pathlib.Path(directory)
    if (directory / RESULT_FILE).exists() or not directory.is_dir():
        return [check_run(directory)]
    runs = sorted(child for child in directory.iterdir() if (child / RESULT_FILE).exists())
    if not runs:
        raise RunUnreadableError(f"{directory} holds no {RESULT_FILE}, nor sub-directories with one: not a run")
    return [check_run(run) for run in runs]
