"""Experiments depend on the library, never on each other.

Shared pieces (ensembles of clustered fractions, outcome classification, reference
densities, the PDE fitted to a Transformer) live in the library, where they have their
own tests; an experiment module imports only the library and the registry.
"""

from __future__ import annotations

import ast
import pathlib

import tokenswarm.experiments

EXPERIMENTS_DIR = pathlib.Path(tokenswarm.experiments.__file__).parent
ALLOWED = {"tokenswarm.experiments.registry", "tokenswarm.experiments"}


def experiment_imports(source: str) -> set[str]:
    """Modules of ``tokenswarm.experiments`` imported by ``source`` (other than the registry)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tokenswarm.experiments":
                found |= {f"tokenswarm.experiments.{alias.name}" for alias in node.names if alias.name != "registry"}
            elif node.module.startswith("tokenswarm.experiments.") and node.module not in ALLOWED:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tokenswarm.experiments.")
                      and alias.name not in ALLOWED}
    return found


def test_the_scanner_sees_both_import_forms():
    source = "from tokenswarm.experiments.phase_diagram import SCHEMES\nfrom tokenswarm.experiments import mean_field as m\n"
    assert experiment_imports(source) == {"tokenswarm.experiments.phase_diagram", "tokenswarm.experiments.mean_field"}
    assert experiment_imports("from tokenswarm.experiments.registry import register\n") == set()


def test_no_experiment_imports_another():
    offenders = {}
    for path in sorted(EXPERIMENTS_DIR.glob("*.py")):
        if path.name in {"__init__.py", "registry.py", "catalog.py"}:  # infrastructure, not experiments
            continue
        imported = experiment_imports(path.read_text(encoding="utf-8"))
        if imported:
            offenders[path.name] = sorted(imported)
    assert not offenders, offenders


def test_theory_and_plots_import_their_submodules_on_first_use():
    """A run that needs one closed form does not pay for scipy.integrate or the GIF writer
    (runtime/lazy.py); names still resolve, and an unknown one is an AttributeError."""
    import subprocess
    import sys

    code = ("import sys, tokenswarm.theory as t, tokenswarm.plots as p; "
            "assert 'scipy.integrate' not in sys.modules and 'tokenswarm.plots.animate' not in sys.modules; "
            "t.equiangular_solution; p.phase_diagram_grid; "
            "assert 'tokenswarm.plots.animate' not in sys.modules; "
            "t.simplex_energy; assert 'tokenswarm.theory.energy' in sys.modules; "
            "print(hasattr(t, 'no_such_name'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
