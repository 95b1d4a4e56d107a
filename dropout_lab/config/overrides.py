"""``--set KEY=VALUE`` overrides: parsing (YAML values, ``a,b,c`` sweep axes) and applying
them to the raw config, each value checked in the model that holds it so that an error names
the ``--set`` argument."""

from __future__ import annotations

import copy
import re
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dropout_lab.config.models import ExperimentConfig
from dropout_lab.config.validation import NOT_AXES, check_dotted_key
from dropout_lab.config.yaml_io import load_yaml_text
from dropout_lab.errors import ConfigError


def _override_error(message: str, key: str) -> ConfigError:
    """A ConfigError about one --set argument; ``key`` goes into the CLI's JSON error."""
    exc = ConfigError(message)
    exc.key = key  # type: ignore[attr-defined]
    return exc


_FUNCTION_SYNTAX = re.compile(r"^(range|interval|choice|glob|tag|shuffle|sort)\s*\(.*\)$")


class CommaList(list[Any]):
    """A ``--set KEY=a,b,c`` value: the values of a new sweep axis (Hydra's multirun habit)."""


def _top_level_split(text: str) -> list[str]:
    """Split at commas outside brackets, braces and quotes: ``0.1,0.2`` -> two parts,
    ``[8],[32]`` -> two, ``[64,64]`` -> one."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as YAML (``dropout.p=0.5``, ``model.hidden=[64,64]``).

    A bare comma list (``dropout.p=0.1,0.2``: not inside brackets or quotes) is a
    :class:`CommaList` of YAML values, which :func:`apply_overrides` makes a sweep axis."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set dropout.p=0.5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: the key is empty")
    stripped = raw.strip()
    if _FUNCTION_SYNTAX.match(stripped):
        # Hydra's sweeper syntax (range(0,0.9,0.1), interval(0,1), choice(a,b)): not ours;
        # a range axis is YAML, with both ends included (docs/search.md)
        raise _override_error(
            f"--set {text}: {stripped.split('(')[0]}(...) is Hydra's sweeper syntax, not a "
            f"value; write a range axis as YAML: --set '{key}={{min: 0.0, max: 0.9, step: 0.1}}'"
            " (a grid from min to max, both ends included; without step, a search: section "
            "draws from it) or list the values: --set " + f"{key}=0.0,0.1,0.2", key)
    try:
        parts = _top_level_split(stripped)
        if len(parts) > 1:
            return key, CommaList(load_yaml_text(part, f"--set {key}") for part in parts)
        value = load_yaml_text(raw, f"--set {key}") if stripped else ""
    except yaml.YAMLError as exc:
        # a ReaderError (a control character YAML refuses) has no `problem`, only a reason
        why = getattr(exc, "problem", None) or getattr(exc, "reason", None) or exc
        raise _override_error(f"--set {text}: value {raw!r} is not valid YAML ({why})",
                              key) from None
    return key, value


def _section_fields(annotation: Any) -> set[str]:
    """Field names of the model an annotation holds (``LRSchedule``, ``EarlyStopping | None``)."""
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return set(a.model_fields)
    return set()


def _check_override(text: str, key: str, value: Any, data: dict[str, Any]) -> None:
    """Validate one overridden value in the model that holds it, so that an error names the
    ``--set`` argument rather than the config file. Errors elsewhere in that model are left
    for the whole-config validation, which names the file."""
    parts = key.split(".")
    model: type[BaseModel] = ExperimentConfig
    node: Any = copy.deepcopy(data)
    for part in parts[:-1]:
        ann = model.model_fields[part].annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return  # below a leaf: the whole-config validation explains it
        model, node = ann, node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        node = {}
    node[parts[-1]] = value
    try:
        model.model_validate(node)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = [str(x) for x in e["loc"]]
            if loc[:1] != [parts[-1]]:
                continue
            msg = e["msg"].removeprefix("Value error, ")
            # a value inside a section (train.lr_schedule={kind: .., gamma: 1.5}) names the
            # field at fault: train.lr_schedule.gamma, with what was given there
            inner = _section_fields(model.model_fields[parts[-1]].annotation)
            deeper = len(loc) > 1 and loc[1] in inner  # not a union branch name ('float')
            where = ".".join([*parts, loc[1]] if deeper else parts)
            given = e.get("input", value) if deeper else value
            lines.append(f"--set {text}: {where}: {msg} (got {given!r})")
        if lines:  # a union (p: a number or a list) fails once per branch: the first says it
            raise _override_error(lines[0], key) from None
    except ConfigError as exc:  # a registry lookup (backend, data set) refused the value
        if repr(value) in str(exc) or str(value) in str(exc):
            raise _override_error(f"--set {text}: {exc}", key) from None


def flatten_dotted(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``: dotted keys, as sweep axes and
    ``--set`` name them (lists and empty dicts stay values); the inverse of
    :func:`set_dotted`."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            flat.update(flatten_dotted(v, key))
        else:
            flat[key] = v
    return flat


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels; checks happen in validation."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is a value, so {key} cannot be set")
        node = child
    node[parts[-1]] = value


def _is_range(value: dict[str, Any]) -> bool:
    """A ``--set`` mapping that is a range axis: its keys are a range's (min and max)."""
    return {"min", "max"} <= set(value)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides. ``sweep.AXIS=[...]`` sets an axis, and so does a range
    mapping (``dropout.p={min: 0, max: 0.9, step: 0.1}``); setting a swept key directly
    (``dropout.p=0.5``) fixes it and removes that axis from the grid."""
    data = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        if isinstance(value, CommaList) and not key.startswith("sweep."):
            if key in NOT_AXES:
                raise _override_error(f"--set {text}: {key!r} takes one value, not a list "
                                      f"of values to sweep ({NOT_AXES[key]}); quote a "
                                      "comma inside it: --set \"name='a,b'\"", key)
            check_dotted_key(key, where=f"--set {text}")
            for v in value:
                _check_override(text, key, v, data)
            key = f"sweep.{key}"  # KEY=a,b makes KEY an axis of the grid
        if isinstance(value, dict) and not key.startswith("sweep.") and _is_range(value) \
                and key not in NOT_AXES:
            check_dotted_key(key, where=f"--set {text}")
            key = f"sweep.{key}"  # KEY={min: .., max: ..} makes KEY a range axis
        if key.startswith("sweep."):
            axis = key[len("sweep.") :]
            check_dotted_key(axis, where="sweep")
            if isinstance(value, dict):  # a range axis: the config's validation checks it
                sweep = data.setdefault("sweep", {}) or {}
                sweep[axis] = value
                data["sweep"] = sweep
                continue
            if not isinstance(value, list):
                raise ConfigError(
                    f"--set {key}: a sweep axis needs a list of values, got {value!r}")
            sweep = data.setdefault("sweep", {}) or {}
            sweep[axis] = list(value)
            data["sweep"] = sweep
            continue
        if key == "sweep":
            data["sweep"] = value
            continue
        check_dotted_key(key, where="--set")
        _check_override(text, key, value, data)
        set_dotted(data, key, value)
        sweep = data.get("sweep")
        if isinstance(sweep, dict) and key in sweep:
            del sweep[key]
    return data
