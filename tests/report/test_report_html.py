"""report: one self-contained HTML file; rendered by headless Chromium when it is installed."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pytest

from tests.helpers.fake_sweeps import write_sweep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _text(html: str) -> str:
    """The page's text without tags (a cell is '<span>mean</span> <span>± half</span>')."""
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture
def report(rendered):
    """The session's report (tests/conftest.py: rendered once, statistics, two blocks)."""
    code, out, err = rendered.report
    assert code == 0, err
    path = rendered.report_path
    assert json.loads(out)["report"] == str(path) and len(json.loads(out)["plots"]) == 8
    return path


def test_report_is_self_contained(report):
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<table" in html and "0.9200 ± 0.0497" in _text(html)
    # nothing is loaded from anywhere: no external src/href, no scripts, no @import
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "<script" not in html and "@import" not in html and "<link" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 8
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    assert list(report.parent.glob("*.html")) == [report]  # one file, no side folder


def test_output_option_and_notes(cli, tmp_path):
    sweep = write_sweep(tmp_path)  # no statistics: three plots skipped, noted in the page
    target = tmp_path / "out" / "r.html"
    target.parent.mkdir()  # -o never creates a missing folder (tests/reliability)
    code, _, err = cli("report", sweep, "-o", target)
    assert code == 0, err
    html = target.read_text(encoding="utf-8")
    assert html.count("<img") == 3 and "reliability: skipped" in html
    assert "note: reliability: skipped" in err


def test_bad_folder_exits_2_and_writes_nothing(cli, tmp_path):
    code, _, err = cli("report", tmp_path / "nope", "-o", tmp_path / "r.html")
    assert code == 2 and "no such sweep folder" in err
    assert not (tmp_path / "r.html").exists()


def _chromium(args, tmp_path, timeout=60):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tests/setup_browser.sh "
                    "installs Debian's package where it can)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from matplotlib.image import imread

    dom = _chromium(["--dump-dom", report.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table" in dom.stdout and "dropout.p" in dom.stdout
    assert "0.9200 ± 0.0497" in _text(dom.stdout)  # the table text as the browser parsed it
    assert dom.stdout.count("<img") == 8
    shot = tmp_path / "shot.png"
    res = _chromium(["--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
                    tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[0] == 1600 and pixels.shape[1] == 1200
    assert pixels[..., :3].std() > 0.05  # not a blank page


TEN_METRICS = ["test_acc", "gap_acc", "gap_loss", "train_acc", "test_loss", "train_loss",
               "corr_last", "ablation_auc", "mc_acc", "ece_mc"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tests/setup_browser.sh "
                    "installs Debian's package where it can)")
def test_ten_metric_table_fits_a_1400_px_window(cli, tmp_path):
    sweep = write_sweep(tmp_path, stats=True)
    code, _, err = cli("report", sweep, *[a for m in TEN_METRICS for a in ("-m", m)])
    assert code == 0, err
    html = (sweep / "report.html").read_text(encoding="utf-8")
    # Measure the layout in the browser: a probe copy of the page writes the table's width and
    # its box's width into the DOM (the report itself has no scripts).
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", """<script>
const t = document.querySelector("table.compare");
document.body.setAttribute("data-fit", t.scrollWidth + "/" + t.parentElement.clientWidth);
</script></body>"""), encoding="utf-8")
    dom = _chromium(["--window-size=1400,900", "--dump-dom", probe.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    table_w, box_w = map(int, re.search(r'data-fit="(\d+)/(\d+)"', dom.stdout).groups())
    assert 0 < table_w <= box_w, (table_w, box_w)
    assert all(f"<th>{m}</th>" in html for m in TEN_METRICS)
