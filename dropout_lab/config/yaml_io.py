"""Reading YAML safely: the size of the text and the size after alias expansion are checked
before any object is built (a "billion laughs" document of 16 lines expands to gigabytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dropout_lab.config.limits import MAX_CONFIG_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES
from dropout_lab.errors import ConfigError


def _expanded_nodes(node: yaml.Node, memo: dict[int, int], open_: set[int], where: str) -> int:
    """Nodes the document has once every alias is expanded: computed on the composed graph,
    where an alias is a second reference to one node, so the cost is linear in the file."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        raise ConfigError(f"{where}: a YAML alias refers to itself (a recursive document)")
    open_.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_nodes(child, memo, open_, where)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_nodes(k, memo, open_, where) + _expanded_nodes(v, memo, open_, where)
            if total > MAX_YAML_NODES:
                break
    open_.discard(key)
    memo[key] = total
    return total


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]
    """yaml.SafeLoader, except that a key given twice in one mapping is an error: PyYAML keeps
    the last one in silence, so a section written twice loses the first in silence."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader explains it below
                break
            if first is not None:
                raise _DuplicateKey(key, first, key_node)
            seen[key] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: yaml.Node, again: yaml.Node) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


def flow_depth(text: str) -> int:
    """The deepest nesting of flow collections (``[`` and ``{``) outside quoted scalars and
    comments. An upper bound is enough (a bracket inside a plain scalar counts too); texts
    with few brackets are not scanned at all."""
    if text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return 0
    depth = deepest = 0
    quote = ""
    previous = "\n"
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1  # an escaped character in a double-quoted scalar
            elif c == quote:
                quote = ""
        elif c in "'\"" and previous in " \t\n[{,:-":
            quote = c  # ('' in single quotes ends it early here: over-counts, harmless)
        elif c == "#" and previous in " \t\n":
            i = text.find("\n", i)
            if i < 0:
                break
            c = "\n"
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        previous = c
        i += 1
    return deepest


def load_yaml_text(text: str, where: str) -> Any:
    """``yaml.safe_load`` with limits checked before any object is built: the text size, and
    the size after alias expansion (a "billion laughs" document of 16 lines expands to
    gigabytes). YAMLError passes through for the caller's message."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {len(text):,} characters, more than the limit of "
                          f"{MAX_CONFIG_BYTES:,} for a config")
    if flow_depth(text) > MAX_YAML_DEPTH:  # before PyYAML: 5,000 levels took it ~20 s
        raise ConfigError(f"{where}: the YAML is nested too deeply (more than "
                          f"{MAX_YAML_DEPTH} levels of [ ] or {{ }})")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            size = _expanded_nodes(node, {}, set(), where)
            if size > MAX_YAML_NODES:
                raise ConfigError(f"{where}: the YAML expands (through its aliases) to more than "
                                  f"{MAX_YAML_NODES:,} values, the limit for a config")
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ConfigError(f"{where}: the YAML is nested too deeply") from None
    except _DuplicateKey as dup:
        exc = ConfigError(f"{where}: key {dup.key!r} is given twice (lines "
                          f"{dup.first.start_mark.line + 1} and {dup.again.start_mark.line + 1}); "
                          "write each key once (merge the two sections)")
        exc.key = str(dup.key)  # type: ignore[attr-defined]
        raise exc from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int limit)
        raise ConfigError(f"{where}: a number is too long to read ({exc})") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML document of a config file (a mapping), or a ConfigError naming the problem."""
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder, not a config file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ConfigError(f"{str(path)!r} is not a regular file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, more than the limit of "
                              f"{MAX_CONFIG_BYTES:,} for a config file")
        data = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    return {} if data is None else data
