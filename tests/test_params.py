"""Parsing ``-p key=value`` strings into typed, range-checked params dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pytest

from tokenswarm.params import (
    ParameterError,
    UsageError,
    describe,
    param_specs,
    parse_key_values,
    parse_overrides,
)


@dataclass(frozen=True)
class Params:
    n: int = field(default=32, metadata={"min": 2, "help": "number of tokens"})
    beta: float = field(default=1.0, metadata={"min": 0})
    betas: list[float] = field(default_factory=lambda: [0.5, 1.0], metadata={"min": 0})
    sizes: tuple[int, ...] = (8, 16)
    names: list[str] = field(default_factory=lambda: ["a"])
    model: Literal["sa", "usa"] = "sa"
    rho0: float | str = "uniform"
    limit: int | None = None
    noisy: bool = False
    label: str = "run"
    fraction: float = field(default=0.5, metadata={"min_exclusive": 0, "max": 1})


def parse(**overrides: str) -> Params:
    return parse_overrides(Params, overrides, experiment="demo")


def test_defaults_are_kept_without_overrides() -> None:
    assert parse() == Params()


def test_scalar_types_are_converted() -> None:
    params = parse(n="64", beta="2.5", model="usa", label="hello world", noisy="yes")
    assert (params.n, params.beta, params.model, params.label, params.noisy) == (64, 2.5, "usa", "hello world", True)
    assert isinstance(params.beta, float) and isinstance(params.n, int)


def test_int_accepts_integral_scientific_notation_but_not_fractions() -> None:
    assert parse(n="1e4").n == 10_000
    with pytest.raises(ParameterError, match="'2.5' is not an int"):
        parse(n="2.5")


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("0", False), ("No", False), ("ON", True)])
def test_bool_words(text: str, expected: bool) -> None:
    assert parse(noisy=text).noisy is expected


def test_bool_rejects_other_words_and_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match=r"'maybe'.*noisy \(bool"):
        parse(noisy="maybe")


def test_union_tries_number_first_then_string() -> None:
    assert parse(rho0="0.25").rho0 == 0.25
    assert parse(rho0="uniform").rho0 == "uniform"


def test_optional_int_accepts_none() -> None:
    assert parse(limit="none").limit is None
    assert parse(limit="7").limit == 7
    with pytest.raises(ParameterError, match="not an int or none"):
        parse(limit="seven")


def test_lists_from_commas() -> None:
    params = parse(betas="0.1, 2,3e-1", sizes="4,8", names="x,y")
    assert params.betas == [0.1, 2.0, 0.3]
    assert params.sizes == (4, 8)  # the declared container type is kept
    assert params.names == ["x", "y"]


def test_single_value_is_a_one_element_list() -> None:
    assert parse(betas="3").betas == [3.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5:2:0.5", [0.5, 1.0, 1.5, 2.0]),  # stop on the grid is included
        ("0:1:0.3", [0.0, 0.3, 0.6, 0.9]),  # stop off the grid is excluded
        ("0.1:0.3:0.1", [0.1, 0.2, 0.3]),  # 0.1 + 2 * 0.1 != 0.3 in floating point
        ("2:0.5:-0.5", [2.0, 1.5, 1.0, 0.5]),
        ("1:1:0.5", [1.0]),
    ],
)
def test_float_ranges(text: str, expected: list[float]) -> None:
    assert parse(betas=text).betas == expected


def test_float_range_includes_stop_within_relative_tolerance_only() -> None:
    assert parse(betas="0:1:0.1").betas == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    # 1e-11 short of the grid point: within 1e-9 relative, so the stop is included as written.
    assert parse(betas="0:0.99999999999:0.1").betas[-1] == 0.99999999999
    # 1e-4 short: not on the grid, so the range ends at 0.9.
    assert parse(betas="0:0.9999:0.1").betas[-1] == 0.9


def test_float_range_matches_numpy_arange_on_a_grid() -> None:
    values = parse(betas="0:30:0.3").betas
    assert len(values) == 101
    np.testing.assert_allclose(values, np.arange(0, 30.0001, 0.3), rtol=0, atol=1e-12)


def test_int_ranges() -> None:
    assert parse(sizes="2:10:4").sizes == (2, 6, 10)
    assert parse(sizes="2:9:4").sizes == (2, 6)
    assert parse(sizes="10:2:-4").sizes == (10, 6, 2)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0:1:0", "step 0"),
        ("1:0:0.5", "empty"),
        ("0:1e9:1e-3", "more than"),
        ("0:nan:1", "finite"),
    ],
)
def test_bad_ranges(text: str, reason: str) -> None:
    with pytest.raises(ParameterError, match=reason):
        parse(betas=text)


def test_int_list_range_needs_integers() -> None:
    with pytest.raises(ParameterError, match="integer"):
        parse(sizes="0:1:0.5")


def test_range_limits_apply_to_every_element() -> None:
    with pytest.raises(ParameterError, match=r"-0.5 is out of range \(allowed: >=0\)"):
        parse(betas="-0.5:1:0.5")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"n": "1"}, "out of range (allowed: >=2)"),
        ({"beta": "-1"}, "allowed: >=0"),
        ({"fraction": "0"}, "allowed: >0, <=1"),
        ({"fraction": "1.5"}, "allowed: >0, <=1"),
        ({"beta": "nan"}, "is not a finite number"),
        ({"beta": "inf"}, "is not a finite number"),
        ({"beta": "-Infinity"}, "is not a finite number"),
        ({"beta": 1e400}, "is not a float"),
        ({"n": str(2**63)}, "does not fit in a 64-bit integer"),
    ],
)
def test_range_errors(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ParameterError) as error:
        parse(**overrides)
    assert fragment in str(error.value)


def test_boundaries_are_inclusive_or_exclusive_as_declared() -> None:
    assert parse(n="2").n == 2
    assert parse(fraction="1").fraction == 1.0


def test_scalar_given_a_list_is_an_error() -> None:
    for overrides in ({"n": "1,2"}, {"beta": "0:1:0.5"}, {"rho0": "0.1,0.2"}):
        with pytest.raises(ParameterError, match="takes a single value"):
            parse(**overrides)


def test_choices_error_names_the_choices() -> None:
    with pytest.raises(ParameterError) as error:
        parse(model="transformer")
    message = str(error.value)
    assert "'transformer'" in message and "one of sa|usa" in message and "'model'" in message


def test_unknown_parameter_lists_valid_parameters_and_suggests() -> None:
    with pytest.raises(ParameterError) as error:
        parse(bta="1")
    message = str(error.value)
    assert message.startswith("unknown parameter 'bta' for experiment 'demo'")
    assert "did you mean 'beta'" in message
    assert "n (int, >=2, default 32)" in message and "model (one of sa|usa, default sa)" in message
    assert "\n" not in message  # one paragraph


def test_parameter_error_is_a_usage_error_and_value_error() -> None:
    assert issubclass(ParameterError, UsageError) and issubclass(UsageError, ValueError)


def test_base_values_apply_and_user_overrides_win() -> None:
    base = {"n": 8, "betas": [1, 2], "label": "quick"}
    params = parse_overrides(Params, {"n": "12"}, base=base)
    assert (params.n, params.betas, params.label) == (12, [1.0, 2.0], "quick")


def test_python_values_are_checked_like_strings() -> None:
    assert parse_overrides(Params, {"beta": 2, "n": np.int64(5), "sizes": [3]}).beta == 2.0
    for bad in ({"n": True}, {"n": 2.5}, {"n": [2, 3]}, {"betas": []}, {"model": "x"}, {"n": 0}):
        with pytest.raises(ParameterError):
            parse_overrides(Params, bad)


def test_empty_list_text_is_rejected() -> None:
    with pytest.raises(ParameterError, match="at least one"):
        parse(betas="")
    with pytest.raises(ParameterError, match="empty element"):
        parse(betas="1,,2")


def test_post_init_value_errors_become_parameter_errors() -> None:
    @dataclass(frozen=True)
    class Pair:
        k: int = 1
        n: int = 4

        def __post_init__(self) -> None:
            if self.k > self.n:
                raise ValueError(f"k={self.k} must not exceed n={self.n}")

    with pytest.raises(ParameterError, match="k=5 must not exceed n=4"):
        parse_overrides(Pair, {"k": "5"})


def test_describe_lists_type_range_and_default() -> None:
    text = describe(Params)
    assert text.startswith("n (int, >=2, default 32), beta (float, >=0, default 1), ")
    assert "betas (float list, >=0, default [0.5, 1])" in text
    assert "sizes (int list, default [8, 16])" in text
    assert "rho0 (float or str, default uniform)" in text
    assert "limit (int or none, default none)" in text
    assert "fraction (float, >0, <=1, default 0.5)" in text


def test_declaration_mistakes_are_type_errors() -> None:
    @dataclass
    class NoDefault:
        n: int

    @dataclass
    class Typo:
        n: int = field(default=1, metadata={"mni": 0})

    @dataclass
    class Unsupported:
        weights: dict[str, float] = field(default_factory=dict)

    for cls in (NoDefault, Typo, Unsupported):
        with pytest.raises(TypeError):
            param_specs(cls)
    with pytest.raises(TypeError):
        param_specs(dict)


def test_parse_key_values() -> None:
    assert parse_key_values(["n=3", "beta=0.5:2:0.5", "label=a=b"]) == {
        "n": "3",
        "beta": "0.5:2:0.5",
        "label": "a=b",
    }
    with pytest.raises(UsageError, match="key=value"):
        parse_key_values(["n"])
    with pytest.raises(UsageError, match="given twice"):
        parse_key_values(["n=3", "n=4"])


def test_long_default_lists_are_abbreviated_in_messages() -> None:
    @dataclass(frozen=True)
    class Grid:
        t: list[float] = field(default_factory=lambda: [float(i) for i in range(90)])

    assert describe(Grid) == "t (float list, default [0, 1, 2, 3, 4, …, 89] (90 values))"
    assert parse_overrides(Grid, {"t": "0:2:1"}).t == [0.0, 1.0, 2.0]
