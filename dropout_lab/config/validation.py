"""Validation of a raw config dict into :class:`ExperimentConfig`, with readable errors:
the dotted key at fault, what was given, and a near-miss suggestion for an unknown key."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from dropout_lab.config.models import ExperimentConfig
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
    for axis in cfg.sweep:
        check_dotted_key(axis, where=f"{where}: sweep")
    return cfg
