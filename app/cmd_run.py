"""``medius`` / ``medius run``: start Medius on a source (the simulator by default).

The window is the default; ``--headless`` prints the same live numbers once a second instead (for machines
without a display and for smoke tests). ``--seconds`` stops after that long; ``--screenshot`` saves the window.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="simulator", choices=["simulator", "virtual-ble"],
                        help="simulator: the physiological simulator directly; virtual-ble: the simulator streaming "
                             "through a virtual Medius board over the whole BLE path (bleak + Bumble)")
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


def make_source(args: argparse.Namespace):
    """Build the chosen source; returns ``(source, description, affected_side)``."""
    sim = demo_simulator(args.seed)
    if args.source == "simulator":
        from sensors.sim import SimulatorSource

        return SimulatorSource(sim, speed=1.0), "simulator (demo patient, right side affected)", sim.config.affected_side
    from sensors.virtual.demo import VirtualBoardSource

    return VirtualBoardSource(sim), "simulator via a virtual Medius BLE board", sim.config.affected_side


def run(args: argparse.Namespace) -> int:
    import dsp
    from app.live import LiveSession
    from sensors.thread import SensorThread

    dsp.warmup()  # compile/load the kernels now, so the first live tick never compiles
    sensors = SensorThread()
    try:
        source, description, affected_side = make_source(args)
        session = LiveSession(sensors, mains_hz=args.mains, affected_side=affected_side)
        sensors.start(source).result(timeout=30)
        if args.headless:
            return _run_headless(session, args.seconds)
        return _run_window(session, description, args)
    finally:
        sensors.close()


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
                parts.append(", ".join(f"{c.label} {v:.0f} {c.unit.replace('uV', 'µV')} RMS"
                                       for c, v in zip(s.info.channels, s.latest_mvic_rms)))
    trial = (session.trial or {}).get("kind", "rest")
    received = sum(s.received for s in session.streams.values())
    lost = sum(s.lost for s in session.streams.values())
    return f"[{trial:>8}] " + " | ".join(parts) + f" | {received} samples, lost {lost}"


def _run_window(session, description: str, args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Medius")
    window = MainWindow(session, description)
    window.show()
    if args.seconds is not None:
        def finish() -> None:
            if args.screenshot:
                window.grab().save(args.screenshot)
            window.close()

        QTimer.singleShot(int(args.seconds * 1000), finish)
    return app.exec()
