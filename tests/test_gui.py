"""The live window, offscreen: real Qt widgets over a real LiveSession fed by the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")  # noqa: the test extra installs it; without it there is no Qt test to run

from app.gui.main_window import MainWindow, trial_title  # noqa: E402
from app.live import LiveSession  # noqa: E402
from sensors.sim import SimConfig, Simulator, Trial  # noqa: E402
from test_live import FakeSensors, collect  # noqa: E402

GMED, TFL = "gluteus_medius", "tfl"


@pytest.fixture(scope="module")
def items():
    trials = [Trial.rest(1.0), Trial.mvic(GMED, "left", 2.0), Trial.mvic(TFL, "left", 2.0),
              Trial.mvic(GMED, "right", 2.0), Trial.mvic(TFL, "right", 2.0),
              Trial.exercise("clamshell", "left", 1), Trial.exercise("clamshell", "right", 1)]
    return collect(Simulator(SimConfig(seed=2, affected_side="right", gmed_deficit=0.5), trials))


def test_window_shows_every_channel_the_bars_and_the_finished_trials(qtbot, items):
    session = LiveSession(FakeSensors(items), affected_side="right")
    window = MainWindow(session, "test")
    qtbot.addWidget(window)
    window.timer.stop()  # drive ticks by hand
    window.tick()
    emg_plots, filt, env, _ = window._curves["emg"]
    assert len(emg_plots) == 4 and len(env) == 4  # GMed/TFL x left/right
    # the curve holds exactly the session's display window
    y = env[0].yData  # the data given, before view clipping and downsampling
    np.testing.assert_array_equal(y, session.streams["emg"].envelope.view()[:, 0])
    # same muscle, both sides: one y scale, so the weaker side looks weaker
    muscles = [(c.muscle, c.side) for c in session.streams["emg"].info.channels]
    left, right = emg_plots[muscles.index((GMED, "left"))], emg_plots[muscles.index((GMED, "right"))]
    assert left.getViewBox().viewRange()[1] == right.getViewBox().viewRange()[1]
    # the kinematics plot shows joint angles only (one unit), not angles mixed with g and deg/s
    imu_plots, imu_curves, _, _ = window._curves["imu"]
    info = session.streams["imu"].info
    assert len(imu_plots) == 1 and {info.channels[c].unit for c, _ in imu_curves} == {"deg"}
    assert window.table.rowCount() == 2
    assert [window.table.item(r, 0).text() for r in range(2)] == ["clamshell", "clamshell"]
    assert "affected right vs unaffected left" in window.symmetry.text()
    assert "GMed SI -" in window.symmetry.text()  # the affected side activates less: negative SI
    pct = session.percent_mvic()
    assert window.sides["left"].gmed.value == pytest.approx(pct[(GMED, "left")])
    assert "0.00 % lost" in window.quality_label.text()
    latest = session.streams["emg"].fatigue_mdf_hz[-1][1]
    assert f"GMed left {latest[0]:.0f} Hz" in window.quality_label.text()  # the live tracker's latest MDF


def test_trial_titles_read_as_instructions():
    assert trial_title({"kind": "mvic", "muscle": GMED, "side": "left"}).startswith("MVIC: GMed left")
    assert trial_title({"kind": "exercise", "movement": "single_leg_bridge", "side": "right"}) == \
        "Exercise: single leg bridge, right side"
    assert trial_title(None) == "Between trials"


def _medius(*args, timeout=180):
    exe = Path(sys.executable).with_name("medius")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env)


def test_app_starts_streams_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "live.png"
    result = _medius("--seconds", "4", "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000


def test_headless_run_prints_live_numbers():
    result = _medius("--headless", "--seconds", "3")
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("[")]
    assert len(lines) >= 2 and "lost 0" in lines[-1]


def test_headless_run_over_the_virtual_ble_board():
    result = _medius("--headless", "--seconds", "4", "--source", "virtual-ble")
    assert result.returncode == 0, result.stderr
    last = [ln for ln in result.stdout.splitlines() if ln.startswith("[")][-1]
    received = int(last.split(" samples")[0].rsplit(" ", 1)[1])
    assert received > 2000 and "µV RMS" in last  # EMG flowed through bleak + Bumble; no MVIC over this path


def test_review_tab_shows_the_report_of_the_demo_session(qtbot):
    from app.gui.review import ReviewPanel

    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo.medius"
    panel = ReviewPanel(demo.parent)
    qtbot.addWidget(panel)
    names = [panel.sessions.item(r).text() for r in range(panel.sessions.count())]
    assert "demo.medius" in names
    panel.select(demo)
    qtbot.waitUntil(lambda: panel._job is None, timeout=300_000)
    assert panel.current == demo, panel.status.text()
    assert panel.document.pageCount() >= 2 and panel.save_pdf.isEnabled()
    panel.shutdown()


def test_review_tab_says_why_a_broken_session_has_no_report(qtbot, tmp_path):
    from app.gui.review import ReviewPanel

    bad = tmp_path / "broken.medius"
    bad.write_text("not a session")
    panel = ReviewPanel(tmp_path)
    qtbot.addWidget(panel)
    panel.select(bad)
    qtbot.waitUntil(lambda: panel._job is None, timeout=120_000)
    assert panel.current is None and "no report" in panel.status.text()
    assert "not a readable Medius session" in panel.status.text()
    panel.shutdown()


def test_record_then_replay_through_the_same_pipeline(tmp_path):
    from sensors.recording import SessionReader

    path = tmp_path / "live.medius"
    result = _medius("--headless", "--seconds", "3", "--record", str(path), "--patient", "P-042")
    assert result.returncode == 0, result.stderr
    with SessionReader(path) as reader:
        assert reader.meta["patient_code"] == "P-042"
        assert reader.n_samples("emg") >= 2000  # at least a second of 2 kHz EMG reached the file
    replay = _medius("--headless", "--seconds", "3", "--source", str(path), "--speed", "4")
    assert replay.returncode == 0, replay.stderr
    last = [ln for ln in replay.stdout.splitlines() if ln.startswith("[")][-1]
    assert last.endswith("lost 0  (source finished)")
    with SessionReader(path) as reader:  # every recorded sample came back through the pipeline
        assert f"| {reader.n_samples('emg') + reader.n_samples('imu')} samples" in last


def test_a_broken_session_file_gives_one_clear_error(tmp_path):
    bad = tmp_path / "bad.medius"
    bad.write_text("garbage")
    result = _medius("--headless", "--source", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"medius: {bad}: not a readable Medius session: not an SQLite database (no SQLite header)"]


def test_trial_controls_mark_an_mvic_on_a_source_without_a_script(qtbot, items):
    from PySide6.QtCore import Qt

    from sensors.stream import Event, EventKind

    plain = [i for i in items if not (isinstance(i, Event) and i.kind is EventKind.TRIAL)]
    feed = FakeSensors([])
    session = LiveSession(feed)
    window = MainWindow(session, "test")
    qtbot.addWidget(window)
    window.timer.stop()
    controls = window.trial_controls
    window.tick()
    assert not controls.start.isEnabled()  # no EMG stream yet
    half = len(plain) // 2
    for item in plain[:half]:
        feed.q.put(item)
    window.tick()
    assert controls.start.isEnabled() and not controls.stop.isEnabled()
    controls.kind.setCurrentIndex(controls.kind.findData("mvic"))
    controls.side.setCurrentText("left")
    controls.muscle.setCurrentIndex(controls.muscle.findData(GMED))
    qtbot.mouseClick(controls.start, Qt.MouseButton.LeftButton)
    assert session.trial["kind"] == "mvic" and session.trial["muscle"] == GMED
    window.tick()
    assert window.trial_label.text().startswith("MVIC: GMed left")
    for item in plain[half:half + 200]:
        feed.q.put(item)
    window.tick()
    assert controls.stop.isEnabled()
    qtbot.mouseClick(controls.stop, Qt.MouseButton.LeftButton)
    assert session.trial is None and (GMED, "left") in session.mvic_ref


def test_trial_controls_are_off_for_a_scripted_source(qtbot, items):
    session = LiveSession(FakeSensors(items))
    window = MainWindow(session, "test")
    qtbot.addWidget(window)
    window.timer.stop()
    window.tick()
    assert not window.trial_controls.start.isEnabled() and "scripts its own trials" in window.trial_controls.note.text()
