"""The ``ftmoe`` command. Each capability adds its subcommands through ``register``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ftmoe import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftmoe", description="Predict Kubernetes node faults with FT-MoE and act on them safely.")
    parser.add_argument("--version", action="version", version=f"ftmoe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Imported here so that `ftmoe --help` stays fast and a broken optional part
    # cannot stop the others from loading.
    from ftmoe import checkpoint_cli
    from ftmoe.cluster import cli as cluster_cli
    from ftmoe.operator import cli as operator_cli
    from ftmoe.operator.api import cli as crds_cli
    from ftmoe.predictor import cli as predictor_cli
    from ftmoe.simulator import cli as simulator_cli

    cluster_cli.register(commands)
    simulator_cli.register(commands)
    predictor_cli.register(commands)
    operator_cli.register(commands)
    crds_cli.register(commands)
    checkpoint_cli.register(commands)
    for sub in subparsers(parser):
        if sub.formatter_class in (argparse.HelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
            sub.formatter_class = HelpFormatter
    return parser


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every `--help` shows each flag's default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        quiet = action.default is None or action.default is False or action.default == [] or action.default == argparse.SUPPRESS
        if quiet or "default" in text:
            return text  # nothing worth showing, or the text already says it
        return super()._get_help_string(action)


def subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every parser below it (``ftmoe cluster up``, ``ftmoe dataset card``, ...)."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += subparsers(child)
    return found


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``ftmoe [...] cluster [--name N] kubectl ARGS``: ARGS go to kubectl untouched.

    argparse would read kubectl's own flags (``-n demo``, ``--help``) as ours, so the
    words after ``kubectl`` are cut off before parsing."""
    if "cluster" in argv:
        i = argv.index("cluster")
        rest = argv[i + 1 :]
        j = 0
        while j < len(rest) and rest[j].startswith("-"):
            j += 2 if rest[j] == "--name" else 1  # the cluster group's own flags
        if j < len(rest) and rest[j] == "kubectl":
            cut = i + 1 + j + 1
            return argv[:cut], argv[cut:]
    return argv, None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    head, passthrough = split_passthrough(words)
    args = parser.parse_args(head)
    if passthrough is not None:
        args.args = passthrough
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
