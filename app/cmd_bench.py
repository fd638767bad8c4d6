"""``medius bench TARGET``: measure a part of Medius against its baseline, measured in the same run."""

from __future__ import annotations

import argparse
import importlib

# target -> (module with run(quick, json_path) -> int, one-line help). Add a line per benchmarked part.
TARGETS: dict[str, tuple[str, str]] = {
    "dsp": ("app.bench_dsp", "numeric core vs scipy and peer libraries (NeuroKit2, BioSPPy)"),
    "sensors": ("app.bench_sensors", "BLE decode throughput, simulator speed, notification-to-queue latency"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=sorted(TARGETS), help="what to benchmark: " + "; ".join(
        f"{name}: {help_text}" for name, (_, help_text) in TARGETS.items()))
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help='also write {row: {"ours", "baseline", "ratio", "unit"}} to PATH')


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(TARGETS[args.target][0])
    return int(module.run(quick=args.quick, json_path=args.json) or 0)
