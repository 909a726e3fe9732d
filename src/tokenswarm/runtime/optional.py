"""Optional dependencies: import on use, or say in one line which extra to install.

The core install (torch, numpy, scipy, xarray, zarr, matplotlib, typer, rich) runs every
command; a few features need more:

=========  ===================  ==========================================================
extra      package              needed by
=========  ===================  ==========================================================
sklearn    scikit-learn         the digits data set and its split (noise-accuracy,
                                pde-vs-transformer's image modality, stabilizers'
                                trained models, information-flow) and information-flow's
                                logistic probe
ot         POT                  nothing: a faster exact optimal transport for
                                propagation-of-chaos (scipy's assignment solver is the
                                fallback; POT is needed only when N does not divide N_ref)
probe      transformers, ...    tokenswarm probe, real-tokens, pde-vs-transformer's text
=========  ===================  ==========================================================

A missing one raises :class:`MissingDependencyError`, which the command line reports as
one ``error:`` line with exit code 2 (like any other request this installation cannot
serve).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingDependencyError", "require"]


class MissingDependencyError(ImportError):
    """An optional package that a feature needs is not installed."""


def require(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the extra.

    Args:
        module: dotted module to import, e.g. ``"sklearn.datasets"``.
        package: the distribution that provides it, e.g. ``"scikit-learn"``.
        extra: the tokenswarm extra that installs it, e.g. ``"sklearn"``.
        purpose: what needs it, for the message, e.g. ``"the digits data set"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {package} ({module} cannot be imported: {error}); "
            f"install it with: pip install 'tokenswarm[{extra}]'"
        ) from None
