"""``medius report``: the PDF is written offscreen, with the summary, trial and trend pages."""

import os
import re

import synth_session as S
from app.cli import main

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_report_pages(tmp_path, capsys):
    a = tmp_path / "a.medius"
    b = tmp_path / "b.medius"
    S.build(a, seed=21, n_reps=4, date="2026-11-25")
    S.build(b, seed=22, n_reps=4, date="2026-12-09")
    alone = tmp_path / "alone.pdf"
    assert main(["report", str(b), "--pdf", str(alone)]) == 0
    with_trend = tmp_path / "trend.pdf"
    assert main(["report", str(b), "--pdf", str(with_trend), "--history", str(tmp_path)]) == 0
    pa, pt = alone.read_bytes(), with_trend.read_bytes()
    assert pa.startswith(b"%PDF") and pt.startswith(b"%PDF")
    assert _pages(pa) >= 3  # summary, trials, quality
    assert _pages(pt) > _pages(pa)  # + change over sessions
    assert "report written" in capsys.readouterr().out


def test_report_missing_session(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.medius"), "--pdf", str(tmp_path / "x.pdf")]) == 2
    assert "no such session" in capsys.readouterr().err


def test_report_reuses_earlier_mvic(tmp_path):
    early, later = tmp_path / "early.medius", tmp_path / "later.medius"
    S.build(early, seed=41, n_reps=3, date="2026-11-25")
    S.build(later, seed=42, n_reps=3, date="2026-12-09", with_mvic=False)
    pdf = tmp_path / "r.pdf"
    assert main(["report", str(later), "--pdf", str(pdf), "--mvic-from", str(early)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def _one_line(err: str) -> str:
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_report_bad_inputs_one_line(tmp_path, capsys):
    good = tmp_path / "good.medius"
    S.build(good, seed=23, n_reps=3, date="2026-11-25")
    bad = tmp_path / "bad.medius"
    bad.write_text("not a session")
    unreadable = f"{bad}: not a readable Medius session: not an SQLite database (no SQLite header)"
    capsys.readouterr()
    assert main(["report", str(bad), "--pdf", str(tmp_path / "x.pdf")]) == 2
    assert _one_line(capsys.readouterr().err) == f"medius report: {unreadable}\n"
    assert main(["report", str(good), "--pdf", str(tmp_path / "x.pdf"), "--history", str(bad)]) == 2
    assert _one_line(capsys.readouterr().err) == f"medius report: {unreadable}\n"
    assert main(["report", str(good), "--pdf", str(tmp_path / "x.pdf"), "--mvic-from", str(bad)]) == 2
    assert _one_line(capsys.readouterr().err) == f"medius report: {unreadable}\n"


def test_report_unwritable_pdf(tmp_path, capfd):
    good = tmp_path / "good.medius"
    S.build(good, seed=24, n_reps=3, date="2026-11-25")
    capfd.readouterr()
    target = tmp_path / "no_such_dir" / "r.pdf"
    assert main(["report", str(good), "--pdf", str(target)]) == 1
    out, err = capfd.readouterr()  # capfd: Qt's own warnings go to the process's stderr, not sys.stderr
    assert "report written" not in out and "Painter" not in err
    assert _one_line(err) == f"medius report: {target}: cannot write the PDF: No such file or directory\n"
    assert main(["report", str(good), "--pdf", str(tmp_path)]) == 1
    assert _one_line(capfd.readouterr().err) == f"medius report: {tmp_path}: cannot write the PDF: Is a directory\n"


def test_painter_that_cannot_start_raises(tmp_path, monkeypatch):
    """Behind the path check, the painter's own state is checked too (e.g. a file removed in between)."""
    import pytest
    from PySide6.QtGui import QGuiApplication

    import app.report as report

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841
    monkeypatch.setattr(report.QPainter, "isActive", lambda self: False)
    with pytest.raises(OSError, match="Qt could not start painting"):
        report._Doc(tmp_path / "r.pdf", "t")


def test_report_prints_the_numbers_analyze_gives(tmp_path):
    """The GUI's review tab and the CLI draw this report from the same result as `medius analyze --json`:
    the values printed on the summary page must be the JSON's, rounded as stated."""
    import json
    from pathlib import Path

    from PySide6.QtGui import QGuiApplication
    from PySide6.QtPdf import QPdfDocument

    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo.medius"
    js, pdf = tmp_path / "demo.json", tmp_path / "demo.pdf"
    assert main(["analyze", str(demo), "--json", str(js), "--jobs", "1"]) == 0
    assert main(["report", str(demo), "--pdf", str(pdf)]) == 0
    r = json.loads(js.read_text())["sessions"][0]

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841
    doc = QPdfDocument()
    assert doc.load(str(pdf)) == QPdfDocument.Error.None_
    text = " ".join(doc.getAllText(0).text().split())  # page 1, line breaks as spaces

    checked = 0
    for side, sd in r["sides"].items():
        for tid, trial in sd["trials"].items():
            ratio = trial["gmed_tfl_ratio"]
            assert (f"{ratio['mean']:.2f} [{ratio['ci95_low']:.2f}, {ratio['ci95_high']:.2f}] (n={ratio['n']})"
                    in text)
            for muscle in ("gluteus_medius", "tfl"):
                s = r["muscles"][f"{muscle}_{side}"]["trials"][tid]["rms_pct_mvic"]
                assert f"{s['mean']:.1f} ± {s['sd']:.1f} (n={s['n']})" in text
                checked += 1
    for mv, entry in r["symmetry"]["movements"].items():
        for key in ("gluteus_medius_rms_pct_mvic", "tfl_rms_pct_mvic", "gmed_tfl_ratio"):
            c = entry[key]
            assert f"A {c['affected']['mean']:.2f} vs U {c['unaffected']['mean']:.2f}" in text
            assert f"SI {c['si_pct']:.1f} %, LSI {c['lsi_pct']:.1f} %" in text
            checked += 1
    assert checked >= 7  # the demo: one movement on both sides
