"""The ``ftmoe`` command. Each capability adds its subcommands through ``register``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ftmoe import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftmoe",
        description="Predict Kubernetes node faults with FT-MoE and act on them safely.",
    )
    parser.add_argument("--version", action="version", version=f"ftmoe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Imported here so that `ftmoe --help` stays fast and a broken optional part
    # cannot stop the others from loading.
    from ftmoe.cluster import cli as cluster_cli
    from ftmoe.operator import cli as operator_cli
    from ftmoe.predictor import cli as predictor_cli
    from ftmoe.simulator import cli as simulator_cli

    cluster_cli.register(commands)
    simulator_cli.register(commands)
    predictor_cli.register(commands)
    operator_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
