"""A quick, conventional command line (issue 13 §4): --version, --help and list start
without importing torch; --quiet/--verbose; --json prints exactly one document.

Timings are not asserted here (benchmarks/ and docs hold them); what is asserted is the
cause of the speed: which heavy modules a command imports.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import tokenswarm
from tokenswarm import cli
from tokenswarm.experiments import catalog

TESTS_DIR = pathlib.Path(__file__).parent
HEAVY = ("torch", "numpy", "xarray", "matplotlib", "scipy", "zarr")

# Runs the command line in-process (as the console script does) and reports on stderr
# which heavy modules it imported.
_PROBE = """
import sys
from tokenswarm.cli import app
try:
    app(args=sys.argv[1:], prog_name="tokenswarm")
except SystemExit:
    pass
print("IMPORTED:" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _heavy_imports(*args: str, extra_env: dict[str, str] | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    env = {**os.environ, **(extra_env or {})}
    env.pop(cli.EXTRA_EXPERIMENTS_ENV, None)
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )
    marker = [line for line in completed.stderr.splitlines() if line.startswith("IMPORTED:")]
    assert marker, completed.stderr
    imported = [name for name in marker[-1].removeprefix("IMPORTED:").split(",") if name]
    return imported, completed


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list"], ["list", "--verbose"], ["run", "--help"]])
def test_fast_commands_import_no_heavy_module(args: list[str]) -> None:
    imported, completed = _heavy_imports(*args)
    assert imported == [], f"tokenswarm {' '.join(args)} imported {imported}"
    assert completed.stdout.strip()


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli.app, ["--version"], prog_name="tokenswarm")
    assert result.exit_code == 0
    assert result.stdout == f"tokenswarm {tokenswarm.__version__}\n"


def test_the_index_matches_the_registry() -> None:
    """index.json is generated from the registry; regenerate it with
    ``python -m tokenswarm.experiments.catalog`` after changing an experiment module."""
    committed = json.loads(catalog.INDEX_FILE.read_text(encoding="utf-8"))
    assert committed == catalog.build_index(), "stale index: run python -m tokenswarm.experiments.catalog"
    assert catalog.read_index() is not None


def test_list_from_the_index_equals_list_from_the_registry() -> None:
    from tokenswarm.experiments import load_all, registry

    load_all()
    from_index = [entry.to_json_dict() for entry in catalog.listing()[0]]
    from_registry = [catalog.ExperimentInfo.from_experiment(registry.get(name)).to_json_dict() for name in registry.names()]
    assert from_index == from_registry


def test_a_stale_index_falls_back_to_the_registry(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = json.loads(catalog.INDEX_FILE.read_text(encoding="utf-8"))
    first = next(iter(stale["modules"]))
    stale["modules"][first] = "0" * 64  # as if that module had been edited since
    path = tmp_path / "index.json"
    path.write_text(json.dumps(stale))
    assert catalog.read_index(path) is None
    stale.pop("modules")
    path.write_text(json.dumps(stale))
    assert catalog.read_index(path) is None
    path.write_text("{not json")
    assert catalog.read_index(path) is None


def test_quiet_and_verbose_are_exclusive() -> None:
    result = CliRunner().invoke(cli.app, ["--quiet", "--verbose", "list"], prog_name="tokenswarm")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --quiet and --verbose cannot be combined"


def _subprocess_cli(*args: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    # the package under test first (absolute: the command runs in tmp_path), then the fakes
    source = pathlib.Path(tokenswarm.__file__).resolve().parents[1]
    env = {**os.environ, cli.EXTRA_EXPERIMENTS_ENV: "fake_experiments_autoregister",
           "PYTHONPATH": os.pathsep.join([str(source), str(TESTS_DIR)])}
    return subprocess.run([sys.executable, "-m", "tokenswarm", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def test_quiet_json_run_prints_one_document_and_nothing_else(tmp_path: pathlib.Path) -> None:
    completed = _subprocess_cli("--quiet", "run", "fake_ok", "--quick", "--json", "--out", str(tmp_path / "out"),
                                tmp_path=tmp_path)
    assert completed.returncode == 0, completed.stderr
    document, end = json.JSONDecoder().raw_decode(completed.stdout)
    assert completed.stdout[end:] == "\n"  # exactly one document
    assert set(document) >= {"versions", "timestamp", "machine"}
    assert document["machine"]["device"] == "cpu" and document["versions"]["tokenswarm"] == tokenswarm.__version__
    # the experiment's own print still goes to stderr; no blank lines around it
    assert "" not in completed.stderr.splitlines()


def test_reproduce_status_lines_follow_quiet(tmp_path: pathlib.Path) -> None:
    args = ("reproduce", "--quick", "--only", "fake_ok", "--out")
    normal = _subprocess_cli(*args, str(tmp_path / "a"), tmp_path=tmp_path)
    quiet = _subprocess_cli("-q", *args, str(tmp_path / "b"), tmp_path=tmp_path)
    assert normal.returncode == 0 and quiet.returncode == 0, normal.stderr + quiet.stderr
    assert "[1/1] fake_ok" in normal.stderr
    assert "[1/1] fake_ok" not in quiet.stderr
    assert "" not in normal.stderr.splitlines()
