"""``medius`` / ``medius run``: start Medius on a source (the simulator by default).

The window is the default; ``--headless`` prints the same live numbers once a second instead (for machines
without a display and for smoke tests). ``--seconds`` stops after that long; ``--screenshot`` saves the window.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="simulator", metavar="SOURCE",
                        help="simulator (default): the physiological simulator; virtual-ble: the simulator streaming "
                             "through a virtual Medius board over the whole BLE path (bleak + Bumble); or a .medius "
                             "session file to replay through the same pipeline")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed, 0.25 to 16 (with a session file)")
    parser.add_argument("--record", nargs="?", const="auto", default=None, metavar="PATH",
                        help="record the session (default file: RECORDINGS/<patient>-<date-time>.medius)")
    parser.add_argument("--patient", default="SIM-0001", help="pseudonymous patient code stored in recordings")
    parser.add_argument("--recordings", type=Path, default=None, metavar="DIR",
                        help="session folder (default: ./recordings if present, else ~/medius-recordings)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (same seed, same signals)")
    parser.add_argument("--mains", type=int, choices=[50, 60], default=None, help="mains notch frequency")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--headless", action="store_true", help="no window: print live numbers once a second")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="save a picture of the window just before stopping (with --seconds)")


def demo_simulator(seed: int):
    """The demo patient: right side affected (GMed under-activation, TFL compensation), mild fatigue, 50 Hz hum."""
    from sensors.sim import SimConfig, Simulator

    cfg = SimConfig(seed=seed, affected_side="right", gmed_deficit=0.35, tfl_compensation=0.3,
                    fatigue_mdf_pct_per_s=-0.15, fatigue_amp_pct_per_s=0.3, hum_uv=4.0, motion_uv=30.0)
    return Simulator(cfg)


def recordings_dir(args: argparse.Namespace) -> Path:
    if args.recordings is not None:
        return args.recordings
    here = Path.cwd() / "recordings"
    return here if here.is_dir() else Path.home() / "medius-recordings"


def make_source(args: argparse.Namespace):
    """Build the chosen source; returns ``(source, description, affected_side)``."""
    if args.source.endswith(".medius"):
        from sensors.recording import SessionReader
        from sensors.replay import ReplaySource

        with SessionReader(args.source) as reader:  # a broken file fails here, with its one clear error
            meta = reader.meta
        affected = (meta.get("patient") or {}).get("affected_side") or (meta.get("session") or {}).get("affected_side")
        return ReplaySource(args.source, speed=args.speed), f"replay of {Path(args.source).name}", affected
    if args.source not in ("simulator", "virtual-ble"):
        raise SystemExit(f"medius: unknown source {args.source!r} (simulator, virtual-ble or a .medius file)")
    sim = demo_simulator(args.seed)
    if args.source == "simulator":
        from sensors.sim import SimulatorSource

        return SimulatorSource(sim, speed=1.0), "simulator (demo patient, right side affected)", sim.config.affected_side
    from sensors.virtual.demo import VirtualBoardSource

    return VirtualBoardSource(sim), "simulator via a virtual Medius BLE board", sim.config.affected_side


def run(args: argparse.Namespace) -> int:
    from sensors.recording import RecordingError

    try:
        return _run(args)
    except (RecordingError, FileNotFoundError, ValueError) as exc:  # a bad file or option: one line, no traceback
        print(f"medius: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    recorder = None
    import dsp
    from app.live import LiveSession
    from sensors.thread import SensorThread

    dsp.warmup()  # compile/load the kernels now, so the first live tick never compiles
    sensors = SensorThread()
    try:
        source, description, affected_side = make_source(args)
        recorder, record_path = _recorder(args, source, affected_side)
        session = LiveSession(sensors, mains_hz=args.mains, affected_side=affected_side, recorder=recorder)
        sensors.start(source).result(timeout=30)
        if args.headless:
            return _run_headless(session, args.seconds)
        return _run_window(session, description, args, record_path)
    finally:
        sensors.close()
        if recorder is not None:
            recorder.close()
            for event in recorder.poll_events():
                print(f"medius: recording: {event.message}", file=sys.stderr)


def _recorder(args: argparse.Namespace, source, affected_side):
    """A Recorder for ``--record`` (the source's STREAMS event declares the streams), or ``(None, None)``."""
    if args.record is None:
        return None, None
    from sensors.recording import Recorder

    folder = recordings_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(args.record) if args.record != "auto" else \
        folder / f"{args.patient}-{datetime.now():%Y%m%d-%H%M%S}.medius"
    meta = {
        "patient_code": args.patient,
        "patient": {"code": args.patient, "affected_side": affected_side, "notes": ""},
        "date": f"{datetime.now():%Y-%m-%d}",
        "devices": [getattr(source, "name", "unknown")],
        "filters": {"band_hz": [20.0, 450.0], "mains_hz": args.mains, "rms_window_s": 0.1},
    }
    return Recorder(path, meta), path


def _run_headless(session, seconds: float | None) -> int:
    t_end = None if seconds is None else time.monotonic() + seconds
    next_print = time.monotonic() + 1.0
    try:
        while not session.ended and (t_end is None or time.monotonic() < t_end):
            time.sleep(0.033)
            session.pump()
            if time.monotonic() >= next_print:
                next_print += 1.0
                print(_status_line(session), flush=True)
    except KeyboardInterrupt:
        pass
    session.pump()
    print(_status_line(session) + ("  (source finished)" if session.ended else ""), flush=True)
    return 0


def _status_line(session) -> str:
    """One line of what the window shows: %MVIC (or µV RMS before any MVIC) per muscle and side, ratio, loss."""
    from app.live import feedback_summary

    pct = session.percent_mvic()
    parts = []
    if pct:
        for side, v in feedback_summary(pct).items():
            g = "—" if v["gmed_pct"] is None else f"{v['gmed_pct']:.0f}"
            t = "—" if v["tfl_pct"] is None else f"{v['tfl_pct']:.0f}"
            r = "—" if v["ratio"] is None else f"{v['ratio']:.2f}"
            parts.append(f"{side}: GMed {g} %MVIC, TFL {t} %MVIC, ratio {r}")
    else:
        for s in session.emg_streams():
            if s.latest_mvic_rms is not None:
                parts.append(", ".join(f"{c.label} {v:.3g} {c.unit.replace('uV', 'µV')} RMS"
                                       for c, v in zip(s.info.channels, s.latest_mvic_rms)))
    trial = (session.trial or {}).get("kind", "rest")
    received = sum(s.received for s in session.streams.values())
    lost = sum(s.lost for s in session.streams.values())
    return f"[{trial:>8}] " + " | ".join(parts) + f" | {received} samples, lost {lost}"


def _run_window(session, description: str, args: argparse.Namespace, record_path: Path | None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Medius")
    folder = recordings_dir(args)
    own = [p for p in folder.glob("*.medius") if p.name != "demo.medius"] if folder.is_dir() else []
    demo = folder / "demo.medius"
    # first run without recordings of one's own: the review tab opens the demo session
    window = MainWindow(session, description, recordings_dir=folder, recording_to=record_path,
                        review_session=demo if demo.exists() and not own else None)
    window.show()
    if args.seconds is not None:
        def finish() -> None:
            if args.screenshot:
                window.grab().save(args.screenshot)
            window.close()

        QTimer.singleShot(int(args.seconds * 1000), finish)
    return app.exec()
