"""Values of a sweep axis: canonical keys, how they are printed, their order, parsing.

An axis value is plain YAML/JSON data (0.5, [256, 256], "digits", {kind: cosine}); these
helpers let 0 and 0.0 (or [256] and [256.0]) be the same value everywhere.
"""

from __future__ import annotations

import json
from typing import Any

import yaml


def canon(value: Any) -> str:
    """A key under which 0 and 0.0 (and [256] and [256.0]) are the same axis value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canon(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{canon(v)}" for k, v in sorted(value.items())) + "}"
    return json.dumps(str(value))


def fmt_value(value: Any) -> str:
    """How an axis value is printed: 0.5, [256, 256], digits."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def order_key(value: Any) -> tuple[object, ...]:
    """Numbers in numeric order, then lists (by length, then elementwise), then text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (list, tuple)):
        return (1, len(value), tuple(order_key(v) for v in value))
    return (2, str(value))


def parse_value(text: str) -> Any:
    """A value typed on the command line, read as YAML (``0.5``, ``[256]``, ``digits``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def dotted(doc: dict[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) at a dotted key of a nested dict."""
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node
