"""Typed experiment parameters: parse ``key=value`` strings into a params dataclass.

An experiment declares its parameters as a dataclass whose defaults are the full-size
values; the command line overrides them with strings (``-p beta=0.5:2:0.5``). This module
is the boundary where those strings become typed, range-checked values, so everything
downstream receives a valid dataclass instance and never re-validates.

Supported field types
---------------------
* ``int``, ``float``, ``str``, ``bool`` (``true/false/1/0/yes/no/on/off``)
* ``Literal["sa", "usa"]`` -- a fixed set of choices
* ``list[T]`` or ``tuple[T, ...]`` with ``T`` any of the above: written ``1,2,3`` or as a
  range ``a:b:step`` (numpy-like ``arange`` that includes ``b`` when it lands on the grid
  within 1e-9 relative, e.g. ``0.5:2:0.5 -> [0.5, 1, 1.5, 2]``)
* unions of scalars such as ``float | str`` (alternatives are tried numbers first, then
  choices, then free strings) and optionals such as ``int | None`` (written ``none``)

Validation comes from ``dataclasses.field`` metadata, applied to every element of a list:
``min`` / ``max`` (inclusive), ``min_exclusive`` / ``max_exclusive`` (strict bounds, given
as numbers; ``min_exclusive=True`` instead makes ``min`` strict), and ``help`` (one line of
documentation); ``increasing=True`` on a list (time grids) requires strictly increasing
elements, so an unsorted or repeated output time is refused rather than silently
reordered. Floats must be finite: no model parameter means anything at ``inf`` or NaN. Unknown metadata keys are rejected so that a typo such as ``"mni"`` cannot
silently disable a check. Cross-field checks belong in the dataclass's ``__post_init__``;
a ``ValueError`` raised there is reported as a :class:`ParameterError`.

Example::

    @dataclass(frozen=True)
    class Params:
        n: int = field(default=32, metadata={"min": 2, "help": "number of tokens"})
        beta: tuple[float, ...] = (0.5, 1.0)
        model: Literal["sa", "usa"] = "sa"
        rho0: float | str = "uniform"

    parse_overrides(Params, {"n": "8", "beta": "0:1:0.5"})
    # Params(n=8, beta=(0.0, 0.5, 1.0), model='sa', rho0='uniform')
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

__all__ = [
    "UsageError",
    "ParameterError",
    "ParamSpec",
    "param_specs",
    "parse_overrides",
    "parse_grid_values",
    "parse_key_values",
    "describe",
    "format_value",
]

ParamsT = TypeVar("ParamsT")

#: Metadata keys understood in ``dataclasses.field(metadata=...)``.
METADATA_KEYS = frozenset({"min", "max", "min_exclusive", "max_exclusive", "increasing", "help"})

#: Largest list a range may expand to; a mistyped step (``0:1e6:1e-6``) would otherwise
#: allocate without bound before any experiment code could object.
MAX_RANGE_LENGTH = 100_000

_TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", "n", "f"})
_NONE_WORDS = frozenset({"none", "null"})
_RANGE_RELATIVE_TOLERANCE = 1e-9


class UsageError(ValueError):
    """A mistake in what the user asked for (not a bug): the CLI prints it and exits 2.

    The message is a complete, one-paragraph explanation that names the valid choices.
    """


class ParameterError(UsageError):
    """An unknown parameter, or a value of the wrong type or out of range."""


@dataclass(frozen=True)
class Choices:
    """The alternatives of a ``Literal[...]`` annotation."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + "|".join(format_value(value) for value in self.values)


# A scalar alternative: one of the builtin types or a set of literal choices.
ScalarType = Union[type, Choices]


