"""``medius import FILE --map CH=MUSCLE:SIDE ... [--rate HZ] [--patient CODE] [--affected-side SIDE] --out SESSION``:
another system's recording -> session."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="EDF/BDF, CSV/TSV, UCI lower-limb .txt, Delsys CSV, OpenSignals .h5, XDF, WFDB .hea")
    parser.add_argument(
        "--map", dest="channel_map", metavar="CH=MUSCLE:SIDE", nargs="+", action="extend", default=[],
        help="place a channel: CH is its label or number as the file names it (STREAM/CH if ambiguous); "
        "MUSCLE is gluteus_medius, tfl or gluteus_maximus; SIDE is left or right. Without --map, lists the channels.",
    )
    parser.add_argument("--rate", dest="rate_hz", type=float, default=None, metavar="HZ",
                        help="sampling rate for files that do not state one (CSV/TSV without a time column; "
                        "replaces the UCI dataset's documented 1000 Hz)")
    parser.add_argument("--out", metavar="SESSION", help="session file to create (.medius); needed with --map")
    parser.add_argument("--patient", metavar="CODE", help="pseudonymous patient code (never a name); default "
                        "IMPORT-<first 8 hex digits of the file's SHA-256>")
    parser.add_argument("--affected-side", choices=("left", "right"), default=None,
                        help="the patient's affected side, for the side-to-side comparison")


def run(args: argparse.Namespace) -> int:
    from sensors.importers import ImportFormatError, import_file, parse_channel_map, read_any
    from sensors.recording import RecordingError, SessionReader

    try:
        if not args.channel_map:
            rec = read_any(args.file, args.rate_hz)
            print(f"{args.file}: {rec.format}; give --map CH=MUSCLE:SIDE for the channels to analyse. Channels:")
            for line in rec.channel_names():
                print(f"  {line}")
            return 2
        if not args.out:
            print("medius import: error: --out SESSION is needed to import", file=sys.stderr)
            return 2
        out = import_file(args.file, parse_channel_map(args.channel_map), args.out, rate_hz=args.rate_hz,
                          patient_code=args.patient, affected_side=args.affected_side)
    except (ImportFormatError, ValueError, OSError, RecordingError) as e:
        print(f"medius import: error: {e}", file=sys.stderr)
        return 1
    with SessionReader(out) as r:
        if args.patient is None:
            print(f"medius import: no --patient given; the session's pseudonymous patient code is "
                  f"{r.meta['patient_code']} (from the file's SHA-256)", file=sys.stderr)
        for s in r.streams:
            placed = [f"{c.label}={c.muscle}:{c.side}" for c in s.channels if c.muscle]
            print(f"  {s.stream_id}: {s.n_channels} ch at {s.rate_hz:g} Hz, {r.n_samples(s.stream_id)} samples"
                  + (f"; {', '.join(placed)}" if placed else ""))
        for note in r.meta["imported_from"]["notes"]:
            print(f"  note: {note}")
    print(f"wrote {out}")
    return 0
