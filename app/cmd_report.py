"""``medius report SESSION --pdf PATH [--history SESSION...]``: the clinician's PDF report of a session."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, help="the session to report (.medius)")
    parser.add_argument("--pdf", type=Path, required=True, metavar="PATH", help="where to write the PDF")
    parser.add_argument("--history", type=Path, nargs="*", default=[], metavar="SESSION",
                        help="earlier sessions of the same patient (files or folders) for the trend pages")
    parser.add_argument("--mvic-window-s", type=float, default=0.5, help="moving-RMS window of the MVIC peak (s)")
    parser.add_argument("--mains-hz", type=float, choices=(50.0, 60.0), default=None, help="notch for amplitude")
    parser.add_argument("--mvic-from", type=Path, metavar="SESSION",
                        help="reuse this earlier session's MVIC references where the session has no MVIC trial")


def run(args: argparse.Namespace) -> int:
    from app.analysis.amplitude import MvicReference
    from app.analysis.config import AnalysisConfig
    from app.analysis.data import load_session
    from app.analysis.session import analyze
    from app.analysis.trends import patient_trends
    from app.cmd_analyze import analyze_path, find_sessions
    from sensors.recording import RecordingError

    if not args.session.exists():
        print(f"medius report: {args.session}: no such session file", file=sys.stderr)
        return 2
    cfg = AnalysisConfig(amplitude_window_s=args.mvic_window_s, mains_hz=args.mains_hz)
    try:
        prior = None
        if args.mvic_from:
            earlier = analyze_path(str(args.mvic_from), cfg.to_dict(), None)
            prior = {k: MvicReference.from_dict(k, m["mvic"]) for k, m in earlier["muscles"].items()
                     if m["mvic"] and m["mvic"]["method"] == "mvic"}
        session = load_session(args.session)
        result = analyze(session, cfg, prior)
        history = [p for p in find_sessions(args.history) if p.resolve() != args.session.resolve()]
        others = [analyze_path(str(p), cfg.to_dict(), None) for p in history]
    except (ValueError, OSError, RecordingError) as exc:
        # a session that cannot be read or analysed is bad input (ProtocolError and AnalysisError are ValueErrors)
        print(f"medius report: {exc}", file=sys.stderr)
        return 2
    code = result["session"]["patient_code"]
    same = [o for o in others if o["session"]["patient_code"] == code]
    if len(same) < len(others):
        print(f"medius report: {len(others) - len(same)} history session(s) belong to another patient; left out",
              file=sys.stderr)
    trends = patient_trends([result, *same]) if same else None
    # a headless command: render without a display unless the caller chose a platform
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from app.report import write_report

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (fonts need an application)
    try:
        write_report(result, session, args.pdf, trends)
    except OSError as exc:
        print(f"medius report: {exc}", file=sys.stderr)
        return 1
    print(f"report written to {args.pdf}")
    return 0
