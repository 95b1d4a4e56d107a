"""Text from outside the program, made safe to show: on a terminal and in a spreadsheet.

Names, axis values, notes, tags and error texts come from config files, the command line and
the runs directory, which anyone may have edited. Shown raw, an ESC sequence in a note can
retitle the terminal or clear the screen, a ``[/]`` in a sweep name is rich markup (a crash),
and a CSV cell starting with ``=`` runs as a formula when the file is opened in a spreadsheet.
Every printer of such text goes through this module (docs/reliability.md, "Safe output").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rich.markup import escape as _markup_escape

# Control (Cc), format (Cf: bidirectional overrides, zero-width characters), line and
# paragraph separators and surrogates: shown as escapes, never sent to the terminal.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _visible(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def printable(text: object, newlines: bool = False) -> str:
    """``text`` with every control or format character written as a visible escape
    (``\\x1b``, ``\\n``, ``\\u202e``). ``newlines``: keep line breaks (a multi-line message)."""
    s = str(text)
    if not any(_unsafe(ch) for ch in s):  # the common case: nothing to do
        return s
    return "".join(ch if (newlines and ch == "\n") or not _unsafe(ch) else _visible(ch)
                   for ch in s)


def markup(text: object, newlines: bool = False) -> str:
    """:func:`printable`, then rich markup escaped: the text prints literally through a rich
    console or in a rich table cell (``exp[/]old`` stays ``exp[/]old``)."""
    return _markup_escape(printable(text, newlines))


def message(text: object) -> str:
    """An error or warning message for a rich console: line breaks kept, nothing else."""
    return markup(text, newlines=True)


# A cell that is a plain number (-0.25, 1e-05) is data; anything else starting with one of
# these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet cannot run: text starting with ``= + - @``, a tab, a carriage
    return (or ``|``, ``%``) gets a leading apostrophe, which spreadsheets read as "this is
    text" and do not show. Numbers, and text that is a plain number, are left as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value
