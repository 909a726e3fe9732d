"""Experiments: one module per paper result, each registering itself on import.

Add an experiment by creating ``tokenswarm/experiments/<name>.py`` that decorates its
``run`` function with :func:`register`; :func:`load_all` imports every module of this
package (except the registry and ``_private`` modules), so no list needs updating.

The registry's names are re-exported lazily (PEP 562): importing this package, or
:mod:`tokenswarm.experiments.catalog` for ``tokenswarm list``, does not import torch.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_FROM_REGISTRY = frozenset({
    "EXPERIMENTS", "Experiment", "RunContext", "UnknownExperimentError", "get", "names", "register",
    "run_experiment", "unregister",
})

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentImportError",
    "ImportFailure",
    "RunContext",
    "UnknownExperimentError",
    "experiment_modules",
    "get",
    "load_all",
    "load_for",
    "names",
    "register",
    "run_experiment",
    "unregister",
]

_NOT_EXPERIMENTS = frozenset({"registry", "catalog"})


def __getattr__(name: str) -> Any:
    if name in _FROM_REGISTRY:
        return getattr(importlib.import_module(f"{__name__}.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ExperimentImportError(ImportError):
    """An experiment module could not be imported (a bug in that module, not a usage error)."""


@dataclass(frozen=True)
class ImportFailure:
    """A module that failed to import: its dotted name, the error and the formatted traceback."""

    module: str
    error: BaseException
    traceback: str

    def summary(self) -> str:
        return f"{self.module}: {type(self.error).__name__}: {self.error}"


def experiment_modules() -> list[str]:
    """Dotted names of the experiment modules in this package, sorted."""
    return sorted(
        f"{__name__}.{info.name}"
        for info in pkgutil.iter_modules(__path__)
        if info.name not in _NOT_EXPERIMENTS and not info.name.startswith("_")
    )


def load_all(extra_modules: Iterable[str] = (), *, strict: bool = True) -> list[ImportFailure]:
    """Import every experiment module (plus ``extra_modules``) so that they register.

    Importing is idempotent, so calling this repeatedly is cheap.

    Args:
        extra_modules: further dotted module names to import, e.g. test experiments.
        strict: raise on the first failure (the default) instead of collecting failures.
            ``reproduce`` uses ``strict=False`` so that one broken module becomes an error
            row in the report instead of preventing every other experiment from running.

    Returns:
        The failures (always empty when ``strict``).

    Raises:
        ExperimentImportError: when ``strict`` and a module fails to import; the original
            exception is chained as ``__cause__``.
    """
    return _import_modules([*experiment_modules(), *extra_modules], strict=strict)


def load_for(name: str, extra_modules: Iterable[str] = (), *, strict: bool = True) -> list[ImportFailure]:
    """Import what is needed to run experiment ``name``, cheaply when possible.

    Tries ``extra_modules`` and the module named after the experiment
    (``phase-diagram`` -> ``experiments/phase_diagram.py``) first, and imports every module
    only if that did not register ``name``. Running one experiment then does not pay for
    importing all the others (nor fail because an unrelated one is broken), while the
    error for an unknown name can still list every valid one.

    Arguments, return value and errors as for :func:`load_all`.
    """
    candidate = f"{__name__}.{name.replace('-', '_')}"
    first = [*extra_modules, *([candidate] if candidate in experiment_modules() else [])]
    from tokenswarm.experiments.registry import EXPERIMENTS

    failures = _import_modules(first, strict=strict)
    if name in EXPERIMENTS:
        return failures
    tried = {failure.module for failure in failures}
    rest = [module for module in [*experiment_modules(), *extra_modules] if module not in tried]
    return failures + _import_modules(rest, strict=strict)


def _import_modules(modules: Iterable[str], *, strict: bool) -> list[ImportFailure]:
    failures = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any import-time bug is reported the same way
            if strict:
                raise ExperimentImportError(
                    f"experiment module '{module}' failed to import: {type(error).__name__}: {error}"
                ) from error
            failures.append(ImportFailure(module, error, traceback.format_exc()))
    return failures