@dataclass(frozen=True)
class ParamSpec:
    """Everything the parser needs to know about one field of a params dataclass."""

    name: str
    alternatives: tuple[ScalarType, ...]
    container: type | None  # list or tuple for sequence fields, None for scalars
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False
    increasing: bool = False

    @property
    def is_sequence(self) -> bool:
        return self.container is not None

    def type_text(self) -> str:
        """Human description of the type, e.g. ``float list`` or ``one of sa|usa``."""
        names = [_alternative_text(alt) for alt in self.alternatives if alt is not type(None)]
        optional = type(None) in self.alternatives
        if len(names) == 1 and not optional:
            scalar = names[0]
        else:
            scalar = " or ".join(names + (["none"] if optional else []))
        if not self.is_sequence:
            return scalar
        if len(names) == 1 and not optional and not isinstance(self.alternatives[0], Choices):
            return f"{scalar} list"
        return f"list of ({scalar})"

    def constraint_text(self) -> str:
        """Human description of the range, e.g. ``>=2`` or ``>0, <=1``; empty if none."""
        parts = []
        if self.minimum is not None:
            parts.append((">" if self.minimum_exclusive else ">=") + format_value(self.minimum))
        if self.maximum is not None:
            parts.append(("<" if self.maximum_exclusive else "<=") + format_value(self.maximum))
        if self.increasing:
            parts.append("strictly increasing")
        return ", ".join(parts)

    def describe(self) -> str:
        """``n (int, >=2, default 32)``: the form used in error messages and listings."""
        details = [self.type_text()]
        if constraints := self.constraint_text():
            details.append(constraints)
        details.append(f"default {format_value(self.default, max_items=6)}")
        return f"{self.name} ({', '.join(details)})"


def _alternative_text(alternative: ScalarType) -> str:
    if isinstance(alternative, Choices):
        return alternative.describe()
    return alternative.__name__


