"""docs/python.md: every python code block runs, in order, in an empty folder (the notebook
of the issue's done-when: a sweep, a plot, a rebuilt network that reproduces test_acc)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_the_notebook():
    code = blocks()
    assert len(code) >= 4
    assert "dropout_lab.sweep(" in code[0] and ".network()" in code[0]
    assert "savefig" in code[0]


@pytest.mark.slow
def test_every_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas", reason="the page's examples use the extra [pandas]")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_python"}
    for i, code in enumerate(blocks()):
        exec(compile(code, f"{DOC}:block{i}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "test_acc.png").stat().st_size > 1000  # a real figure was drawn
    assert (tmp_path / "runs" / "digits-tiny" / "sweep.yaml").is_file()
