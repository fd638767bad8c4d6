"""``medius analyze SESSION... [--json PATH] [--csv DIR]``: the clinical measures of one or many sessions.

Folders are searched for ``*.medius`` files. Sessions are analysed in parallel on all cores; each session's
numbers are exactly what analysing it alone gives (no state passes between sessions, except an MVIC reference
named explicitly with ``--mvic-from``). With several sessions of a patient, the trends over them are added.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sessions", nargs="+", type=Path, help="session files (.medius) or folders of them")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results as JSON ('-' for stdout)")
    parser.add_argument("--csv", type=Path, metavar="DIR", help="write measures.csv and reps.csv into DIR")
    parser.add_argument("--mvic-window-s", type=float, default=0.5, help="moving-RMS window of the MVIC peak and "
                        "of %%MVIC (default 0.5 s)")
    parser.add_argument("--mains-hz", type=float, choices=(50.0, 60.0), default=None,
                        help="notch mains before amplitude measures (spectra are never notched)")
    parser.add_argument("--mvic-from", type=Path, metavar="SESSION",
                        help="reuse this earlier session's MVIC references where a session has no MVIC trial")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--store", action="store_true",
                        help=f"also store each result in its session file (analysis run named {RESULT_NAME!r})")


#: name of the stored analysis run in a session file (sensors.recording.store_analysis_result)
RESULT_NAME = "clinical_analysis"


def find_sessions(paths: list[Path]) -> list[Path]:
    """Expand folders to their ``*.medius`` files (sorted); files are kept as given."""
    out = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.rglob("*.medius")))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such session file or folder")
    return out


def analyze_path(path: str, config: dict, prior: dict | None) -> dict:
    """Worker: load and analyse one session (top-level so process pools can pickle it)."""
    from app.analysis.amplitude import MvicReference
    from app.analysis.config import AnalysisConfig
    from app.analysis.data import load_session
    from app.analysis.session import analyze

    cfg = AnalysisConfig(**{**config, "band_hz": tuple(config["band_hz"])})
    refs = {k: MvicReference.from_dict(k, d) for k, d in (prior or {}).items()}
    return analyze(load_session(path), cfg, refs or None)


def _progress(done: int, total: int, name: str) -> None:
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\ranalyze [{'#' * filled}{'-' * (width - filled)}] {done}/{total} {name[-40:]:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    import json
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from app.analysis.config import AnalysisConfig
    from app.analysis.trends import patient_trends

    try:
        paths = find_sessions(args.sessions)
    except FileNotFoundError as exc:
        print(f"medius analyze: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("medius analyze: no .medius sessions found", file=sys.stderr)
        return 2
    cfg = AnalysisConfig(amplitude_window_s=args.mvic_window_s, mains_hz=args.mains_hz).to_dict()
    prior = None
    if args.mvic_from:
        from sensors.recording import RecordingError

        try:
            prior_result = analyze_path(str(args.mvic_from), cfg, None)
        except (ValueError, OSError, RecordingError) as exc:
            print(f"medius analyze: --mvic-from: {exc}", file=sys.stderr)
            return 2
        prior = {k: m["mvic"] for k, m in prior_result["muscles"].items() if m["mvic"] and m["mvic"]["method"] == "mvic"}

    results: dict[str, dict] = {}
    failed = 0

    def collect(i: int, name: str, get) -> None:
        nonlocal failed
        try:
            results[name] = get()
        except Exception as exc:  # one bad file must not lose the others' results
            failed += 1
            results[name] = {"source": name, "error": f"{type(exc).__name__}: {exc}"}
            sys.stderr.write(f"\nmedius analyze: {name}: {type(exc).__name__}: {exc}\n")
        _progress(i, len(paths), Path(name).name)

    jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(paths)))
    if jobs == 1:
        for i, p in enumerate(paths, 1):
            collect(i, str(p), lambda p=p: analyze_path(str(p), cfg, prior))
    else:
        # spawn, not fork: the parent may run numba/Qt threads, and a forked child can inherit a held lock
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(analyze_path, str(p), cfg, prior): str(p) for p in paths}
            for i, fut in enumerate(as_completed(futures), 1):
                collect(i, futures[fut], fut.result)
    ordered = [results[str(p)] for p in paths]
    good = [r for r in ordered if "error" not in r]
    out = {"sessions": ordered, "trends": patient_trends(good) if len(good) > 1 else {}}
    if args.json:
        text = json.dumps(out, indent=1, allow_nan=False)
        if str(args.json) == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                args.json.write_text(text)
            except OSError as exc:
                print(f"medius analyze: {args.json}: cannot write the JSON: {exc.strerror or exc}", file=sys.stderr)
                return 1
    if args.store:
        from sensors.recording import store_analysis_result

        for r in good:
            store_analysis_result(r["session"]["source"], RESULT_NAME, r["config"], r)
    if args.csv:
        from app.analysis.tables import write_csv

        try:
            write_csv(good, args.csv)
        except OSError as exc:
            print(f"medius analyze: {args.csv}: cannot write the CSV tables: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if not args.json:
        from app.analysis.tables import text_summary

        for r in good:
            print(text_summary(r))
    return 1 if failed else 0
