"""What ``tokenswarm list`` shows, read without importing the experiments (and torch).

The registry (:mod:`tokenswarm.experiments.registry`) stays the single source of truth:
an experiment exists because its module registers it. Importing every module costs
seconds (each imports torch), so ``list`` reads ``index.json`` beside this file instead:
name, title, reference and parameter specs of every built-in experiment, written by
``python -m tokenswarm.experiments.catalog`` from the registry itself. The index also holds
the SHA-256 of each module's source; when a module was added, removed or edited since
the index was written, :func:`listing` imports the modules and asks the registry, so a
stale index costs time, never a wrong listing. ``tests/test_catalog.py`` holds the
committed index equal to the registry.

This module imports neither torch nor the registry at import time.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenswarm.params import Choices, ParamSpec, param_specs

__all__ = ["INDEX_FILE", "ExperimentInfo", "build_index", "listing", "read_index", "write_index"]

INDEX_FILE = pathlib.Path(__file__).with_name("index.json")
_PACKAGE = "tokenswarm.experiments"
_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "none": type(None)}
_CONTAINERS: dict[str, type] = {"list": list, "tuple": tuple}


@dataclass(frozen=True)
class ExperimentInfo:
    """The listing of one experiment: what ``list`` and ``list --verbose`` print."""

    name: str
    title: str
    reference: str
    module: str
    quick: Mapping[str, Any]
    specs: tuple[ParamSpec, ...]

    @classmethod
    def from_experiment(cls, experiment: Any) -> ExperimentInfo:
        """From a registered :class:`~tokenswarm.experiments.registry.Experiment`."""
        return cls(
            name=experiment.name,
            title=experiment.title,
            reference=experiment.reference,
            module=experiment.run.__module__,
            quick=dict(experiment.quick),
            specs=tuple(param_specs(experiment.params)),
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "reference": self.reference,
            "module": self.module,
            "quick": _plain(self.quick),
            "params": [_spec_to_json(spec) for spec in self.specs],
        }

    @classmethod
    def from_json_dict(cls, entry: Mapping[str, Any]) -> ExperimentInfo:
        return cls(
            name=entry["name"],
            title=entry["title"],
            reference=entry["reference"],
            module=entry["module"],
            quick=dict(entry["quick"]),
            specs=tuple(_spec_from_json(item) for item in entry["params"]),
        )


def _plain(value: Any) -> Any:
    """Tuples as lists, as JSON stores them (so that a round trip compares equal)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _spec_to_json(spec: ParamSpec) -> dict[str, Any]:
    alternatives = [
        {"choices": list(alternative.values)} if isinstance(alternative, Choices)
        else ("none" if alternative is type(None) else alternative.__name__)
        for alternative in spec.alternatives
    ]
    return {
        "name": spec.name,
        "alternatives": alternatives,
        "container": spec.container.__name__ if spec.container is not None else None,
        "default": _plain(spec.default),
        "help": spec.help,
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "minimum_exclusive": spec.minimum_exclusive,
        "maximum_exclusive": spec.maximum_exclusive,
        "increasing": spec.increasing,
    }


def _spec_from_json(item: Mapping[str, Any]) -> ParamSpec:
    alternatives = tuple(
        Choices(tuple(alternative["choices"])) if isinstance(alternative, Mapping) else _SCALARS[alternative]
        for alternative in item["alternatives"]
    )
    return ParamSpec(
        name=item["name"],
        alternatives=alternatives,
        container=_CONTAINERS[item["container"]] if item["container"] is not None else None,
        default=item["default"],
        help=item["help"],
        minimum=item["minimum"],
        maximum=item["maximum"],
        minimum_exclusive=item["minimum_exclusive"],
        maximum_exclusive=item["maximum_exclusive"],
        increasing=item["increasing"],
    )


# --------------------------------------------------------------------------------------
# Module sources (no import needed)
# --------------------------------------------------------------------------------------


def _package_dir() -> pathlib.Path:
    return pathlib.Path(__file__).parent


def module_hashes() -> dict[str, str | None]:
    """``module name -> SHA-256 of its source`` for the built-in experiment modules.

    A module that is not a plain ``.py`` file (a package, a compiled file) maps to
    ``None``, which never matches an index entry: such a module is always imported.
    """
    from tokenswarm.experiments import experiment_modules

    hashes: dict[str, str | None] = {}
    for module in experiment_modules():
        source = _package_dir() / f"{module.rsplit('.', 1)[-1]}.py"
        hashes[module] = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else None
    return hashes


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------


def build_index() -> dict[str, Any]:
    """The index of the built-in experiments, from the registry (imports every module)."""
    from tokenswarm.experiments import load_all, registry

    load_all()
    builtin = [
        registry.get(name) for name in registry.names()
        if registry.get(name).run.__module__.startswith(f"{_PACKAGE}.")
    ]
    return {
        "modules": module_hashes(),
        "experiments": [ExperimentInfo.from_experiment(experiment).to_json_dict() for experiment in builtin],
    }


def write_index(path: pathlib.Path = INDEX_FILE) -> None:
    text = json.dumps(build_index(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")


def read_index(path: pathlib.Path = INDEX_FILE) -> dict[str, Any] | None:
    """The index, or ``None`` when it is missing, unreadable or out of date."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("modules") != module_hashes():
        return None
    return index


def listing(extra_modules: Sequence[str] = ()) -> tuple[list[ExperimentInfo], list[Any]]:
    """Every experiment (sorted by name) and the modules that failed to import.

    From the index when it is current and no extra modules are asked for, together with
    whatever this process has registered already (a registered experiment wins over its
    index entry); otherwise the modules are imported (``strict=False``: a broken module is
    reported, not fatal) and the registry is listed.
    """
    index = None if extra_modules else read_index()
    if index is not None:
        entries = {entry["name"]: ExperimentInfo.from_json_dict(entry) for entry in index["experiments"]}
        registry = sys.modules.get(f"{_PACKAGE}.registry")  # loaded: its entries are live
        if registry is not None:
            entries.update({name: ExperimentInfo.from_experiment(item) for name, item in registry.EXPERIMENTS.items()})
        return [entries[name] for name in sorted(entries)], []
    from tokenswarm.experiments import load_all, registry

    failures = load_all(extra_modules, strict=False)
    return [ExperimentInfo.from_experiment(registry.get(name)) for name in registry.names()], failures

if __name__ == "__main__":
    write_index()
    print(f"wrote {INDEX_FILE}")
