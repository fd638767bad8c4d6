"""``medius`` / ``medius run``: start Medius on a source (the simulator by default)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until closed)")


def run(args: argparse.Namespace) -> int:
    print("Medius: the live pipeline is not wired yet (see issues 2 and 3).")
    return 0
