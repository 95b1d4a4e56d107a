"""The trial vocabulary: Status writes and reads back as the plain strings of result.json."""

from __future__ import annotations

import csv
import io
import json

from dropout_lab.result import UNSUCCESSFUL, Status


def test_a_status_is_written_as_its_plain_string():
    assert json.dumps({"status": Status.DONE}) == '{"status": "done"}'
    assert json.dumps({Status.PENDING: 1}) == '{"pending": 1}'
    assert f"{Status.DIVERGED:<9}|" == "diverged |"
    assert str(Status.CORRUPT) == "corrupt" and f"{Status.FAILED}" == "failed"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([Status.DONE])
    assert buf.getvalue() == "done\n"


def test_a_status_read_from_an_old_file_compares_equal():
    read = json.loads('{"status": "diverged"}')["status"]
    assert read == Status.DIVERGED and read in UNSUCCESSFUL
    assert Status(read) is Status.DIVERGED
    assert {"done": 3}[Status.DONE] == 3  # same hash as the string: count dicts keep working
    assert "done" != Status.FAILED


def test_the_statuses_are_the_five_the_code_knows():
    assert [s.value for s in Status] == ["done", "failed", "diverged", "pending", "corrupt"]
