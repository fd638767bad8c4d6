"""The ``medius`` command line.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int`` and is imported
only when used, so ``medius export`` never pays for Qt and ``medius`` (the app) never pays for pyedflib.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). The first entry is what a bare ``medius`` runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("app.cmd_run", "start Medius (the simulator is the default source)"),
    "import": ("app.cmd_import", "turn another system's recording (EDF, CSV, XDF, ...) into a session file"),
    "bench": ("app.cmd_bench", "benchmark a part of Medius against its baseline (e.g. `medius bench dsp`)"),
    "export": ("app.cmd_export", "export a session as CSV (samples, repetitions, trials) and/or EDF+/BDF+"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medius", description="Gluteus medius vs TFL sEMG measurement.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
