"""``medius export SESSION --csv DIR [--edf FILE] [--bdf FILE]``: session CSV and EDF+/BDF+ exports."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session file (.medius)")
    parser.add_argument("--csv", metavar="DIR", help="write the session CSV export into DIR")
    parser.add_argument("--edf", metavar="FILE", help="write EDF+ (16-bit) with annotations")
    parser.add_argument("--bdf", metavar="FILE", help="write BDF+ (24-bit) with annotations")
    parser.add_argument("--include-identifying", action="store_true",
                        help="also export free-text notes, file names and any other metadata stored with the session "
                        "(default: only non-identifying keys: patient code, affected side, dates, devices, placement, "
                        "filters)")


class _Progress:
    """One updating line on stderr per output file."""

    def __init__(self):
        self.last = None

    def __call__(self, name: str, fraction: float) -> None:
        pct = int(fraction * 100)
        if (name, pct) != self.last:
            print(f"\rexport: {name} {pct:3d}%", end="" if pct < 100 else "\n", file=sys.stderr, flush=True)
            self.last = (name, pct)


def run(args: argparse.Namespace) -> int:
    if not (args.csv or args.edf or args.bdf):
        print("medius export: nothing to do; give --csv DIR, --edf FILE and/or --bdf FILE", file=sys.stderr)
        return 2
    from app.session_export import export_session_csv, session_analysis
    from sensors.export.edf import ExportError, write_edf
    from sensors.recording import RecordingError, SessionReader

    progress = _Progress()
    try:
        if args.csv:
            analysis = session_analysis(args.session)
            if analysis.result is None:
                print(f"medius export: repetitions.csv and trials.csv stay empty: {analysis.note}", file=sys.stderr)
            for path in export_session_csv(args.session, args.csv, args.include_identifying, progress, analysis):
                print(path)
        for target, bdf in ((args.edf, False), (args.bdf, True)):
            if target:
                with SessionReader(args.session) as reader:
                    name = target.rsplit("/", 1)[-1]
                    write_edf(reader, target, bdf=bdf, include_identifying=args.include_identifying,
                              progress=lambda x, name=name: progress(name, x))
                print(target)
    except (RecordingError, ExportError, OSError) as exc:
        print(f"\nmedius export: {exc}", file=sys.stderr)
        return 1
    return 0
