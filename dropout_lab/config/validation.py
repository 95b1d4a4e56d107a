"""Validation of a raw config dict into :class:`ExperimentConfig`, with readable errors:
the dotted key at fault, what was given, and a near-miss suggestion for an unknown key."""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from dropout_lab.config.models import ExperimentConfig
from dropout_lab.config.strict import accepts_bool
from dropout_lab.errors import ConfigError


def _fields_at(path: list[str]) -> list[str] | None:
    """Field names of the model at a dotted path (None when the path leaves the models)."""
    model: type[BaseModel] = ExperimentConfig
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return list(model.model_fields)


def _unknown_key_message(path: list[str], where: str, rest: list[str] | None = None) -> str:
    """``rest``: the parts after the unknown one, kept in the suggestion (droput.p -> dropout.p)."""
    rest = rest or []
    dotted = ".".join(path + rest)
    fields = _fields_at(path[:-1]) or []
    msg = f"{where}: unknown key {dotted!r}"
    close = difflib.get_close_matches(path[-1], fields, n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean {'.'.join(path[:-1] + close + rest)!r}?"
    elif fields:
        msg += f" (valid keys here: {', '.join(fields)})"
    return msg


def check_dotted_key(key: str, where: str) -> None:
    """Reject a dotted key that names no config field, with a near-miss suggestion."""
    parts = key.split(".")
    for i in range(1, len(parts) + 1):
        fields = _fields_at(parts[: i - 1])
        if fields is None:  # below a leaf (e.g. dropout.p.x): validation will complain
            return
        if parts[i - 1] not in fields:
            raise ConfigError(_unknown_key_message(parts[:i], where, parts[i:]))


def _format_validation_error(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        if err["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(loc, where))
            continue
        dotted = ".".join(loc) if loc else "config"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        shown = err.get("input")
        if err["type"] in ("missing",) or isinstance(shown, dict):
            lines.append(f"{where}: {dotted}: {msg}")
        else:
            lines.append(f"{where}: {dotted}: {msg} (got {shown!r})")
    return "\n".join(lines)


def validate(data: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Validate a raw dict into an :class:`ExperimentConfig` or raise a readable ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where)) from None
    except ConfigError as exc:  # raised by a registry lookup inside a validator
        raise ConfigError(f"{where}: {exc}") from None
    written_sweep = data.get("sweep")
    raw_axes: dict[str, Any] = written_sweep if isinstance(written_sweep, dict) else {}
    for axis, values in cfg.sweep.items():
        check_dotted_key(axis, where=f"{where}: sweep")
        check_axis(axis, values if isinstance(values, list) else [], where=f"{where}: sweep")
        written = raw_axes.get(axis)
        if isinstance(written, dict):  # a range (a grid now, when it had a step): its ends
            _check_range_ends(data, axis, written["min"], written["max"], where)
    return cfg


def _check_range_ends(data: dict[str, Any], axis: str, low: float, high: float,
                      where: str) -> None:
    """A range's ends are values the key takes (dropout.p: both in [0, 1)): the config
    validated with the axis at each end, so the error is the key's own."""
    for end in (low, high):
        point = copy.deepcopy(data)
        point.pop("sweep", None)
        point.pop("search", None)
        node = point  # set the dotted key (the config validated: every level is a mapping)
        *parents, leaf = axis.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = end
        try:
            ExperimentConfig.model_validate(point)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(
                exc, f"{where}: sweep.{axis} range end {end}")) from None


# Keys that are not parameters of a trial: the run folder's name, the grid itself.
NOT_AXES = {"name": "it names the sweep's folder, one name per sweep",
            "sweep": "it is the grid itself"}


def _annotation_at(path: list[str]) -> Any:
    model: type[BaseModel] = ExperimentConfig
    ann: Any = None
    for part in path:
        ann = model.model_fields[part].annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    return ann


def _normal_form(annotation: Any, value: Any) -> str | None:
    """The value as the config stores it (0 -> 0.0 for a float, '0.50' never), as JSON text;
    None when it does not validate (the grid point's own validation explains why)."""
    try:
        return json.dumps(TypeAdapter(annotation).dump_python(
            TypeAdapter(annotation).validate_python(value), mode="json"), sort_keys=True)
    except (ValidationError, TypeError, ValueError):
        return None


def check_axis(axis: str, values: list[Any], where: str = "sweep") -> None:
    """A sweep axis names one parameter of a trial (not ``name``, not a whole section such as
    ``train``), and no two of its values are the same once read as the config reads them
    (``seed: [0, 0]``, ``p: [0.5, 0.50]``, ``p: [0, 0.0]``): each would be one trial, and a
    grid smaller than written hides a typo."""
    parts = axis.split(".")
    if axis in NOT_AXES:
        exc = ConfigError(f"{where}: {axis!r} cannot be an axis: {NOT_AXES[axis]}")
        exc.key = f"sweep.{axis}"  # type: ignore[attr-defined]
        raise exc
    annotation = _annotation_at(parts)
    if len(parts) == 1 and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        inner = ", ".join(f"{axis}.{f}" for f in list(annotation.model_fields)[:3])
        exc = ConfigError(f"{where}: {axis!r} is a whole section, not a parameter; sweep one of "
                          f"its keys ({inner}, ...)")
        exc.key = f"sweep.{axis}"  # type: ignore[attr-defined]
        raise exc
    seen: dict[str, Any] = {}
    for value in values:
        if isinstance(value, bool) and not accepts_bool(annotation):
            continue  # refused by the grid point's own validation, with its own message
        form = _normal_form(annotation, value)
        if form is None:
            continue
        if form in seen:
            same = (f"{seen[form]!r} and {value!r} are the same value"
                    if repr(seen[form]) != repr(value) else f"{value!r} is written twice")
            exc = ConfigError(f"{where}: axis {axis!r} lists one value twice ({same}); give "
                              "each value once")
            exc.key = f"sweep.{axis}"  # type: ignore[attr-defined]
            raise exc
        seen[form] = value
