"""Result: JSON conversion, saving (atomically) and loading; claim helpers."""

from __future__ import annotations

import json
import math
import pathlib
import warnings

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import xarray

from tokenswarm.io import results
from tokenswarm.io.results import (
    Claim,
    Result,
    check,
    claim_between,
    claim_close,
    claim_greater,
    claim_less,
    load_data,
    load_result,
    to_jsonable,
)

REQUIRED_KEYS = {"experiment", "params", "metrics", "claims", "outputs", "seconds", "versions", "timestamp", "machine"}
CLAIM_KEYS = {"name", "reference", "measured", "expected", "passed", "detail", "status", "paper", "where", "refs"}


def strict_loads(text: str) -> object:
    """json.loads that refuses the non-standard NaN/Infinity tokens Python emits by default."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def make_result(**changes: object) -> Result:
    tokens = np.linspace(0, 1, 6).reshape(2, 3)
    figure = matplotlib.figure.Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1])
    fields = dict(
        experiment="demo",
        params={"n": np.int64(4), "beta": (0.5, 1.0), "dtype": torch.float64},
        metrics={
            "torch_scalar": torch.tensor(0.25, dtype=torch.float64),
            "torch_vector": torch.tensor([1.0, 2.0]),
            "numpy_array": np.arange(3, dtype=np.float32),
            "numpy_bool": np.bool_(True),
            "nan": float("nan"),
            "inf": np.float64("inf"),
            "nested": {"path": pathlib.Path("a/b"), "values": [np.nan, 1]},
        },
        claims=[claim_less("small", "paper §1", torch.tensor(1e-9), 1e-6), check("text", "paper §2", "ok", "ok", True)],
        data=xarray.Dataset({"tokens": (("token", "coordinate"), tokens)}, attrs={"note": "demo"}),
        figures={"curve": figure},
        seconds=1.5,
    )
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


def test_to_jsonable_converts_numpy_torch_and_non_finite() -> None:
    value = to_jsonable(make_result().metrics)
    assert value == {
        "torch_scalar": 0.25,
        "torch_vector": [1.0, 2.0],
        "numpy_array": [0.0, 1.0, 2.0],
        "numpy_bool": True,
        "nan": None,
        "inf": None,
        "nested": {"path": "a/b", "values": [None, 1]},
    }
    assert type(value["torch_scalar"]) is float and type(value["numpy_bool"]) is bool


def test_to_jsonable_names_the_place_of_an_unsupported_value() -> None:
    with pytest.raises(TypeError, match=r"\$\.metrics\.bad"):
        to_jsonable({"metrics": {"bad": object()}})


def test_json_dict_has_exactly_the_contract_keys_and_is_strict_json() -> None:
    summary = make_result().to_json_dict(["x.png"])
    assert set(summary) == REQUIRED_KEYS
    assert all(set(claim) == CLAIM_KEYS for claim in summary["claims"])
    text = json.dumps(summary, allow_nan=False)  # raises if a NaN survived
    assert strict_loads(text) == summary
    assert summary["params"] == {"n": 4, "beta": [0.5, 1.0], "dtype": "float64"}
    assert summary["claims"][0]["measured"] == pytest.approx(1e-9)


def test_save_writes_everything_and_round_trips(tmp_path: pathlib.Path) -> None:
    result = make_result()
    gif = tmp_path / "anim" / "spin.gif"
    gif.parent.mkdir()
    gif.write_bytes(b"GIF89a")
    result.animations = {"spin": gif}
    outputs = result.save(tmp_path)
    assert outputs == [str(tmp_path / name) for name in ("curve.png", "anim/spin.gif", "data.zarr", "result.json")]
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    loaded = load_result(tmp_path)
    strict_loads((tmp_path / "result.json").read_text())
    assert loaded == result.to_json_dict(["curve.png", "anim/spin.gif", "data.zarr", "result.json"])
    assert loaded["metrics"]["nan"] is None and loaded["seconds"] == 1.5
    data = load_data(tmp_path)
    assert data is not None
    np.testing.assert_array_equal(data["tokens"].values, result.data["tokens"].values)  # type: ignore[index]
    assert data.attrs["note"] == "demo"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporaries left


def test_save_closes_pyplot_figures(tmp_path: pathlib.Path) -> None:
    figure = plt.figure()
    make_result(figures={"managed": figure}, data=None).save(tmp_path)
    assert not plt.fignum_exists(figure.number)


def test_save_without_data_writes_no_store(tmp_path: pathlib.Path) -> None:
    outputs = make_result(data=None, figures={}).save(tmp_path)
    assert outputs == [str(tmp_path / "result.json")]
    assert load_data(tmp_path) is None


def test_animation_outside_out_dir_is_rejected(tmp_path: pathlib.Path) -> None:
    outside = tmp_path / "elsewhere.gif"
    outside.write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="outside the output directory"):
        make_result(animations={"a": outside}).save(tmp_path / "run")
    with pytest.raises(ValueError, match="does not exist"):
        make_result(animations={"a": tmp_path / "run" / "missing.gif"}).save(tmp_path / "run")


def test_failed_json_write_leaves_previous_result_intact(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_result(data=None, figures={}, metrics={"version": 1}).save(tmp_path)
    before = (tmp_path / "result.json").read_text()

    def crash(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(results.json, "dumps", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        make_result(data=None, figures={}, metrics={"version": 2}).save(tmp_path)
    assert (tmp_path / "result.json").read_text() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["result.json"]


def test_crash_while_writing_json_leaves_no_result_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open

    class ExplodingFile:
        """Writes half of the text, then fails, as a full disk would."""

        def __init__(self, path: object, *args: object, **kwargs: object) -> None:
            self._file = real_open(path, *args, **kwargs)  # type: ignore[call-overload]

        def __enter__(self) -> ExplodingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

        def write(self, text: str) -> int:
            self._file.write(text[: len(text) // 2])
            raise OSError("no space left on device")

    monkeypatch.setattr(results, "open", ExplodingFile, raising=False)
    run_dir = tmp_path / "run"
    with pytest.raises(OSError, match="no space"):
        make_result(data=None, figures={}).save(run_dir)
    assert list(run_dir.iterdir()) == []  # neither result.json nor a temporary


def test_failed_zarr_write_keeps_previous_store(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_result(figures={}).save(tmp_path)
    previous = load_data(tmp_path)

    def half_write(self: xarray.Dataset, store: object, **kwargs: object) -> None:
        pathlib.Path(str(store)).mkdir(parents=True)
        (pathlib.Path(str(store)) / "partial").write_text("half")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(xarray.Dataset, "to_zarr", half_write)
    changed = make_result(figures={}, data=xarray.Dataset({"tokens": (("token",), np.zeros(5))}))
    with pytest.raises(RuntimeError, match="interrupted"):
        changed.save(tmp_path)
    reloaded = load_data(tmp_path)
    assert previous is not None and reloaded is not None
    xarray.testing.assert_identical(reloaded, previous)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.zarr", "result.json"]


def test_saving_again_replaces_the_store(tmp_path: pathlib.Path) -> None:
    make_result(figures={}).save(tmp_path)
    make_result(figures={}, data=xarray.Dataset({"other": (("k",), np.ones(2))})).save(tmp_path)
    data = load_data(tmp_path)
    assert data is not None and list(data.data_vars) == ["other"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.zarr", "result.json"]


def test_claim_helpers() -> None:
    assert claim_less("a", "r", 0.5, 1.0) == Claim("a", "r", 0.5, "< 1", True)
    assert claim_less("a", "r", np.float32(2.0), 1.0).passed is False
    assert claim_greater("a", "r", torch.tensor(3), 2).passed is True
    between = claim_between("a", "r", 1.0, 0.5, 1.5)
    assert between.passed and between.expected == "in [0.5, 1.5]"
    assert claim_between("a", "r", 1.6, 0.5, 1.5).passed is False
    close = claim_close("a", "r", 1.001, 1.0, rtol=1e-2)
    assert close.passed and close.expected == "1 ± 0.01"
    assert claim_close("a", "r", 1.1, 1.0, rtol=1e-2).passed is False
    assert claim_close("a", "r", 0.0, 1e-12, atol=1e-9).passed is True
    with pytest.raises(ValueError, match="rtol, atol"):
        claim_close("a", "r", 1.0, 1.0)


def test_nan_measurements_fail_and_serialise_as_null() -> None:
    claims = [
        claim_less("a", "r", float("nan"), 1.0),
        claim_greater("a", "r", float("nan"), 1.0),
        claim_between("a", "r", float("nan"), 0.0, 1.0),
        claim_close("a", "r", float("nan"), 1.0, atol=1.0),
    ]
    assert not any(claim.passed for claim in claims)
    assert all(claim.to_json_dict()["measured"] is None for claim in claims)
    assert math.isnan(claims[0].measured)


def test_check_coerces_numpy_bool() -> None:
    claim = check("a", "r", np.float64(0.5), "structure", np.bool_(True))
    assert claim.passed is True and type(claim.measured) is float


def test_text_coordinates_are_stored_without_zarr_warnings(tmp_path: pathlib.Path) -> None:
    data = xarray.Dataset(
        {"value": (("scheme",), np.array([1.0, 2.0])), "label": (("scheme",), np.array(["x", "yz"]))},
        coords={"scheme": np.array(["accurate", "authors"])},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_result(figures={}, data=data).save(tmp_path)
    loaded = load_data(tmp_path)
    assert loaded is not None
    assert list(loaded["scheme"].values) == ["accurate", "authors"]
    assert list(loaded["label"].values) == ["x", "yz"]
