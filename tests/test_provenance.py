"""Self-describing results and optional dependencies (issue 13 §3, §5)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr

from tokenswarm.io.results import (
    QUANTITIES,
    Result,
    describe_variables,
    load_data,
    load_result,
    machine,
    versions,
)
from tokenswarm.metrics.transport import w2_squared, w2_squared_assignment
from tokenswarm.runtime.optional import MissingDependencyError, require


@dataclass
class _NoParams:
    pass


def _result(**changes) -> Result:
    data = xr.Dataset(
        {"x": (("t", "token"), np.zeros((3, 2))), "theta_0": ("t", np.ones(3)),
         "wall_seconds": ("t", np.ones(3)), "own": ("t", np.ones(3), {"units": "m", "long_name": "mine"})},
        coords={"t": [0.0, 1.0, 2.0]},
        attrs={"note": "kept"},
    )
    fields = {"experiment": "demo", "params": {"n": 2, "seed": 7, "device": "cpu"}, "metrics": {}, "claims": [],
              "data": data}
    return Result(**{**fields, **changes})


def test_saved_dataset_has_provenance_cf_attributes_and_consolidated_metadata(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["tokenswarm", "run", "demo", "-p", "note=two words"])
    result = _result()
    result.save(tmp_path)
    data = load_data(tmp_path)
    assert data.attrs["note"] == "kept" and data.attrs["experiment"] == "demo"
    assert json.loads(data.attrs["parameters"]) == {"n": 2, "seed": 7, "device": "cpu"}
    assert data.attrs["seed"] == 7
    assert data.attrs["command_line"] == "tokenswarm run demo -p 'note=two words'"
    assert data.attrs["timestamp"] == result.timestamp and data.attrs["timestamp"].endswith("+00:00")
    assert data.attrs["python_version"] == versions()["python"]
    assert data["theta_0"].attrs["units"] == "rad" and data["wall_seconds"].attrs["units"] == "s"
    assert data["own"].attrs == {"units": "m", "long_name": "mine"}
    assert data["t"].attrs == {"long_name": QUANTITIES["t"][0], "units": "1"}
    assert data["x"].attrs["units"] == "1" and data["x"].attrs["long_name"] == QUANTITIES["x"][0]
    store = json.loads((tmp_path / "data.zarr" / "zarr.json").read_text())
    assert store.get("consolidated_metadata"), "data.zarr has no consolidated metadata"
    with xr.open_zarr(tmp_path / "data.zarr", consolidated=True) as reopened:  # fails without it
        assert set(reopened.data_vars) == {"x", "theta_0", "wall_seconds", "own"}


def test_describing_does_not_modify_the_experiments_dataset() -> None:
    original = _result().data
    described = describe_variables(original)
    assert "units" in described["x"].attrs and "units" not in original["x"].attrs


def test_result_json_records_versions_timestamp_and_machine(tmp_path) -> None:
    _result(params={"n": 2, "device": "cpu"}).save(tmp_path)
    summary = load_result(tmp_path)
    assert set(summary["versions"]) == {"tokenswarm", "python", "torch", "numpy"}
    assert summary["versions"]["numpy"] == np.__version__
    assert summary["timestamp"].endswith("+00:00")
    assert summary["machine"]["device"] == "cpu" and summary["machine"]["cores"] >= 1 and summary["machine"]["platform"]
    assert machine("cuda:0")["device"] == "cuda:0"


def test_stores_without_consolidated_metadata_still_load(tmp_path) -> None:
    xr.Dataset({"a": ("t", [1.0, 2.0])}).to_zarr(tmp_path / "data.zarr", consolidated=False)
    assert load_data(tmp_path)["a"].values.tolist() == [1.0, 2.0]


# --------------------------------------------------------------------------------------
# optimal transport without POT
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m"), [(4, 4), (8, 64), (32, 96)])
def test_the_assignment_form_equals_pot(n: int, m: int) -> None:
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(n + m)
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
    expected = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y), numItermax=1_000_000)
    assert w2_squared_assignment(x, y) == pytest.approx(expected, rel=1e-12)
    assert w2_squared_assignment(y, x) == pytest.approx(expected, rel=1e-12)
    assert w2_squared(x, y) == pytest.approx(expected, rel=1e-12)


def test_w2_of_two_point_sets_by_hand() -> None:
    # two points against four: each goes to its two nearest, so W2² is their mean square distance
    x = np.array([[0.0, 0.0], [10.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, -1.0], [10.0, 2.0], [10.0, -2.0]])
    assert w2_squared_assignment(x, y) == pytest.approx((1 + 1 + 4 + 4) / 4)


def test_without_pot_sizes_that_do_not_divide_need_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ot", None)  # as if POT were not installed
    x, y = np.zeros((3, 2)), np.ones((4, 2))
    with pytest.raises(MissingDependencyError, match=r"pip install 'tokenswarm\[ot\]'"):
        w2_squared(x, y)
    assert w2_squared(np.zeros((2, 2)), np.ones((4, 2))) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="divide"):
        w2_squared_assignment(x, y)


def test_require_names_the_extra_in_one_line() -> None:
    assert require("math", package="-", extra="-", purpose="-") is math
    with pytest.raises(MissingDependencyError) as raised:
        require("tokenswarm_no_such_module", package="nothing", extra="sklearn", purpose="the digits data set")
    message = str(raised.value)
    assert "\n" not in message and "the digits data set needs the optional package nothing" in message
    assert "pip install 'tokenswarm[sklearn]'" in message


def test_a_missing_optional_package_exits_2_in_one_line(monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from tokenswarm import cli
    from tokenswarm.experiments.registry import register, unregister

    @register("needs-extra", title="needs an optional package", reference="0000.00000", params=_NoParams)
    def _run(params, context):  # noqa: ANN001, ANN202
        require("tokenswarm_no_such_module", package="nothing", extra="ot", purpose="this experiment")

    try:
        result = CliRunner().invoke(cli.app, ["run", "needs-extra", "--out", str(tmp_path / "o")], prog_name="tokenswarm")
    finally:
        unregister("needs-extra")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: this experiment needs the optional package nothing")
