"""``ftmoe crds``: render the CustomResourceDefinitions from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ftmoe.operator.api import crds


def register(commands: Any) -> None:
    group = commands.add_parser(
        "crds",
        help="the CustomResourceDefinitions, generated from operator/api/",
        description="The CRDs in crds/ are generated from the API models in operator/api/.",
    )
    sub = group.add_subparsers(dest="crds_command", metavar="COMMAND", required=True)
    gen = sub.add_parser("generate", help="write crds/*.yaml from the models (or, with --check, fail if they differ)")
    gen.add_argument("--dir", type=Path, default=Path("crds"), help="the folder the CRD files live in")
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 and name the files that differ")
    gen.set_defaults(func=generate)
    show = sub.add_parser("print", help="print both CRDs as one YAML stream (e.g. | kubectl apply -f -)")
    show.set_defaults(func=print_all)


CHART_CRDS = Path("deploy/helm/ftmoe-operator/crds")  # the Helm chart's copy, written beside crds/


def generate(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        print(f"ftmoe crds generate: {folder} is not a folder; run it from the repository root or pass --dir", file=sys.stderr)
        return 2
    folders = [folder, *([CHART_CRDS] if folder == Path("crds") and CHART_CRDS.parent.is_dir() else [])]
    if args.check:
        differ = [f / name for f in folders for name in crds.stale(f)]
        for path in differ:
            print(f"{path} differs from the API models; run `ftmoe crds generate`", file=sys.stderr)
        if not differ:
            print(f"{', '.join(map(str, folders))}: the CRDs match the API models")
        return 1 if differ else 0
    for f in folders:
        f.mkdir(exist_ok=True)
        written = crds.write(f)
        print(f"wrote {', '.join(str(f / n) for n in written)}" if written else f"{f}: already up to date")
    return 0


def print_all(args: argparse.Namespace) -> int:
    sys.stdout.write("---\n".join(crds.generate().values()))
    return 0
