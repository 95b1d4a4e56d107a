"""Fit a rich table to the width of the terminal: drop or shorten columns by priority and
say which. (Formerly ``report/terminal_width.py``: it fits tables, not models.)

A table wider than the terminal is not squeezed by rich into ellipses or wrapped into
unreadable rows: whole columns are hidden, least important first, and a footnote names them.
``--columns`` picks the columns, ``--wide`` shows them all; a pipe (not a terminal) gets every
column at its natural width, for scripts and files.

Priorities are a small mapping from a column's title to a number (0 = never hidden, higher =
hidden sooner), kept beside the command that prints the table (``PRIORITIES`` in
cli/sweep.py, cli/ls.py, cli/show.py), so the tables themselves stay free of terminal logic.
A column not in the mapping gets :data:`DEFAULT_PRIORITY`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from dropout_lab.errors import OutputError

DEFAULT_PRIORITY = 5
WIDE_HELP = "show every column at full width, even wider than the terminal"
SHORTEST_TEXT = 10  # a shortened free-text column keeps at least this many characters

# Free-text columns: shortened (with an ellipsis) before other columns are hidden.
TEXT_COLUMNS = frozenset({"error", "note", "tags"})


@dataclass
class Fitted:
    """The table to print, and the titles of the columns hidden or shortened to fit."""

    table: Table
    hidden: list[str] = field(default_factory=list)
    shortened: list[str] = field(default_factory=list)

    def footnote(self) -> str | None:
        """``hidden: a, b (--wide shows every column, --columns picks them)``, or None."""
        parts = []
        if self.hidden:
            parts.append(f"hidden: {', '.join(self.hidden)}")
        if self.shortened:
            parts.append(f"shortened: {', '.join(self.shortened)}")
        if not parts:
            return None
        return "; ".join(parts) + " (--wide shows all, --columns picks)"


def title_of(column: Column) -> str:
    return str(column.header)


def _widest_cell(column: Column) -> int:
    """Characters of the column's longest cell (markup removed)."""
    return max((Text.from_markup(c).cell_len if isinstance(c, str) else SHORTEST_TEXT + 1
                for c in column.cells), default=0)


def natural_width(table: Table, console: Console) -> int:
    """The width the table takes when nothing limits it."""
    return console.measure(table, options=console.options.update_width(100_000)).maximum


def _with_columns(table: Table, columns: list[Column]) -> Table:
    """A shallow copy of ``table`` that shows only ``columns`` (the cells live in them)."""
    out = copy.copy(table)
    out.columns = list(columns)
    return out


def select_columns(table: Table, wanted: list[str]) -> Fitted:
    """Only the columns titled in ``wanted`` (case-insensitive), in the table's order; the
    first column (the row's name) is always kept."""
    titles = {title_of(c).lower(): c for c in table.columns}
    unknown = [w for w in wanted if w.lower() not in titles]
    if unknown:
        raise OutputError(f"--columns: no column {', '.join(map(repr, unknown))}; "
                           f"this table has: {', '.join(title_of(c) for c in table.columns)}")
    keep = {w.lower() for w in wanted} | {title_of(table.columns[0]).lower()}
    kept = [c for c in table.columns if title_of(c).lower() in keep]
    hidden = [title_of(c) for c in table.columns if c not in kept]
    return Fitted(_with_columns(table, kept), hidden)


def fit_table(table: Table, width: int, console: Console,
              priorities: Mapping[str, int] | None = None) -> Fitted:
    """Hide or shorten columns until ``table`` fits in ``width`` characters.

    First free-text columns (:data:`TEXT_COLUMNS`) are shortened down to
    :data:`SHORTEST_TEXT` characters, then whole columns are hidden, highest priority number
    first (right-most first among equals). Priority 0 columns and the first column are never
    hidden: if they alone are too wide, rich wraps them."""
    priorities = priorities or {}
    columns = list(table.columns)
    fitted = Fitted(_with_columns(table, columns))
    if natural_width(fitted.table, console) <= width:
        return fitted
    for col in columns:
        if title_of(col) in TEXT_COLUMNS and _widest_cell(col) > SHORTEST_TEXT:
            col = copy.copy(col)
            col.overflow, col.no_wrap, col.max_width = "ellipsis", True, SHORTEST_TEXT
            columns = [col if title_of(c) == title_of(col) else c for c in columns]
            fitted.shortened.append(title_of(col))
    fitted.table = _with_columns(table, columns)
    order = sorted(
        (i for i, c in enumerate(columns)
         if i > 0 and priorities.get(title_of(c), DEFAULT_PRIORITY) > 0),
        key=lambda i: (priorities.get(title_of(columns[i]), DEFAULT_PRIORITY), i),
        reverse=True)
    for i in order:
        if natural_width(fitted.table, console) <= width:
            break
        fitted.hidden.append(title_of(columns[i]))
        fitted.table = _with_columns(
            table, [c for c in columns if title_of(c) not in fitted.hidden])
    fitted.shortened = [s for s in fitted.shortened if s not in fitted.hidden]
    return fitted


def print_table(table: Table, console: Console, priorities: Mapping[str, int] | None = None,
                columns: list[str] | None = None, wide: bool = False) -> Fitted:
    """Print ``table`` the way the terminal can show it (see the module docstring) and
    return what was hidden. ``columns``: titles to show; ``wide``: every column, natural width.
    """
    fitted = select_columns(table, columns) if columns else Fitted(table)
    if console.is_terminal and not wide and not columns:
        fitted = fit_table(table, console.width, console, priorities)
    if console.is_terminal and not wide:
        console.print(fitted.table)
    else:
        # A pipe or --wide: the table's natural width, numbers never squeezed into ellipses.
        saved = console.width
        console.width = max(saved, natural_width(fitted.table, console))
        try:
            console.print(fitted.table)
        finally:
            console.width = saved
    note = fitted.footnote()
    if note:
        console.print(note, style="dim", highlight=False, soft_wrap=False)
    return fitted


def parse_columns(text: str | None) -> list[str] | None:
    """``--columns a,b,c`` -> ["a", "b", "c"] (None when the option is absent); an
    OutputError when it names no column at all (``--columns ',,,'``)."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise OutputError(f"--columns {text!r}: names no column; give titles separated by "
                          "commas, e.g. --columns dropout.p,test_acc")
    return names
