"""The ``--expect`` language: CI gates on a comparison that seed noise does not make flaky.

Grammar (whitespace is free)::

    expectation := side OP side          one side at least is a term
    OP          := "<" | "<=" | ">" | ">="
    side        := term | number
    term        := METRIC "[" selector ("," selector)* "]"
    selector    := KEY "=" VALUE         VALUE is YAML: 0.5, [256, 256], digits

Exactly one selector names the grouping key (``p`` is short for ``dropout.p``); the others
select blocks by the other swept axes, e.g. ``test_acc[p=0.5, model.hidden=[256]]``. Without
block selectors an expectation must hold in every block.

Semantics (see docs/compare.md for the table):

* A term against a term compares via the paired difference d = A - B over the seeds present in
  both and its confidence interval [lo, hi]. Strict operators need the interval to settle the
  question: ``<`` holds iff hi < 0, ``>`` iff lo > 0 ("significantly smaller/larger").
  Non-strict operators hold unless the interval contradicts them: ``<=`` iff lo <= 0 and
  ``>=`` iff hi >= 0 ("not significantly larger/smaller"). With fewer than 2 paired seeds the
  interval is undefined and the expectation fails (add seeds).
* A term against a number compares the mean over seeds with the number (the interval is
  printed for information): thresholds are levels the user picks with a margin.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from dropout_lab.comparison import Block, Comparison
from dropout_lab.comparison.metric_names import is_metric, metric
from dropout_lab.comparison.values import canon, fmt_value, parse_value
from dropout_lab.config import P_KEY
from dropout_lab.errors import CompareError, ExpectationError
from dropout_lab.stats import paired_difference

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
ALIASES = {"p": P_KEY}
# METRIC (optionally with a hidden-layer index, corr[2]) then [selectors]
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)\s*\[(.*)\]$", re.DOTALL)


@dataclass(frozen=True)
class Term:
    metric: str
    selectors: tuple[tuple[str, Any], ...]  # (key as typed, value), in the order typed
    text: str


@dataclass(frozen=True)
class Expectation:
    text: str
    left: Term | float
    op: str
    right: Term | float


@dataclass(frozen=True)
class Verdict:
    """The judgement of one expectation in one block, as data: ``kind`` says how it was
    decided (``paired``: the interval of a paired difference; ``threshold``: a mean against a
    number; ``no_data``, ``too_few_seeds``, ``collapsed``: it could not hold), ``numbers`` the
    values it was decided on."""

    expectation: str
    block: str
    holds: bool
    detail: str
    kind: str = "paired"
    selectors: tuple[tuple[str, Any], ...] = ()
    numbers: tuple[tuple[str, Any], ...] = ()

    def text(self) -> str:
        """expression [block]: detail"""
        where = f" [{self.block}]" if self.block else ""
        return f"{self.expectation}{where}: {self.detail}"

    def line(self) -> str:
        return f"{'PASS' if self.holds else 'FAIL'} {self.text()}"

    def to_dict(self) -> dict[str, Any]:
        return {"expression": self.expectation, "block": self.block,
                "selectors": dict(self.selectors), "holds": self.holds, "kind": self.kind,
                "detail": self.detail, **dict(self.numbers)}


# -- parsing (syntax only) ---------------------------------------------------------------------
def parse(text: str) -> Expectation:
    """Parse one expression; ExpectationError naming the problem when it is malformed."""
    src = text.strip()
    if not src:
        raise ExpectationError("empty --expect expression")
    op, at = _find_operator(src)
    left, right = _side(src[:at], src), _side(src[at + len(op):], src)
    for side in (left, right):  # float() reads "nan"/"inf": no comparison with them means much
        if isinstance(side, float) and not abs(side) < float("inf"):  # NaN or +-inf
            raise ExpectationError(f"'{src}': {side} is not a finite number to compare with")
    if not isinstance(left, Term) and not isinstance(right, Term):
        raise ExpectationError(f"'{src}': compares two numbers; one side must be a metric "
                               "term such as test_acc[p=0.5]")
    return Expectation(src, left, op, right)


def _find_operator(src: str) -> tuple[str, int]:
    depth, found = 0, []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ExpectationError(f"'{src}': unbalanced ']'")
        elif depth == 0 and ch in "<>":
            op = ch + ("=" if src[i + 1:i + 2] == "=" else "")
            found.append((op, i))
            i += len(op)
            continue
        elif depth == 0 and ch in "=!" and src[i + 1:i + 2] == "=":
            raise ExpectationError(f"'{src}': operator '{src[i:i + 2]}' is not supported; "
                                   "use one of < <= > >=")
        i += 1
    if depth != 0:
        raise ExpectationError(f"'{src}': unbalanced '['")
    if not found:
        raise ExpectationError(f"'{src}': no comparison operator; use one of < <= > >=, "
                               "e.g. 'gap_acc[p=0.5] < gap_acc[p=0.0]'")
    if len(found) > 1:
        raise ExpectationError(f"'{src}': more than one comparison; write one per --expect")
    return found[0]


def _side(part: str, src: str) -> Term | float:
    part = part.strip()
    if not part:
        raise ExpectationError(f"'{src}': a side of the comparison is empty")
    try:
        return float(part)
    except ValueError:
        pass
    m = _TERM.match(part)
    if not m:
        raise ExpectationError(f"'{src}': '{part}' is neither a number nor a term like "
                               "METRIC[p=VALUE]")
    name, inner = m.group(1), m.group(2)
    selectors = []
    for piece in _split_top(inner):
        if "=" not in piece:
            raise ExpectationError(f"'{src}': selector '{piece.strip()}' needs KEY=VALUE")
        key, value = piece.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key or not value:
            raise ExpectationError(f"'{src}': selector '{piece.strip()}' needs KEY=VALUE")
        selectors.append((key, parse_value(value)))
    if not selectors:
        raise ExpectationError(f"'{src}': '{part}' selects nothing; write e.g. {name}[p=0.5]")
    return Term(name, tuple(selectors), part)


def _split_top(inner: str) -> list[str]:
    """Split at commas outside brackets: 'p=0.5, model.hidden=[256, 256]' -> two pieces."""
    pieces, depth, cur = [], 0, ""
    for ch in inner:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            pieces.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip() or pieces:
        pieces.append(cur)
    return pieces


# -- resolving names against a comparison ------------------------------------------------------
@dataclass(frozen=True)
class _Resolved:
    metric: str
    value: Any
    selectors: dict[str, Any]
    text: str


def _resolve(term: Term, c: Comparison, src: str) -> _Resolved:
    if not is_metric(term.metric):
        try:
            metric(term.metric)
        except CompareError as exc:  # the registry's message, with its suggestion
            raise ExpectationError(f"'{src}': {exc}") from None
    if term.metric not in c.present:
        raise ExpectationError(f"'{src}': metric '{term.metric}' has no values in this sweep")
    value, have_value, selectors = None, False, {}
    for key, v in term.selectors:
        full = ALIASES.get(key, key)
        if full == c.by:
            if have_value:
                raise ExpectationError(f"'{src}': {key} is selected twice in '{term.text}'")
            value, have_value = v, True
        elif full == "seed":
            raise ExpectationError(f"'{src}': seed cannot be selected; expectations are about "
                                   "statistics over seeds")
        elif full in c.block_axes:
            known = {canon(b.selectors[full]) for b in c.blocks}
            if canon(v) not in known:
                raise ExpectationError(
                    f"'{src}': {full}={fmt_value(v)} is not in the sweep (values: "
                    + ", ".join(sorted({fmt_value(b.selectors[full]) for b in c.blocks})) + ")")
            selectors[full] = v
        else:
            raise ExpectationError(
                f"'{src}': unknown key '{key}'; select the grouping key {c.by}"
                + (" (or p)" if c.by == P_KEY else "")
                + (f" and the block axes {', '.join(c.block_axes)}" if c.block_axes else ""))
    if not have_value:
        short = "p" if c.by == P_KEY else c.by
        raise ExpectationError(f"'{src}': '{term.text}' does not say which {c.by}; "
                               f"add {short}=VALUE")
    if canon(value) not in {canon(v) for v in c.values}:
        raise ExpectationError(f"'{src}': {c.by}={fmt_value(value)} is not in the sweep (values: "
                               + ", ".join(fmt_value(v) for v in c.values) + ")")
    return _Resolved(term.metric, value, selectors, term.text)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _rule(op: str) -> str:
    return {"<": "upper end < 0", "<=": "lower end <= 0", ">": "lower end > 0",
            ">=": "upper end >= 0"}[op]


# -- evaluation --------------------------------------------------------------------------------
def evaluate(texts: list[str], c: Comparison) -> list[Verdict]:
    """Parse and resolve every expression first (malformed -> ExpectationError), then judge."""
    prepared = []
    for text in texts:
        e = parse(text)
        if not isinstance(e.left, Term):  # number OP term -> term FLIP(OP) number
            e = Expectation(e.text, e.right, FLIP[e.op], e.left)
        term = e.left
        assert isinstance(term, Term), "parse() refuses number OP number"
        left = _resolve(term, c, e.text)
        right = _resolve(e.right, c, e.text) if isinstance(e.right, Term) else e.right
        sel = dict(left.selectors)
        if isinstance(right, _Resolved):
            for k, v in right.selectors.items():
                if k in sel and canon(sel[k]) != canon(v):
                    raise ExpectationError(f"'{e.text}': the two sides select different "
                                           f"blocks ({k}); compare within one block")
                sel[k] = v
        blocks = c.matching_blocks(sel)
        if not blocks:
            raise ExpectationError(f"'{e.text}': no block of the sweep matches "
                                   + ", ".join(f"{k}={fmt_value(v)}" for k, v in sel.items()))
        prepared.append((e, left, right, blocks))
    verdicts = []
    for e, left, right, blocks in prepared:
        for block in blocks:
            label = block.label if c.block_axes else ""
            verdicts.append(_judge(e, left, right, block, label, c))
    return verdicts


def _judge(e: Expectation, left: _Resolved, right: _Resolved | float, block: Block,
           label: str, c: Comparison) -> Verdict:
    pct = f"{c.level * 100:g}%"
    sel = tuple(block.selectors.items())

    def verdict(holds: bool, detail: str, kind: str, **numbers: Any) -> Verdict:
        return Verdict(e.text, label, holds, detail, kind, sel, tuple(numbers.items()))

    sides = [left] + ([right] if isinstance(right, _Resolved) else [])
    for side in sides:
        row = block.row(side.value)
        if row is not None and row.flags.get("collapsed"):
            return verdict(False, f"{c.by}={fmt_value(side.value)} has {row.flags['collapsed']} "
                           f"collapsed trial(s) of {row.done}: the comparison rests on broken "
                           "runs (see the health flags; change the protocol or the grid)",
                           "collapsed", collapsed=row.flags["collapsed"])
    lrow = block.row(left.value)
    if lrow is None or lrow.cells[left.metric].summary.n == 0:
        return verdict(False, f"no finished trial with {c.by}={fmt_value(left.value)}", "no_data")
    lcell = lrow.cells[left.metric]
    if not isinstance(right, _Resolved):
        s = lcell.summary
        assert s.mean is not None, "n >= 1, checked above"
        holds = bool(OPERATORS[e.op](s.mean, right))
        ci = f"[{_f(s.lo)}, {_f(s.hi)}]" if s.lo is not None else "undefined"
        return verdict(holds, f"mean {_f(s.mean)} {e.op} {right:g} is {str(holds).lower()} "
                       f"({pct} CI {ci}, n={s.n} seeds; the mean decides a threshold)",
                       "threshold", mean=s.mean, ci=None if s.lo is None else [s.lo, s.hi],
                       n=s.n, threshold=right)
    rrow = block.row(right.value)
    if rrow is None or rrow.cells[right.metric].summary.n == 0:
        return verdict(False, f"no finished trial with {c.by}={fmt_value(right.value)}", "no_data")
    d = paired_difference(lcell.per_seed, rrow.cells[right.metric].per_seed, c.level).summary
    numbers = {"diff": d.mean, "ci": None if d.lo is None else [d.lo, d.hi], "n": d.n}
    if d.lo is None or d.hi is None:  # both None, or neither
        return verdict(False, f"d = {_f(d.mean)} over n={d.n} paired seed(s): the {pct} CI "
                       "needs at least 2 seeds present on both sides; add seeds",
                       "too_few_seeds", **numbers)
    if d.uninformative:  # see Summary.excludes_zero: no evidence either way
        holds = e.op in ("<=", ">=")
        return verdict(holds, f"d = {d.mean:+.4f} at every one of n={d.n} paired seeds: a "
                       "zero-width interval (no spread) shows no significant difference "
                       "(accuracies move in steps of 1/N); add seeds", "paired", **numbers)
    holds = {"<": d.hi < 0, "<=": d.lo <= 0, ">": d.lo > 0, ">=": d.hi >= 0}[e.op]
    return verdict(holds,
                   f"d = {left.metric}[{fmt_value(left.value)}] - "
                   f"{right.metric}[{fmt_value(right.value)}]"
                   f" = {d.mean:+.4f}, {pct} CI [{d.lo:+.4f}, {d.hi:+.4f}], n={d.n} paired "
                   f"seeds; '{e.op}' needs {_rule(e.op)}", "paired", **numbers)
