"""The live window: signals per muscle and side, %MVIC biofeedback, GMed:TFL ratio, signal quality."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QMainWindow, QPushButton, QScrollArea, QSplitter, QTableWidget, QTableWidgetItem,
                               QTabWidget, QToolBar, QVBoxLayout, QWidget)

from app.gui.widgets import GMED_COLOUR, TFL_COLOUR, PercentBar
from app.live import LiveSession, LiveStream, feedback_summary, live_symmetry_index, side_pairs

MUSCLE_TITLES = {"gluteus_medius": "GMed", "tfl": "TFL", "gluteus_maximus": "GMax"}
TICK_MS = 33  # ~30 Hz redraw; the pump drains everything each tick whatever the rate


def channel_title(ch) -> str:
    if ch.muscle:
        return f"{MUSCLE_TITLES.get(ch.muscle, ch.muscle)} {ch.side or ''}".strip()
    return ch.label


def trial_title(trial: dict | None) -> str:
    if not trial:
        return "Between trials"
    kind = trial.get("kind")
    if kind == "mvic":
        return f"MVIC: {MUSCLE_TITLES.get(trial.get('muscle'), trial.get('muscle'))} {trial.get('side')} (push maximally)"
    if kind == "exercise":
        return f"Exercise: {str(trial.get('movement', '')).replace('_', ' ')}, {trial.get('side')} side"
    if kind == "hold":
        return f"Sustained hold, {trial.get('side')} side"
    return "Rest"


def _kinematic_channels(info) -> list[int]:
    """Columns of a non-EMG stream worth plotting together: joint angles if any, else one sensor kind (one unit)."""
    for kind in ("angle", "acc", "gyro", "quat"):
        cols = [c for c, ch in enumerate(info.channels) if ch.kind.value == kind]
        if cols:
            return cols
    return list(range(info.n_channels))


class TrialControls(QGroupBox):
    """Start and stop trials by hand, for sources that do not script them (a real sensor, the virtual board)."""

    def __init__(self, session: LiveSession, parent: QWidget | None = None) -> None:
        super().__init__("Guided session: mark the trial being done", parent)
        from sensors.sim.protocol import MOVEMENTS

        self.session = session
        self.kind = QComboBox()
        for label, kind in (("MVIC", "mvic"), ("Exercise", "exercise"), ("Sustained hold", "hold"), ("Rest", "rest")):
            self.kind.addItem(label, kind)
        self.side = QComboBox()
        self.side.addItems(["left", "right"])
        self.muscle = QComboBox()
        for muscle in ("gluteus_medius", "tfl", "gluteus_maximus"):
            self.muscle.addItem(MUSCLE_TITLES[muscle], muscle)
        self.movement = QComboBox()
        for name in MOVEMENTS:
            if name != "hold":
                self.movement.addItem(name.replace("_", " "), name)
        self.start = QPushButton("Start trial")
        self.stop = QPushButton("Stop trial")
        self.start.clicked.connect(self._start)
        self.stop.clicked.connect(self._stop)
        self.kind.currentIndexChanged.connect(self._fields)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555")
        self._error: str | None = None
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for w in (self.kind, self.side, self.muscle, self.movement):
            row1.addWidget(w)
        row2.addWidget(self.start)
        row2.addWidget(self.stop)
        lay = QVBoxLayout(self)
        lay.addLayout(row1)
        lay.addLayout(row2)
        lay.addWidget(self.note)
        self._fields()

    def _fields(self) -> None:
        kind = self.kind.currentData()
        self.muscle.setVisible(kind == "mvic")
        self.movement.setVisible(kind == "exercise")
        self.side.setVisible(kind != "rest")

    def _start(self) -> None:
        kind = self.kind.currentData()
        try:
            self.session.start_trial(kind, side=None if kind == "rest" else self.side.currentText(),
                                     muscle=self.muscle.currentData() if kind == "mvic" else None,
                                     movement=self.movement.currentData() if kind == "exercise" else None)
            self._error = None
        except ValueError as exc:
            self._error = str(exc)
        self.refresh()

    def _stop(self) -> None:
        self.session.stop_trial()
        self.refresh()

    def refresh(self) -> None:
        scripted = self.session.source_drives_trials
        ready = bool(self.session.emg_streams())
        for w in (self.kind, self.side, self.muscle, self.movement, self.start):
            w.setEnabled(ready and not scripted)
        self.stop.setEnabled(not scripted and self.session.trial is not None)
        if scripted:
            self.note.setText("This source scripts its own trials (simulator protocol or a recording).")
        elif not ready:
            self.note.setText("Waiting for an EMG stream.")
        else:
            self.note.setText(self._error or "MVIC trials set the %MVIC references; exercises and holds are "
                                             "analysed per side.")


class SidePanel(QGroupBox):
    """%MVIC of GMed and TFL on one side, and their ratio."""

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(f"{side.capitalize()} side", parent)
        self.gmed = PercentBar("GMed", GMED_COLOUR)
        self.tfl = PercentBar("TFL", TFL_COLOUR)
        self.ratio = QLabel("GMed:TFL ratio —")
        f = QFont(self.ratio.font())
        f.setPointSizeF(f.pointSizeF() * 1.3)
        self.ratio.setFont(f)
        lay = QVBoxLayout(self)
        for w in (self.gmed, self.tfl, self.ratio):
            lay.addWidget(w)

    def show_values(self, values: dict) -> None:
        self.gmed.set_value(values["gmed_pct"])
        self.tfl.set_value(values["tfl_pct"])
        r = values["ratio"]
        self.ratio.setText("GMed:TFL ratio —" if r is None else f"GMed:TFL ratio {r:.2f}  (of %MVIC)")


class MainWindow(QMainWindow):
    """Live view over a `LiveSession`; the caller owns the sensor thread and the source."""

    def __init__(self, session: LiveSession, source_name: str, on_close=None, recordings_dir=None,
                 review_session=None, recording_to=None) -> None:
        super().__init__()
        self.session = session
        self._on_close = on_close
        self.setWindowTitle(f"Medius — live ({source_name})")
        self.resize(1400, 860)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")

        tools = QToolBar("Session")
        tools.setMovable(False)
        self.addToolBar(tools)
        tools.addWidget(QLabel(f"  Source: {source_name}   "))
        self.mains = QComboBox()
        self.mains.addItems(["Mains notch: off", "Mains notch: 50 Hz", "Mains notch: 60 Hz"])
        self.mains.setEnabled(False)  # the chain is built when streams are declared; shown for the record
        self.mains.setCurrentIndex({None: 0, 50: 1, 60: 2}.get(session.mains_hz, 0))
        tools.addWidget(self.mains)
        self.pause_action = QAction("Pause display", self, checkable=True)
        tools.addAction(self.pause_action)
        self.rec_label = QLabel(f"   ● Recording to {recording_to}" if recording_to else "   Not recording")
        self.rec_label.setStyleSheet("color: #c00; font-weight: bold" if recording_to else "color: #555")
        tools.addWidget(self.rec_label)

        self.plots = pg.GraphicsLayoutWidget()
        self._curves: dict[str, tuple] = {}  # stream_id -> (plot items, filtered curves, envelope curves, x)
        self._y_groups: list = []  # (stream_id, [(column, plot)], [current half-range]) sharing one y scale

        right = QWidget()
        rl = QVBoxLayout(right)
        self.trial_label = QLabel("Waiting for the source…")
        tf = QFont(self.trial_label.font())
        tf.setPointSizeF(tf.pointSizeF() * 1.5)
        tf.setBold(True)
        self.trial_label.setFont(tf)
        self.trial_label.setWordWrap(True)
        rl.addWidget(self.trial_label)
        self.trial_controls = TrialControls(session)
        rl.addWidget(self.trial_controls)
        self.sides = {side: SidePanel(side) for side in ("left", "right")}
        for panel in self.sides.values():
            rl.addWidget(panel)
        done = QGroupBox("Finished exercises: peak %MVIC of the working side")
        dl = QVBoxLayout(done)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Exercise", "Side", "GMed", "TFL", "GMed:TFL"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(100)
        dl.addWidget(self.table)
        self.symmetry = QLabel("")
        self.symmetry.setWordWrap(True)
        self.symmetry.setTextFormat(Qt.TextFormat.RichText)
        dl.addWidget(self.symmetry)
        rl.addWidget(done)
        quality = QGroupBox("Signal and link")
        ql = QGridLayout(quality)
        self.quality_label = QLabel("")
        self.quality_label.setTextFormat(Qt.TextFormat.RichText)
        self.quality_label.setWordWrap(True)
        ql.addWidget(self.quality_label, 0, 0)
        rl.addWidget(quality)
        self.event_label = QLabel("")
        self.event_label.setWordWrap(True)
        rl.addWidget(self.event_label)
        rl.addStretch(1)
        note = QLabel("%MVIC = current 500 ms RMS / peak 500 ms RMS of the best MVIC trial. "
                      "Measurements, not a diagnosis.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555")
        rl.addWidget(note)

        split = QSplitter()
        split.addWidget(self.plots)
        scroll = QScrollArea()  # on a small screen the panel scrolls instead of squeezing its boxes together
        scroll.setWidget(right)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        split.addWidget(scroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 400])
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Live")
        self.review = None
        if recordings_dir is not None:
            from app.gui.review import ReviewPanel

            self.review = ReviewPanel(recordings_dir)
            self.tabs.addTab(self.review, "Session review")
            if review_session is not None:
                self.review.select(review_session)
        self.setCentralWidget(self.tabs)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # -- plots ---------------------------------------------------------------------------------------------
    def _new_plot(self, title: str, left: str):
        p = self.plots.addPlot(row=self.plots.ci.layout.rowCount(), col=0)
        p.setLabel("left", left)
        p.getAxis("left").setWidth(70)
        p.getAxis("left").enableAutoSIPrefix(False)
        p.setDownsampling(auto=True, mode="peak")
        p.setClipToView(True)
        p.setMouseEnabled(x=False, y=True)
        p.showGrid(x=True, y=True, alpha=0.15)
        p.setTitle(title, size="9pt")
        return p

    def _build_plots(self, s: LiveStream) -> None:
        n = s.display.capacity
        x = (np.arange(n) - (n - 1)) / s.info.rate_hz  # seconds before now
        items, filt, env = [], [], []
        if s.is_emg:
            for ch in s.info.channels:
                unit = ch.unit.replace("uV", "µV")
                p = self._new_plot(f"{channel_title(ch)}: filtered EMG (grey) and 100 ms RMS", f"{channel_title(ch)} ({unit})")
                colour = GMED_COLOUR if ch.muscle == "gluteus_medius" else TFL_COLOUR
                filt.append(p.plot(pen=pg.mkPen((165, 165, 165), width=1)))
                env.append(p.plot(pen=pg.mkPen(colour.darker(110), width=2)))
                items.append(p)
        else:
            shown = _kinematic_channels(s.info)
            unit = s.info.channels[shown[0]].unit
            p = self._new_plot(f"{s.info.stream_id} ({s.info.rate_hz:g} Hz)", unit)
            p.addLegend(offset=(-10, 5), labelTextSize="8pt")
            palette = [(40, 40, 40), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (23, 190, 207)]
            for k, c in enumerate(shown):
                filt.append((c, p.plot(pen=pg.mkPen(palette[k % len(palette)], width=1.5), name=s.info.channels[c].label)))
            items.append(p)
        if s.is_emg:  # the same muscle on both sides shares its y scale, so a weaker side looks weaker
            groups: dict = {}
            for c, (p, ch) in enumerate(zip(items, s.info.channels)):
                groups.setdefault(ch.muscle or ch.label, []).append((c, p))
            for group in groups.values():
                for _, p in group:
                    p.disableAutoRange(axis="y")
                self._y_groups.append((s.info.stream_id, group, [0.0]))
            filt = list(enumerate(filt))
        for p in items:
            p.setXRange(x[0], 0, padding=0)
            if self._curves:
                p.setXLink(next(iter(self._curves.values()))[0][0])
            elif p is not items[0]:
                p.setXLink(items[0])
        items[-1].setLabel("bottom", "time before now", units="s")
        self._curves[s.info.stream_id] = (items, filt, env, x)

    def _draw(self) -> None:
        for sid, s in self.session.streams.items():
            if sid not in self._curves:
                self._build_plots(s)
            _, filt, env, x = self._curves[sid]
            view = s.display.view()
            for c, curve in filt:
                curve.setData(x, view[:, c], connect="finite")
            if s.envelope is not None:
                ev = s.envelope.view()
                for c, curve in enumerate(env):
                    curve.setData(x, ev[:, c], connect="finite")
        self._shared_y_ranges()

    def _shared_y_ranges(self) -> None:
        """One symmetric y range per muscle across sides, changed only when the signal outgrows it or shrinks
        well inside it, so the scale does not twitch every frame."""
        for sid, group, current in self._y_groups:
            view = self.session.streams[sid].display.view()
            cols = [c for c, _ in group]
            block = np.abs(view[:, cols])
            if not np.isfinite(block).any():
                continue
            peak = float(np.nanmax(block))
            if peak > current[0] or peak < 0.5 * current[0]:
                current[0] = max(peak * 1.15, 1e-12)
                for _, p in group:
                    p.setYRange(-current[0], current[0], padding=0)

    # -- panels --------------------------------------------------------------------------------------------
    def _panels(self) -> None:
        sess = self.session
        self.trial_label.setText(trial_title(sess.trial) if not sess.ended else "Source finished")
        self.trial_controls.refresh()
        summary = feedback_summary(sess.percent_mvic())
        for side, panel in self.sides.items():
            panel.show_values(summary[side])
        self._finished_table()
        lines = []
        for s in sess.streams.values():
            rate = f"{s.info.rate_hz:g} Hz"
            loss = f"{s.loss_pct:.2f} % lost ({s.lost} samples)"
            flag = "" if s.info.spectral_ok or not s.is_emg else " — spectral indices off: " + s.info.note
            lines.append(f"<b>{s.info.stream_id}</b>: {rate}, {loss}{flag}")
            if s.fatigue_mdf_hz:  # the live fatigue tracker's latest 1 s window
                mdf = s.fatigue_mdf_hz[-1][1]
                lines.append("median frequency, last 1 s (meaningful during contraction): " + ", ".join(
                    f"{channel_title(ch)} {f:.0f} Hz" for ch, f in zip(s.info.channels, mdf) if np.isfinite(f)))
        lines.append(f"queue backlog {sess.stats.backlog}, last tick {sess.stats.tick_ms:.1f} ms")
        self.quality_label.setText("<br>".join(lines))
        recent = [e for e in sess.events[-3:] if e.kind.value in ("error", "disconnected", "reconnecting", "connected")]
        self.event_label.setText("\n".join(f"{e.kind.value}: {e.message}" for e in recent))

    def _finished_table(self) -> None:
        finished = self.session.finished
        if self.table.rowCount() != len(finished):
            fmt = lambda v: "—" if v is None else f"{v:.0f} %"  # noqa: E731
            self.table.setRowCount(len(finished))
            for r, t in enumerate(finished):
                cells = [t.movement.replace("_", " "), t.side, fmt(t.pct_mvic.get("gluteus_medius")),
                         fmt(t.pct_mvic.get("tfl")), "—" if t.ratio is None else f"{t.ratio:.2f}"]
                for c, text in enumerate(cells):
                    self.table.setItem(r, c, QTableWidgetItem(text))
            self.table.scrollToBottom()
        affected = self.session.affected_side
        lines = []
        for movement, sides in side_pairs(finished).items():
            if len(sides) < 2:
                continue
            a_side = affected or "left"
            u_side = "right" if a_side == "left" else "left"
            a = sides[a_side].pct_mvic.get("gluteus_medius")
            u = sides[u_side].pct_mvic.get("gluteus_medius")
            si = live_symmetry_index(a, u)
            if si is not None:
                lines.append(f"{movement.replace('_', ' ')}: GMed SI {si:+.0f} %")
        other = {"left": "right", "right": "left"}.get(affected)
        who = f"affected {affected} vs unaffected {other}" if affected else "left vs right"
        self.symmetry.setText(f"<b>GMed symmetry ({who}):</b> " + ("; ".join(lines) if lines else
                              "shown when an exercise is done on both sides")
                              + "<br><small>SI = (A − U) / mean(A, U). One trial each; the report gives spread "
                                "over repetitions.</small>")

    def tick(self) -> None:
        self.session.pump()
        recorder = self.session.recorder
        if recorder is not None and not recorder.recording and "stopped" not in self.rec_label.text():
            problems = [e.message for e in recorder.poll_events()]
            self.rec_label.setText("   ● Recording stopped: " + ("; ".join(problems) or "see log"))
        if not self.pause_action.isChecked():
            self._draw()
        self._panels()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        if self.review is not None:
            self.review.shutdown()
        if self._on_close is not None:
            self._on_close()
        super().closeEvent(event)