def format_value(value: Any, *, max_items: int | None = None) -> str:
    """Compact, unambiguous text for a parameter value (used in messages and listings).

    With ``max_items``, longer lists are abbreviated to head, ``…``, last element and the
    count, so that a 90-point default grid does not swamp a one-paragraph error message.
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.12g}"
    if isinstance(value, (list, tuple)):
        if max_items is not None and len(value) > max_items:
            head = ", ".join(format_value(item) for item in value[: max(max_items - 1, 1)])
            return f"[{head}, …, {format_value(value[-1])}] ({len(value)} values)"
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


# --------------------------------------------------------------------------------------
# Reading the dataclass
# --------------------------------------------------------------------------------------


def param_specs(params_cls: type) -> list[ParamSpec]:
    """Describe every field of ``params_cls``.

    Raises ``TypeError`` (a programming error, not a usage error) when the class is not a
    dataclass, a field has no default, its type is unsupported or its metadata is unknown;
    the registry calls this at registration time so such mistakes surface on import.
    """
    if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
        raise TypeError(f"experiment parameters must be a dataclass type, got {params_cls!r}")
    try:
        hints = typing.get_type_hints(params_cls)
    except NameError as error:  # e.g. an annotation naming a class local to a function
        raise TypeError(f"cannot resolve the annotations of {params_cls.__name__}: {error}") from None
    specs = []
    for field in dataclasses.fields(params_cls):
        if not field.init:
            continue
        where = f"{params_cls.__name__}.{field.name}"
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f"parameter {where} needs a default (the full-size value)")
        container, alternatives = _analyse_annotation(hints[field.name], where)
        specs.append(_spec_from_metadata(field, where, container, alternatives, default))
    return specs


def _analyse_annotation(annotation: Any, where: str) -> tuple[type | None, tuple[ScalarType, ...]]:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"parameter {where}: only variable-length tuple[T, ...] is supported")
        if not args:
            raise TypeError(f"parameter {where}: give the element type, e.g. list[float]")
        return origin, _scalar_alternatives(args[0], where)
    return None, _scalar_alternatives(annotation, where)


def _scalar_alternatives(annotation: Any, where: str) -> tuple[ScalarType, ...]:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        members: list[ScalarType] = []
        for member in typing.get_args(annotation):
            members.extend(_scalar_alternatives(member, where))
        return tuple(members)
    if origin is Literal:
        values = typing.get_args(annotation)
        if not all(isinstance(value, (str, int, float, bool)) for value in values):
            raise TypeError(f"parameter {where}: Literal choices must be str, int, float or bool")
        return (Choices(values),)
    if annotation in (int, float, str, bool, type(None)):
        return (annotation,)
    raise TypeError(
        f"parameter {where}: unsupported type {annotation!r}; use int, float, str, bool, "
        "Literal[...], unions of those, or list[...] / tuple[..., ...] of them"
    )


def _spec_from_metadata(
    field: dataclasses.Field[Any],
    where: str,
    container: type | None,
    alternatives: tuple[ScalarType, ...],
    default: Any,
) -> ParamSpec:
    metadata = dict(field.metadata)
    unknown = set(metadata) - METADATA_KEYS
    if unknown:
        raise TypeError(
            f"parameter {where}: unknown metadata {sorted(unknown)}; "
            f"allowed keys: {', '.join(sorted(METADATA_KEYS))}"
        )
    minimum, minimum_exclusive = _bound(metadata, "min", "min_exclusive", where)
    maximum, maximum_exclusive = _bound(metadata, "max", "max_exclusive", where)
    increasing = bool(metadata.get("increasing", False))
    if increasing and container is None:
        raise TypeError(f"parameter {where}: increasing=True needs a list type")
    return ParamSpec(
        name=field.name,
        alternatives=alternatives,
        container=container,
        default=default,
        help=str(metadata.get("help", "")),
        minimum=minimum,
        maximum=maximum,
        minimum_exclusive=minimum_exclusive,
        maximum_exclusive=maximum_exclusive,
        increasing=increasing,
    )


def _bound(
    metadata: Mapping[str, Any], inclusive_key: str, exclusive_key: str, where: str
) -> tuple[float | None, bool]:
    inclusive = metadata.get(inclusive_key)
    exclusive = metadata.get(exclusive_key)
    # ``min_exclusive=True`` is accepted as "make ``min`` strict" because both spellings
    # read naturally; a numeric ``min_exclusive`` is the bound itself.
    if isinstance(exclusive, bool):
        if inclusive is None:
            raise TypeError(f"parameter {where}: {exclusive_key}=True needs {inclusive_key}")
        return inclusive, exclusive
    if inclusive is not None and exclusive is not None:
        raise TypeError(f"parameter {where}: give either {inclusive_key} or {exclusive_key}")
    if exclusive is not None:
        return exclusive, True
    return inclusive, False


# --------------------------------------------------------------------------------------
# Parsing values
# --------------------------------------------------------------------------------------


class _InvalidValue(Exception):
    """Internal: why one value was rejected; turned into a ParameterError with context."""


def _parse_text_scalar(text: str, alternatives: tuple[ScalarType, ...]) -> Any:
    stripped = text.strip()
    lowered = stripped.lower()
    # Order matters: "none" must not become the string "none" for ``int | None``, and a
    # number must win over a free string for ``float | str`` (rho0=0.5 vs rho0=uniform).
    if type(None) in alternatives and lowered in _NONE_WORDS:
        return None
    if int in alternatives:
        parsed = _parse_int(stripped)
        if parsed is not None:
            return parsed
    if float in alternatives:
        parsed_float = _parse_float(stripped)
        if parsed_float is not None:
            return parsed_float
    if bool in alternatives:
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
    for alternative in alternatives:
        if isinstance(alternative, Choices):
            for value in alternative.values:
                if _text_matches_choice(stripped, value):
                    return value
    if str in alternatives:
        return text
    if float in alternatives and _is_non_finite(stripped):
        raise _InvalidValue(f"{text!r} is not a finite number")
    raise _InvalidValue(f"{text!r} is not {_expected_article(alternatives)}")


def _is_non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _text_matches_choice(text: str, value: Any) -> bool:
    if isinstance(value, bool):
        return text.lower() in (_TRUE_WORDS if value else _FALSE_WORDS)
    if isinstance(value, (int, float)):
        number = _parse_float(text)
        return number is not None and number == value
    return text == value


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    # Accept integral floats such as "1e4": people write token counts that way.
    number = _parse_float(text)
    if number is not None and math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return int(number)
    return None


def _parse_float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    # NaN compares false with every bound, so it would slip through range checks; inf
    # passes a one-sided bound (beta >= 0) and then overflows inside the model.
    return number if math.isfinite(number) else None


def _coerce_python_scalar(value: Any, alternatives: tuple[ScalarType, ...]) -> Any:
    """Check a Python value (from ``quick`` overrides or a ``base`` dict)."""
    if isinstance(value, str):
        return _parse_text_scalar(value, alternatives)
    if hasattr(value, "item") and callable(value.item):  # numpy / 0-d torch scalars
        value = value.item()
    if value is None:
        if type(None) in alternatives:
            return None
    elif isinstance(value, bool):
        # bool is an int subclass; True must not quietly become n=1.
        if bool in alternatives or any(
            isinstance(alt, Choices) and value in alt.values and any(isinstance(v, bool) for v in alt.values)
            for alt in alternatives
        ):
            return value
    elif isinstance(value, int):
        if int in alternatives:
            return value
        if float in alternatives:
            return float(value)
    elif isinstance(value, float):
        if float in alternatives and math.isfinite(value):
            return value
        if int in alternatives and value.is_integer():
            return int(value)
    for alternative in alternatives:
        if isinstance(alternative, Choices) and not isinstance(value, bool) and value in alternative.values:
            return value
    raise _InvalidValue(f"{value!r} is not {_expected_article(alternatives)}")


def _expected_article(alternatives: tuple[ScalarType, ...]) -> str:
    names = []
    for alternative in alternatives:
        if isinstance(alternative, Choices):
            names.append(alternative.describe())
        elif alternative is type(None):
            names.append("none")
        else:
            names.append(("an " if alternative is int else "a ") + alternative.__name__)
    return " or ".join(names)


def _parse_text_sequence(text: str, spec: ParamSpec) -> list[Any]:
    if not text.strip():
        raise _InvalidValue("an empty value is not a list (give at least one element)")
    numeric = int in spec.alternatives or float in spec.alternatives
    if numeric and text.count(":") == 2 and "," not in text:
        return _parse_range(text, spec.alternatives)
    items = []
    for element in text.split(","):
        if not element.strip():
            raise _InvalidValue(f"{text!r} has an empty element")
        items.append(_parse_text_scalar(element.strip(), spec.alternatives))
    return items


def _parse_range(text: str, alternatives: tuple[ScalarType, ...]) -> list[Any]:
    start_text, stop_text, step_text = (part.strip() for part in text.split(":"))
    as_ints = [_strict_int(part) for part in (start_text, stop_text, step_text)]
    if int in alternatives and all(value is not None for value in as_ints):
        start, stop, step = typing.cast(list[int], as_ints)
        if step == 0:
            raise _InvalidValue(f"range {text!r} has step 0")
        values: list[Any] = list(range(start, stop + (1 if step > 0 else -1), step))
    elif float in alternatives:
        bounds = [_parse_float(part) for part in (start_text, stop_text, step_text)]
        if any(value is None or not math.isfinite(value) for value in bounds):
            raise _InvalidValue(f"range {text!r} needs finite numbers a:b:step")
        start_f, stop_f, step_f = typing.cast(list[float], bounds)
        values = _float_range(start_f, stop_f, step_f, text)
    else:
        raise _InvalidValue(f"range {text!r} needs integer start, stop and step for an int list")
    if not values:
        raise _InvalidValue(f"range {text!r} is empty (the step points away from the stop)")
    if len(values) > MAX_RANGE_LENGTH:
        raise _InvalidValue(f"range {text!r} has {len(values)} values, more than {MAX_RANGE_LENGTH}")
    return values


def _strict_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _float_range(start: float, stop: float, step: float, text: str) -> list[float]:
    if step == 0:
        raise _InvalidValue(f"range {text!r} has step 0")
    steps = (stop - start) / step
    scale = max(abs(start), abs(stop), abs(step))
    nearest = round(steps)
    lands_on_grid = abs(start + nearest * step - stop) <= _RANGE_RELATIVE_TOLERANCE * scale
    if lands_on_grid:
        last = nearest
    elif steps < 0:
        return []
    else:
        last = math.floor(steps)
    if last < 0:
        return []
    if last + 1 > MAX_RANGE_LENGTH:
        raise _InvalidValue(f"range {text!r} has {last + 1} values, more than {MAX_RANGE_LENGTH}")
    values = [_snap(start + index * step, step) for index in range(last + 1)]
    if lands_on_grid:
        values[-1] = stop  # the user wrote the endpoint; give exactly that number back
    return values


def _snap(value: float, step: float) -> float:
    """Remove accumulation noise (0.1 + 2*0.1 = 0.30000000000000004 -> 0.3).

    Rounding to 12 significant digits is only accepted when it moves the value by far
    less than the step, so fine grids (step 1e-15 around 1) are never collapsed.
    """
    rounded = float(f"{value:.12g}")
    return rounded if abs(rounded - value) <= 1e-9 * abs(step) else value


def _check_range(value: Any, spec: ParamSpec) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise _InvalidValue(f"{value} does not fit in a 64-bit integer")
    below = spec.minimum is not None and (
        value < spec.minimum or (spec.minimum_exclusive and value == spec.minimum)
    )
    above = spec.maximum is not None and (
        value > spec.maximum or (spec.maximum_exclusive and value == spec.maximum)
    )
    if below or above:
        raise _InvalidValue(f"{format_value(value)} is out of range (allowed: {spec.constraint_text()})")


def _coerce(spec: ParamSpec, value: Any) -> Any:
    """Turn a string (command line) or a Python value (quick overrides) into a field value."""
    if spec.is_sequence:
        if isinstance(value, str):
            items = _parse_text_sequence(value, spec)
        elif isinstance(value, Sequence):
            if len(value) == 0:
                raise _InvalidValue("an empty list (give at least one element)")
            items = [_coerce_python_scalar(item, spec.alternatives) for item in value]
        else:
            items = [_coerce_python_scalar(value, spec.alternatives)]
        for item in items:
            _check_range(item, spec)
        if spec.increasing:
            _check_increasing(items)
        assert spec.container is not None
        return spec.container(items)
    if isinstance(value, str):
        only_free_text = spec.alternatives == (str,)
        if not only_free_text and ("," in value or _looks_like_range(value, spec)):
            raise _InvalidValue(f"{value!r} is a list, but '{spec.name}' takes a single value")
        parsed = _parse_text_scalar(value, spec.alternatives)
    elif isinstance(value, (list, tuple)):
        raise _InvalidValue(f"{format_value(value)} is a list, but '{spec.name}' takes a single value")
    else:
        parsed = _coerce_python_scalar(value, spec.alternatives)
    _check_range(parsed, spec)
    return parsed


def _check_increasing(items: Sequence[Any]) -> None:
    for earlier, later in zip(items, items[1:]):
        if not later > earlier:
            problem = "repeats" if later == earlier else "is not sorted:"
            raise _InvalidValue(
                f"the list {problem} {format_value(earlier)} then {format_value(later)} "
                "(give strictly increasing values)"
            )


def _looks_like_range(text: str, spec: ParamSpec) -> bool:
    numeric = int in spec.alternatives or float in spec.alternatives
    parts = text.split(":")
    return numeric and len(parts) == 3 and all(_parse_float(part.strip()) is not None for part in parts)


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def parse_overrides(
    params_cls: type[ParamsT],
    overrides: Mapping[str, Any],
    base: Mapping[str, Any] | None = None,
    *,
    experiment: str | None = None,
) -> ParamsT:
    """Build a ``params_cls`` instance from defaults, then ``base``, then ``overrides``.

    Args:
        params_cls: the experiment's params dataclass.
        overrides: ``{name: value}``; values are usually command-line strings, but typed
            Python values are accepted and checked the same way.
        base: values applied before ``overrides`` (the experiment's ``--quick`` settings),
            so explicit user values always win.
        experiment: name used in error messages.

    Raises:
        ParameterError: unknown name, wrong type, value out of range, a list given to a
            scalar, or a ``ValueError`` from the dataclass's ``__post_init__``. The message
            names the parameter, the value and what is allowed.
    """
    specs = {spec.name: spec for spec in param_specs(params_cls)}
    context = f" for experiment '{experiment}'" if experiment else ""
    owner = f" of experiment '{experiment}'" if experiment else ""
    values: dict[str, Any] = {}
    for source in (base or {}, overrides):
        for name, raw in source.items():
            spec = specs.get(name)
            if spec is None:
                raise ParameterError(_unknown_message(name, context, list(specs.values())))
            try:
                values[name] = _coerce(spec, raw)
            except _InvalidValue as reason:
                raise ParameterError(
                    f"invalid value {_quote(raw)} for parameter '{name}'{owner}: {reason}; "
                    f"expected {spec.describe()}"
                ) from None
    try:
        return params_cls(**values)
    except UsageError:  # already a complete message (e.g. a resource estimate)
        raise
    except ValueError as error:  # cross-field checks in __post_init__
        raise ParameterError(
            f"invalid parameters{context}: {error}; valid parameters: {describe(params_cls)}"
        ) from None


def parse_grid_values(
    params_cls: type, name: str, text: str, *, experiment: str | None = None
) -> list[Any]:
    """The values of one sweep axis ``--grid name=TEXT``, typed and range-checked.

    For a scalar parameter ``TEXT`` is written like a list override (``1,2,4`` or a range
    ``0.5:2:0.5``) and each element is parsed and checked exactly as ``-p name=element``
    would be. For a list parameter the values are lists separated by ``;``
    (``t=10,30;20,40``). Cross-field checks (``__post_init__``) are the caller's: they need
    the whole point.

    Raises:
        ParameterError: unknown name, an empty or malformed list, a value of the wrong
            type or out of range, or a value given twice.
    """
    specs = {spec.name: spec for spec in param_specs(params_cls)}
    spec = specs.get(name)
    context = f" for experiment '{experiment}'" if experiment else ""
    if spec is None:
        raise ParameterError(_unknown_message(name, context, list(specs.values())))
    try:
        if spec.is_sequence:
            values = [_coerce(spec, item) for item in text.split(";")]
        else:
            values = _coerce(dataclasses.replace(spec, container=list, increasing=False), text)
    except _InvalidValue as reason:
        separator = "lists separated by ';'" if spec.is_sequence else "values separated by ',' or a range a:b:step"
        raise ParameterError(
            f"invalid grid {_quote(text)} for parameter '{name}'{context}: {reason}; "
            f"expected {separator} of {spec.describe()}"
        ) from None
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ParameterError(
                f"grid {_quote(text)} for parameter '{name}'{context} gives {format_value(value)} twice; give each value once"
            )
    return values


def _quote(raw: Any) -> str:
    return repr(raw) if isinstance(raw, str) else f"'{format_value(raw)}'"


def _unknown_message(name: str, context: str, specs: list[ParamSpec]) -> str:
    names = [spec.name for spec in specs]
    suggestion = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{suggestion[0]}'?)" if suggestion else ""
    valid = ", ".join(spec.describe() for spec in specs) or "none (this experiment takes no parameters)"
    return f"unknown parameter '{name}'{context}{hint}; valid parameters: {valid}"


def describe(params_cls: type) -> str:
    """One line listing every parameter with type, range and default.

    ``"n (int, >=2, default 32), beta (float list, default [0.5, 1]), model (one of sa|usa,
    default sa)"``
    """
    return ", ".join(spec.describe() for spec in param_specs(params_cls))


def parse_key_values(pairs: Sequence[str], *, option: str = "-p", form: str = "key=value",
                     example: str = "n=64") -> dict[str, str]:
    """Split command-line ``key=value`` strings into a dict (``-p`` overrides, ``--grid`` axes).

    ``option``, ``form`` and ``example`` name the command-line option in the messages.

    Raises:
        UsageError: an item without ``=``, an empty key, or a key given twice (silently
            keeping the last one would hide a typo in a long command line).
    """
    result: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise UsageError(f"{option} {pair!r} must have the form {form} (e.g. {option} {example})")
        if key in result:
            raise UsageError(f"{option} '{key}' is given twice ({result[key]!r} and {value!r}); "
                             f"give it once: {option} {key}=...")
        result[key] = value
    return result
