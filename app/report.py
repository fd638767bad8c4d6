"""Clinician's PDF report of a session, drawn with Qt's PDF writer (QPdfWriter + QPainter).

Page 1 is the summary per side (GMed and TFL %MVIC, GMed:TFL ratio with its CI, side comparison, fatigue
slope, quality flags); then detail pages per trial (envelopes with the repetitions, the hold's MDF over time,
the quality table) and the trend over the patient's sessions with the smallest real difference. The numbers
all come from `app.analysis` results; nothing here computes a measure. No diagnostic wording: measurements,
their spread, side differences and changes against measurement noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from app.analysis.tables import fmt, mean_sd

DPI = 150
MARGIN = 70
GMED_COLOR = QColor(31, 119, 180)
TFL_COLOR = QColor(214, 120, 20)
GREY = QColor(110, 110, 110)
LIGHT = QColor(225, 225, 225)
NOTICE = QColor(160, 30, 30)
SIDE_COLORS = {"left": QColor(80, 60, 160), "right": QColor(30, 140, 90)}
DISCLAIMER = ("Measurements with their spread over repetitions; side-to-side comparison and change over sessions "
              "against measurement noise. Not a diagnosis.")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


class _Doc:
    """A PDF being drawn: current page, a text cursor, and small drawing helpers (pixels at `DPI`)."""

    def __init__(self, path: Path, title: str):
        try:  # fail before Qt does: Qt only prints warnings and draws into nothing
            path.open("wb").close()
        except OSError as exc:
            raise OSError(f"{path}: cannot write the PDF: {exc.strerror or exc}") from exc
        self.writer = QPdfWriter(str(path))
        self.writer.setResolution(DPI)
        self.writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(0, 0, 0, 0)))
        self.writer.setTitle(title)
        self.writer.setCreator("Medius")
        self.p = QPainter(self.writer)
        if not self.p.isActive():
            # QPdfWriter opens the file lazily; a bad path only shows as a painter that never started.
            # Painter before writer: Qt must not outlive-paint a deleted device.
            del self.p, self.writer
            raise OSError(f"{path}: cannot write the PDF (Qt could not start painting)")
        self.p.setRenderHint(QPainter.Antialiasing)
        self.width = self.writer.width()
        self.height = self.writer.height()
        self.y = MARGIN
        self.page_no = 1
        self.footer_text = ""

    # --- text ------------------------------------------------------------------------------------------------
    def font(self, size: float, bold: bool = False) -> None:
        f = QFont("Helvetica")
        f.setPointSizeF(size)
        f.setBold(bold)
        self.p.setFont(f)

    def text(self, s: str, size: float = 9.5, bold: bool = False, color: QColor | None = None, indent: int = 0,
             gap: int = 6) -> None:
        """Wrapped paragraph at the cursor."""
        self.font(size, bold)
        self.p.setPen(color or QColor("black"))
        rect = QRectF(MARGIN + indent, self.y, self.width - 2 * MARGIN - indent, self.height)
        bound = self.p.boundingRect(rect, Qt.TextWordWrap, s)
        self.p.drawText(rect, Qt.TextWordWrap, s)
        self.y += bound.height() + gap

    def heading(self, s: str) -> None:
        self.need(80)
        self.y += 10
        self.text(s, 13, True, gap=4)
        self.p.setPen(QPen(LIGHT, 2))
        self.p.drawLine(MARGIN, self.y, self.width - MARGIN, self.y)
        self.y += 10

    def need(self, h: float) -> None:
        if self.y + h > self.height - MARGIN - 30:
            self.new_page()

    def footer(self) -> None:
        self.font(7.5)
        self.p.setPen(GREY)
        self.p.drawText(QRectF(MARGIN, self.height - MARGIN, self.width - 2 * MARGIN, 30), Qt.AlignLeft,
                        self.footer_text)
        self.p.drawText(QRectF(MARGIN, self.height - MARGIN, self.width - 2 * MARGIN, 30), Qt.AlignRight,
                        f"page {self.page_no}")

    def new_page(self) -> None:
        self.footer()
        self.writer.newPage()
        self.page_no += 1
        self.y = MARGIN

    def close(self) -> None:
        self.footer()
        self.p.end()

    # --- table -----------------------------------------------------------------------------------------------
    def table(self, header: list[str], rows: list[list[str]], widths: list[float], size: float = 8.5,
              notes: dict[int, QColor] | None = None) -> None:
        """Simple grid; ``widths`` are fractions of the text width; ``notes`` colours whole rows."""
        total = self.width - 2 * MARGIN
        xs = np.concatenate([[0], np.cumsum(widths)]) * total + MARGIN
        self.font(size)
        line_h = self.p.fontMetrics().height()
        for r_i, row in enumerate([header] + rows):
            # wrap each cell, row height = tallest cell
            rects = [QRectF(xs[i] + 4, self.y + 3, xs[i + 1] - xs[i] - 8, 1000) for i in range(len(row))]
            self.font(size, bold=r_i == 0)
            h = max(self.p.boundingRect(rc, Qt.TextWordWrap, c).height() for rc, c in zip(rects, row)) + 6
            h = max(h, line_h + 6)
            self.need(h)
            rects = [QRectF(xs[i] + 4, self.y + 3, xs[i + 1] - xs[i] - 8, h) for i in range(len(row))]
            if r_i == 0:
                self.p.fillRect(QRectF(MARGIN, self.y, total, h), QColor(240, 240, 240))
            self.p.setPen((notes or {}).get(r_i - 1, QColor("black")))
            for rc, c in zip(rects, row):
                self.p.drawText(rc, Qt.TextWordWrap, c)
            self.p.setPen(QPen(LIGHT, 1))
            self.p.drawLine(MARGIN, self.y + h, MARGIN + total, self.y + h)
            self.y += h
        self.y += 10

    # --- charts ----------------------------------------------------------------------------------------------
    def axes(self, rect: QRectF, x_range, y_range, x_label: str, y_label: str, x_ticks=None, x_tick_labels=None):
        """Frame, ticks and labels; returns a function mapping data (x, y) to page points."""
        p = self.p
        plot = QRectF(rect.left() + 70, rect.top() + 10, rect.width() - 85, rect.height() - 60)
        (x0, x1), (y0, y1) = x_range, y_range

        def at(x, y):
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())

        self.font(7.5)
        for ty in _nice_ticks(y0, y1):
            pt = at(x0, ty)
            p.setPen(QPen(LIGHT, 1))
            p.drawLine(QPointF(plot.left(), pt.y()), QPointF(plot.right(), pt.y()))
            p.setPen(GREY)
            p.drawText(QRectF(plot.left() - 66, pt.y() - 12, 60, 24), Qt.AlignRight | Qt.AlignVCenter, f"{ty:g}")
        ticks = x_ticks if x_ticks is not None else _nice_ticks(x0, x1)
        half = max(45.0, plot.width() / max(1, len(ticks)) / 2 - 4)
        for i, tx in enumerate(ticks):
            pt = at(tx, y0)
            label = x_tick_labels[i] if x_tick_labels else f"{tx:g}"
            p.setPen(GREY)
            p.drawText(QRectF(pt.x() - half, plot.bottom() + 4, 2 * half, 22), Qt.AlignHCenter, label)
        p.setPen(QPen(GREY, 1.5))
        p.drawRect(plot)
        self.font(8)
        p.setPen(QColor("black"))
        p.drawText(QRectF(plot.left(), plot.bottom() + 26, plot.width(), 22), Qt.AlignHCenter, x_label)
        p.save()
        p.translate(rect.left() + 8, plot.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-plot.height() / 2, -6, plot.height(), 22), Qt.AlignHCenter, y_label)
        p.restore()
        return at, plot

    def legend(self, x: float, y: float, items: list[tuple[str, QColor]]) -> None:
        self.font(8)
        for name, color in items:
            self.p.fillRect(QRectF(x, y + 4, 18, 10), color)
            self.p.setPen(QColor("black"))
            self.p.drawText(QPointF(x + 24, y + 14), name)
            x += 30 + self.p.fontMetrics().horizontalAdvance(name) + 20


_UNITS = {"pct_mvic": "%MVIC", "ratio": "ratio", "pct": "%", "pct_per_s": "%/s", "ms": "ms"}
_MUSCLES = {"gluteus_medius": "GMed", "tfl": "TFL"}


def _muscle_label(key: str) -> str:
    """``gluteus_medius_left`` -> ``GMed left``."""
    muscle, side = key.rsplit("_", 1)
    return f"{_MUSCLES.get(muscle, muscle)} {side}"


def _trend_series(series: dict, affected: str | None) -> list[tuple[str, str]]:
    """The series a clinician reads first, in reading order, with plain titles."""
    out = []
    names = list(series)
    for name in names:
        scope, mv, measure = name.split("/")
        mvt = mv.replace("_", " ")
        if measure == "gmed_tfl_ratio":
            out.append((0, name, f"GMed:TFL ratio — {_side_label(scope, affected)} side, {mvt}"))
        elif measure == "rms_pct_mvic":
            muscle, side = scope.rsplit("_", 1)
            out.append((1, name, f"{_MUSCLES.get(muscle, muscle)} {_side_label(side, affected)}: RMS %MVIC — {mvt}"))
        elif measure in ("si_gluteus_medius_rms_pct_mvic", "si_gmed_tfl_ratio"):
            what = "GMed RMS %MVIC" if "gluteus" in measure else "GMed:TFL ratio"
            out.append((2, name, f"Symmetry index of {what} (affected vs unaffected) — {mvt}"))
        elif measure == "mdf_slope_pct_per_s":
            muscle, side = scope.rsplit("_", 1)
            out.append((3, name, f"{_MUSCLES.get(muscle, muscle)} {_side_label(side, affected)}: MDF slope during "
                                 "the sustained hold"))
    return [(n, t) for _, n, t in sorted(out)]


def _source_label(source: str) -> str:
    """Where repetitions were found, in words."""
    if source.startswith("joint_angle:"):
        return "the joint angle " + source.split(":", 1)[1].replace("_deg", "").replace("_", " ")
    return {"imu_tilt": "the thigh IMU tilt", "emg_envelope": "the EMG envelopes (no kinematics)"}.get(source, source)


def _side_label(side: str, affected: str | None) -> str:
    if affected is None:
        return side
    return f"{side} ({'affected' if side == affected else 'unaffected'})"


def _exercise_trials(result: dict, side: str) -> list[tuple[str, dict]]:
    return list(result["sides"].get(side, {"trials": {}})["trials"].items())


def _quality_flags(result: dict, side: str) -> list[str]:
    """Short flags for the summary, one per muscle and problem (worst trial), from the contraction trials:
    what in the signal limits the numbers of that side."""
    flags = []
    for key in (f"gluteus_medius_{side}", f"tfl_{side}"):
        m = result["muscles"].get(key)
        if not m:
            continue
        name = "GMed" if key.startswith("gluteus") else "TFL"
        qs = [(tid, t.get("quality") or {}) for tid, t in m["trials"].items() if t.get("type") != "rest"]

        def worst(field):
            vals = [(q[field], tid) for tid, q in qs if q.get(field) is not None]
            return max(vals) if vals else (None, None)

        lost, tid = worst("packet_loss_pct")
        if lost is not None and lost > 1:
            flags.append(f"{name}: up to {lost:.1f} % of samples lost (trial {tid})")
        clip, tid = worst("saturation_pct")
        if clip is not None and clip > 0.1:
            flags.append(f"{name}: {clip:.1f} % clipped (trial {tid})")
        hum, tid = worst("mains_ratio")
        if hum is not None and hum > 0.1:
            flags.append(f"{name}: mains hum up to {100 * hum:.0f} % of power (trial {tid})")
        snrs = [(q["snr_db"], tid) for tid, q in qs if q.get("snr_db") is not None]
        if snrs and min(snrs)[0] < 10:
            flags.append(f"{name}: SNR {min(snrs)[0]:.0f} dB (trial {min(snrs)[1]}); spectra withheld")
        ref = m.get("mvic") or {}
        if ref.get("method") == "peak_of_task":
            flags.append(f"{name}: no MVIC, normalised to peak of task")
        target = next((t["muscle"] for t in result["session"]["trials"] if t["trial_id"] == ref.get("trial_id")
                       and t["type"] == "mvic"), m["muscle"])
        if target != m["muscle"]:
            flags.append(f"{name}: MVIC reference from a {_MUSCLES.get(target, target)} MVIC trial; %MVIC may read high")
        if ref.get("date") and ref.get("date") != result["session"]["date"]:
            flags.append(f"{name}: MVIC reference from {ref['date']}")
    return flags or ["none"]


def _hold(result: dict, muscle: str, side: str) -> dict:
    m = result["muscles"].get(f"{muscle}_{side}", {})
    for t in m.get("trials", {}).values():
        if t.get("type") == "hold" and "fatigue" in t:
            return t["fatigue"]
    return {}


def _pct(s: dict | None) -> str:
    return mean_sd(s, 1)


def _ci(s: dict | None, digits: int = 2) -> str:
    if not s or s.get("mean") is None:
        return "-"
    ci = f" [{s['ci95_low']:.{digits}f}, {s['ci95_high']:.{digits}f}]" if s.get("ci95_low") is not None else ""
    return f"{s['mean']:.{digits}f}{ci} (n={s['n']})"


def _summary_page(doc: _Doc, r: dict) -> None:
    s = r["session"]
    sym = r["symmetry"]
    a_side, u_side = sym["affected_side"], sym["unaffected_side"]
    doc.text("Hip abductor surface EMG: gluteus medius (GMed) and tensor fasciae latae (TFL)", 15, True, gap=2)
    doc.text(f"Patient {s['patient_code']}   ·   session {s['date']}   ·   affected side: "
             f"{s['affected_side'] or 'not declared'}   ·   devices: {', '.join(s['devices']) or '-'}", 9.5, gap=2)
    doc.text(f"File: {s['source']}", 7.5, color=GREY, gap=10)

    sides = [a_side, u_side] if s["affected_side"] else sorted(r["sides"])
    header = ["Measure (per repetition: mean ± SD, n)"] + [_side_label(sd, s["affected_side"]) for sd in sides]
    rows = []
    movements = sorted({t["movement"] for sd in r["sides"].values() for t in sd["trials"].values()})
    for mv in movements:
        def pick(side, scope, name):
            for tid, t in _exercise_trials(r, side):
                if t["movement"] != mv:
                    continue
                if scope == "side":
                    return t.get(name)
                return r["muscles"].get(f"{scope}_{side}", {}).get("trials", {}).get(tid, {}).get(name)
            return None
        label = mv.replace("_", " ")
        rows.append([f"{label}: repetitions"] + [str(pick(sd, "side", "n_reps") or "-") for sd in sides])
        rows.append(["  GMed RMS %MVIC"] + [_pct(pick(sd, "gluteus_medius", "rms_pct_mvic")) for sd in sides])
        rows.append(["  TFL RMS %MVIC"] + [_pct(pick(sd, "tfl", "rms_pct_mvic")) for sd in sides])
        rows.append(["  GMed:TFL ratio (mean, 95 % CI)"] + [_ci(pick(sd, "side", "gmed_tfl_ratio")) for sd in sides])
        rows.append(["  GMed − TFL (%MVIC points)"] + [_pct(pick(sd, "side", "gmed_minus_tfl_pct_mvic")) for sd in sides])
        rows.append(["  GMed onset − TFL onset (ms; > 0: GMed later)"] +
                    [mean_sd(pick(sd, "side", "gmed_onset_minus_tfl_ms"), 0) for sd in sides])
        rows.append(["  Co-activation index (%)"] + [_pct(pick(sd, "side", "coactivation_index_pct")) for sd in sides])
    for muscle, name in (("gluteus_medius", "GMed"), ("tfl", "TFL")):
        cells = []
        for sd in sides:
            f = _hold(r, muscle, sd)
            if not f:
                cells.append("-")
            elif f.get("mdf_slope_pct_per_s") is None:
                cells.append("withheld: " + "; ".join(f.get("withheld") or ["-"]))
            else:
                se = f.get("mdf_slope_se_pct_per_s")
                cells.append(f"{f['mdf_slope_pct_per_s']:.3f} %/s" + (f" (± {se:.3f} SE)" if se is not None else "") +
                             f"; held {fmt(f.get('endurance_time_s'), 0)} s")
        rows.append([f"Hold: {name} MDF slope, hold time"] + cells)
    rows.append(["Quality and normalisation flags"] + ["\n".join(_quality_flags(r, sd)) for sd in sides])
    doc.table(header, rows, [0.36, 0.32, 0.32])

    # side comparison sentences, in numbers
    doc.text("Side comparison (affected − unaffected; SI = (A − U)/(0.5·(A + U))·100 %, LSI = A/U·100 %)", 10.5, True)
    if not s["affected_side"]:
        doc.text("No affected side declared: A = left, U = right.", 8.5, color=GREY)
    for mv, entry in sym["movements"].items():
        for key, label in (("gluteus_medius_rms_pct_mvic", "GMed RMS %MVIC"), ("tfl_rms_pct_mvic", "TFL RMS %MVIC"),
                           ("gmed_tfl_ratio", "GMed:TFL ratio")):
            c = entry.get(key)
            if not c:
                continue
            within = c.get("difference_within_rep_spread")
            verdict = ("the difference lies within the spread of the repetitions (its 95 % CI includes 0)" if within
                       else "the difference is larger than the spread of the repetitions (its 95 % CI excludes 0)"
                       if within is False else "spread not available")
            doc.text(f"{mv.replace('_', ' ')}, {label}: A {fmt(c['affected']['mean'], 2)} vs U "
                     f"{fmt(c['unaffected']['mean'], 2)}; difference {fmt(c['difference'], 2)} "
                     f"[{fmt(c['difference_ci95_low'], 2)}, {fmt(c['difference_ci95_high'], 2)}]; "
                     f"SI {fmt(c.get('si_pct'))} %, LSI {fmt(c.get('lsi_pct'))} %: {verdict}.", 8.5, indent=10, gap=3)
    doc.y += 8
    _summary_chart(doc, r, sides)
    if r["warnings"]:
        doc.text("Notes", 10.5, True)
        for w in r["warnings"]:
            doc.text("• " + w, 8, color=NOTICE, indent=10, gap=2)
    doc.y += 6
    mv = r["symmetry"]
    doc.text("RMS %MVIC = RMS of the band-passed EMG over the repetition (rest noise power removed) / MVIC "
             f"reference (peak of a {r['config']['amplitude_window_s']:g} s moving RMS over the MVIC trials) × 100. "
             "GMed:TFL ratio = RMS %MVIC of GMed / RMS %MVIC of TFL, per repetition. Co-activation index: Falconer & Winter 1985. "
             "Definitions and sources: docs/analysis.md. " + DISCLAIMER, 7.5, color=GREY)


def _summary_chart(doc: _Doc, r: dict, sides: list[str]) -> None:
    """Mean %MVIC per side for GMed and TFL (bars), every repetition (dots), SD (whiskers)."""
    doc.need(360)
    rect = QRectF(MARGIN, doc.y, (doc.width - 2 * MARGIN) * 0.62, 330)
    groups = []
    for sd in sides:
        for tid, t in _exercise_trials(r, sd):
            g = r["muscles"].get(f"gluteus_medius_{sd}", {}).get("trials", {}).get(tid, {}).get("rms_pct_mvic")
            f = r["muscles"].get(f"tfl_{sd}", {}).get("trials", {}).get(tid, {}).get("rms_pct_mvic")
            groups.append((f"{sd}: {t['movement'].replace('_', ' ')}", g, f))
    if not groups:
        return
    top = max([v for _, g, f in groups for s in (g, f) if s for v in s["per_rep"] if v is not None] + [10.0])
    at, plot = doc.axes(rect, (0, len(groups)), (0, top * 1.15), "", "RMS %MVIC per repetition",
                        x_ticks=[i + 0.5 for i in range(len(groups))], x_tick_labels=[g[0] for g in groups])
    p = doc.p
    for i, (_, g, f) in enumerate(groups):
        for j, (s, color) in enumerate(((g, GMED_COLOR), (f, TFL_COLOR))):
            if not s or s["mean"] is None:
                continue
            x0, x1 = i + 0.15 + 0.35 * j, i + 0.15 + 0.35 * (j + 1)
            tl, br = at(x0, s["mean"]), at(x1, 0)
            c = QColor(color)
            c.setAlpha(110)
            p.fillRect(QRectF(tl, br), c)
            xm = (x0 + x1) / 2
            if s["sd"] is not None:
                p.setPen(QPen(QColor("black"), 2))
                p.drawLine(at(xm, s["mean"] - s["sd"]), at(xm, s["mean"] + s["sd"]))
            p.setPen(Qt.NoPen)
            p.setBrush(color)
            vals = [v for v in s["per_rep"] if v is not None]
            for k, v in enumerate(vals):
                jitter = (k - (len(vals) - 1) / 2) * 0.025
                p.drawEllipse(at(xm + jitter, v), 4, 4)
            p.setBrush(Qt.NoBrush)
    doc.legend(rect.right() + 20, rect.top() + 10, [("GMed", GMED_COLOR)])
    doc.legend(rect.right() + 20, rect.top() + 36, [("TFL", TFL_COLOR)])
    doc.font(7.5)
    p.setPen(GREY)
    p.drawText(QRectF(rect.right() + 20, rect.top() + 66, doc.width - MARGIN - rect.right() - 20, 200),
               Qt.TextWordWrap, "Bars: mean over repetitions. Whiskers: ± 1 SD. Dots: single repetitions.")
    doc.y = rect.bottom() + 10


def _trial_pages(doc: _Doc, r: dict, session) -> None:
    """Per exercise trial: %MVIC envelopes with the detected repetitions; per hold: MDF over time."""
    from app.analysis.amplitude import band_passed, centred_rms
    from app.analysis.config import AnalysisConfig

    cfg_d = dict(r["config"])
    cfg = AnalysisConfig(**{**cfg_d, "band_hz": tuple(cfg_d["band_hz"])})
    doc.new_page()
    doc.heading("Trials in detail")
    for t in r["session"]["trials"]:
        if t["type"] == "exercise":
            side = t["side"]
            st = r["sides"][side]["trials"][t["trial_id"]]
            doc.need(330)
            doc.text(f"{t['trial_id']}: {t['movement'].replace('_', ' ')}, {side} side — {st['n_reps']} repetitions "
                     f"(found from {_source_label(st['rep_source'])})", 10, True)
            traces = []
            for muscle, color in (("gluteus_medius", GMED_COLOR), ("tfl", TFL_COLOR)):
                ch = session.emg(muscle, side)
                ref = (r["muscles"].get(f"{muscle}_{side}") or {}).get("mvic")
                if ch is None or not ref:
                    continue
                i0, i1 = ch.stream.index(t["start_s"]), ch.stream.index(t["stop_s"])
                env = centred_rms(band_passed(ch, cfg), ch.rate_hz, cfg.amplitude_window_s)[i0:i1] / ref["value"] * 100
                step = max(1, env.size // 1500)
                traces.append((np.arange(i0, i1, step) / ch.rate_hz, env[::step], color))
            if not traces:
                continue
            top = max(float(np.nanmax(y)) for _, y, _ in traces) * 1.1 or 1.0
            rect = QRectF(MARGIN, doc.y, doc.width - 2 * MARGIN, 260)
            at, plot = doc.axes(rect, (t["start_s"], t["stop_s"]), (0, top), "time in session (s)", "%MVIC")
            shade = QColor(0, 0, 0, 22)
            for k, rep in enumerate(st["reps"]):
                tl, br = at(rep["start_s"], top), at(rep["stop_s"], 0)
                doc.p.fillRect(QRectF(tl, br), shade)
                doc.font(7)
                doc.p.setPen(GREY)
                doc.p.drawText(QPointF(tl.x() + 3, tl.y() + 14), str(k + 1))
            for x, y, color in traces:
                doc.p.setPen(QPen(color, 2))
                pts = [at(a, b) for a, b in zip(x, y) if math.isfinite(b)]
                doc.p.drawPolyline(pts)
            doc.y = rect.bottom() + 2
            doc.legend(MARGIN + 70, doc.y, [("GMed", GMED_COLOR), ("TFL", TFL_COLOR), ("repetition", QColor(200, 200, 200))])
            doc.y += 30
        elif t["type"] == "hold":
            side = t["side"]
            doc.need(330)
            doc.text(f"{t['trial_id']}: sustained hold, {side} side — median frequency (MDF) over time", 10, True)
            series = []
            for muscle, color in (("gluteus_medius", GMED_COLOR), ("tfl", TFL_COLOR)):
                f = _hold(r, muscle, side)
                if f.get("mdf_hz"):
                    series.append((muscle, f, color))
            if not series:
                reasons = {"; ".join(_hold(r, m, side).get("withheld") or []) for m in ("gluteus_medius", "tfl")}
                doc.text("Spectral indices withheld: " + " / ".join(x for x in reasons if x), 9, color=NOTICE)
                continue
            xs = [x for _, f, _ in series for x in f["time_s"]]
            ys = [y for _, f, _ in series for y in f["mdf_hz"]]
            rect = QRectF(MARGIN, doc.y, doc.width - 2 * MARGIN, 260)
            at, _ = doc.axes(rect, (min(xs), max(xs)), (min(ys) * 0.9, max(ys) * 1.1), "time in session (s)", "MDF (Hz)")
            for muscle, f, color in series:
                doc.p.setPen(Qt.NoPen)
                doc.p.setBrush(color)
                for x, y in zip(f["time_s"], f["mdf_hz"]):
                    doc.p.drawEllipse(at(x, y), 3, 3)
                doc.p.setBrush(Qt.NoBrush)
                # regression line from the reported slope, anchored at the mean point
                xm, ym = float(np.mean(f["time_s"])), float(np.mean(f["mdf_hz"]))
                b = f["mdf_slope_hz_per_s"]
                doc.p.setPen(QPen(color, 2.5))
                doc.p.drawLine(at(f["time_s"][0], ym + b * (f["time_s"][0] - xm)),
                               at(f["time_s"][-1], ym + b * (f["time_s"][-1] - xm)))
            doc.y = rect.bottom() + 2
            doc.legend(MARGIN + 70, doc.y, [(f"{'GMed' if m == 'gluteus_medius' else 'TFL'}: "
                                             f"{f['mdf_slope_pct_per_s']:.3f} %/s (r = {f['mdf_r']:.2f})", c)
                                            for m, f, c in series])
            doc.y += 30

    doc.heading("Signal quality per channel and trial")
    rows = []
    for key, m in r["muscles"].items():
        for tid, t in m["trials"].items():
            q = t.get("quality") or {}
            rest = t.get("type") == "rest"
            rows.append([_muscle_label(key), tid,
                         fmt(q.get("noise_floor_uv_rms"), 1), fmt(q.get("snr_db"), 0),
                         fmt(None if q.get("mains_ratio") is None else 100 * q["mains_ratio"], 1),
                         fmt(q.get("saturation_pct"), 2), fmt(q.get("packet_loss_pct"), 2),
                         "(rest)" if rest else "; ".join(q.get("spectral_withheld") or []) or "shown"])
    doc.table(["channel", "trial", "noise floor µV RMS (rest)", "SNR dB", "mains % of power", "clipped %",
               "lost %", "spectral indices"], rows, [0.15, 0.13, 0.12, 0.08, 0.1, 0.09, 0.08, 0.25], size=7.5)
    doc.heading("MVIC references")
    rows = []
    for key, m in r["muscles"].items():
        ref = m.get("mvic") or {}
        unit = {"uV": "µV"}.get(ref.get("unit"), ref.get("unit", ""))
        rows.append([_muscle_label(key), fmt(ref.get("value"), 1) + f" {unit}", str(ref.get("method", "-")),
                     str(ref.get("trial_id", "-")), str(ref.get("date", "-")), fmt(ref.get("effort_cv_pct"), 1)])
    doc.table(["muscle and side", "peak moving RMS", "method", "trial", "measured on", "effort-to-effort CV %"], rows,
              [0.24, 0.17, 0.15, 0.14, 0.14, 0.16], size=8)


def _trend_pages(doc: _Doc, code: str, trend: dict, affected: str | None) -> None:
    doc.new_page()
    doc.heading(f"Change over sessions — patient {code}")
    doc.text("Each point is a session's value: for per-repetition measures the mean with ± 1 SD of its "
             "repetitions, for symmetry indices and fatigue slopes the single value of the session. The grey band is the smallest real "
             "difference (SRD = 1.96·√2·SEM, SEM from within-session variability and the MVIC references' "
             "repeatability) around the first session: a later point outside the band is a change larger than "
             "measurement noise; inside, the change cannot be told apart from noise.", 8.5, color=GREY)
    for note in trend["comparability"]:
        doc.text("• " + note, 8, color=NOTICE, indent=10, gap=2)
    dates = [s["date"] for s in trend["sessions"]]
    for name, title in _trend_series(trend["series"], affected):
        ser = trend["series"][name]
        pts = [p for p in ser["points"] if p["mean"] is not None]
        if len(pts) < 2:
            continue
        doc.need(250)
        unit = _UNITS.get(ser["unit"], ser["unit"])
        doc.text(f"{title}   (SRD {fmt(ser['srd'], 3)} {unit})", 9.5, True, gap=2)
        xi = {d: i for i, d in enumerate(dates)}
        lo = [p["mean"] - (p.get("sd") or 0) for p in pts] + [pts[0]["mean"] - (ser["srd"] or 0)]
        hi = [p["mean"] + (p.get("sd") or 0) for p in pts] + [pts[0]["mean"] + (ser["srd"] or 0)]
        pad = (max(hi) - min(lo)) * 0.1 or 1.0
        rect = QRectF(MARGIN, doc.y, doc.width - 2 * MARGIN, 210)
        at, plot = doc.axes(rect, (-0.5, len(dates) - 0.5), (min(lo) - pad, max(hi) + pad), "session", unit,
                            x_ticks=list(range(len(dates))), x_tick_labels=dates)
        if ser["srd"] is not None:
            b0, b1 = at(-0.5, pts[0]["mean"] + ser["srd"]), at(len(dates) - 0.5, pts[0]["mean"] - ser["srd"])
            doc.p.fillRect(QRectF(b0, b1), QColor(0, 0, 0, 25))
        doc.p.setPen(QPen(GMED_COLOR, 2))
        doc.p.drawPolyline([at(xi[p["date"]], p["mean"]) for p in pts])
        for p in pts:
            x = xi[p["date"]]
            if p.get("sd") is not None:
                doc.p.setPen(QPen(QColor("black"), 1.5))
                doc.p.drawLine(at(x, p["mean"] - p["sd"]), at(x, p["mean"] + p["sd"]))
            beyond = p.get("change_from_first_beyond_srd")
            doc.p.setPen(Qt.NoPen)
            doc.p.setBrush(NOTICE if beyond else GMED_COLOR)
            doc.p.drawEllipse(at(x, p["mean"]), 5, 5)
            doc.p.setBrush(Qt.NoBrush)
        doc.y = rect.bottom() + 4
    doc.text("Red points: change from the first session larger than the SRD.", 8, color=GREY)


def write_report(result: dict, session, pdf_path: Path, trends: dict | None = None) -> None:
    """Draw the report of one analysed session (``result`` from `app.analysis.session.analyze`, ``session``
    the loaded `SessionData` for the traces) into ``pdf_path``; ``trends`` from `patient_trends` adds the
    change-over-sessions pages."""
    s = result["session"]
    doc = _Doc(Path(pdf_path), f"Medius report {s['patient_code']} {s['date']}")
    doc.footer_text = f"Medius · patient {s['patient_code']} · session {s['date']} · measurements, not a diagnosis"
    try:
        _summary_page(doc, result)
        _trial_pages(doc, result, session)
        code = s["patient_code"]
        if trends and code in trends and len(trends[code]["sessions"]) > 1:
            _trend_pages(doc, code, trends[code], s["affected_side"])
    finally:
        doc.close()
