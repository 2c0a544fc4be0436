"""``ftmoe simulate`` (write a dataset), ``ftmoe simulate serve`` (live mode) and ``ftmoe dataset``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ftmoe.contract.dataset import DatasetError
from ftmoe.errors import reports
from ftmoe.simulator.traces import TraceError


def register(commands: Any) -> None:
    sim = commands.add_parser("simulate", help="simulate a cluster and write an FT dataset (format v1)")
    sim.add_argument("--hosts", type=int, default=16, help="simulated hosts (nodes)")
    sim.add_argument("--intervals", type=int, default=10_000, help="intervals to simulate (one row of the dataset each)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (workload traces, faults, migrations)")
    sim.add_argument("--out", type=Path, help="output .npz (default data/sim-H<h>-T<t>-s<seed>.npz)")
    sim.add_argument("--traces", type=Path, help="Bitbrains rnd-2013-7.zip (default: $FTMOE_BITBRAINS or shared/)")
    sim.add_argument("--drift-at", type=int, help="switch to the drifted fault pattern at this interval")
    sim.add_argument("--card-json", type=Path, help="also write the dataset card as JSON")
    sim.set_defaults(func=cmd_simulate)
    modes = sim.add_subparsers(dest="mode", metavar="MODE", required=False)
    serve = modes.add_parser("serve", help="live mode: feed the local cluster's Prometheus and node conditions")
    from ftmoe.simulator import live

    live.add_arguments(serve)
    serve.set_defaults(func=live.cmd_serve)

    ds = commands.add_parser("dataset", help="validate, describe and convert datasets")
    sub = ds.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    card = sub.add_parser("card", help="validate a dataset and print its card")
    card.add_argument("path", type=Path, help="dataset .npz")
    card.add_argument("--json", action="store_true", help="print the card as JSON")
    card.set_defaults(func=cmd_card)
    pregan = sub.add_parser("from-pregan", help="convert PreGAN's time_series.npy + schedule_series.npy")
    pregan.add_argument("time_series", type=Path, help="PreGAN time_series.npy [T, H, F]")
    pregan.add_argument("schedule_series", type=Path, help="PreGAN schedule_series.npy (container placements, for migrations)")
    pregan.add_argument("--labels", type=Path, help="[T, H] int .npy of fault classes (0 none, 1 cpu, 2 memory, 3 disk)")
    pregan.add_argument("--interval-seconds", type=float, default=300.0, help="seconds between rows")
    pregan.add_argument("--out", type=Path, required=True, help="dataset .npz to write")
    pregan.set_defaults(func=cmd_from_pregan)
    prom = sub.add_parser("from-prometheus", help="convert a Prometheus query_range export (see docs/dataset-format.md)")
    prom.add_argument("export", type=Path, help="JSON export of query_range results")
    prom.add_argument("--faults", type=Path, help="JSON list of {node, type, start, end} giving labels")
    prom.add_argument("--step", type=float, help="seconds between samples (default: the export's)")
    prom.add_argument("--node-label", default="node", help="the series label that names the node")
    prom.add_argument("--out", type=Path, required=True, help="dataset .npz to write")
    prom.set_defaults(func=cmd_from_prometheus)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    asd = sub.add_parser("from-asd", help="convert ASD (12 real servers, expert-labelled incidents)", formatter_class=fmt)
    asd.add_argument("folder", type=Path, help="the folder with asd.npz and interpretation_labels.json (shared/data/asd)")
    asd.add_argument("--out", type=Path, default=Path("data/asd.npz"), help="dataset .npz to write")
    asd.set_defaults(func=cmd_from_asd)
    nezha = sub.add_parser("from-nezha", help="convert Nezha (real Kubernetes fault injection, typed faults)", formatter_class=fmt)
    nezha.add_argument("folder", type=Path, help="the folder with rca_data/ (shared/data/nezha)")
    nezha.add_argument(
        "--system",
        choices=["train-ticket", "online-boutique"],
        default="train-ticket",
        help="which microservice system (each is one dataset: its services are the hosts)",
    )
    nezha.add_argument(
        "--fault-minutes",
        type=int,
        default=5,
        help="minutes labelled faulty from each injection (the fault list gives no duration; see docs/datasets.md)",
    )
    nezha.add_argument("--out", type=Path, help="dataset .npz to write (default data/nezha-<system>.npz)")
    nezha.set_defaults(func=cmd_from_nezha)


@reports(DatasetError, TraceError, ValueError)
def cmd_simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ftmoe.simulator.config import SimConfig, drifted_faults
    from ftmoe.simulator.generate import card, format_card, simulate
    from ftmoe.simulator.traces import load_pool

    if args.hosts < 1 or args.intervals < 1:
        raise ValueError("--hosts and --intervals must be at least 1")
    config = SimConfig(hosts=args.hosts, intervals=args.intervals, seed=args.seed)
    if args.drift_at is not None:
        config = config.with_(drift=drifted_faults(), drift_at=args.drift_at)
    out = args.out or Path("data") / f"sim-H{args.hosts}-T{args.intervals}-s{args.seed}.npz"
    print(f"loading Bitbrains traces from {args.traces or 'the default location'} ...", file=sys.stderr)
    pool = load_pool(args.traces)
    print(f"{len(pool)} VMs in the pool (CPU at the 10th sample in 500-3000 MHz)", file=sys.stderr)
    with tqdm(total=args.intervals, unit="interval", desc="simulating", file=sys.stderr, mininterval=1.0) as bar:
        ds = simulate(config, pool, progress=bar.update)
    ds.save(out)
    c = card(ds)
    print(format_card(c))
    print(f"wrote {out}")
    if args.card_json:
        args.card_json.write_text(json.dumps(c, indent=2))
    return 0


@reports(DatasetError, TraceError, ValueError)
def cmd_card(args: argparse.Namespace) -> int:
    from ftmoe.contract.dataset import load
    from ftmoe.simulator.generate import card, format_card

    c = card(load(args.path))
    print(json.dumps(c, indent=2) if args.json else format_card(c))
    return 0


@reports(DatasetError, TraceError, ValueError)
def cmd_from_pregan(args: argparse.Namespace) -> int:
    from ftmoe.simulator.convert import from_pregan

    ds = from_pregan(args.time_series, args.schedule_series, args.labels, args.interval_seconds)
    ds.save(args.out)
    if args.labels is None:
        print("warning: no --labels given; every interval is labelled 'none' (score with it, do not train on it)", file=sys.stderr)
    print(f"wrote {args.out}: {ds.shape[0]} intervals x {ds.shape[1]} hosts, {len(ds.migrations)} migrations")
    return 0


@reports(DatasetError, TraceError, ValueError)
def cmd_from_prometheus(args: argparse.Namespace) -> int:
    from ftmoe.simulator.convert import from_prometheus

    ds = from_prometheus(args.export, args.step, args.node_label, args.faults)
    ds.save(args.out)
    print(f"wrote {args.out}: {ds.shape[0]} intervals x {ds.shape[1]} nodes x {ds.shape[2]} features")
    return 0


def _print_card(ds: Any, out: Path) -> None:
    card = ds.metadata.get("card", {})
    print(
        f"wrote {out}: {ds.shape[0]} intervals x {ds.shape[1]} hosts x {ds.shape[2]} features, "
        f"{int((ds.labels > 0).sum())} faulty host-intervals in {len(ds.fault_records())} labelled segments"
    )
    for key, value in card.items():
        print(f"  {key}: {value}")


@reports(DatasetError, ValueError)
def cmd_from_asd(args: argparse.Namespace) -> int:
    from ftmoe.simulator.convert_real import from_asd

    ds = from_asd(args.folder)
    ds.save(args.out)
    _print_card(ds, args.out)
    return 0


@reports(DatasetError, ValueError)
def cmd_from_nezha(args: argparse.Namespace) -> int:
    from ftmoe.simulator.convert_real import from_nezha

    ds = from_nezha(args.folder, args.system, args.fault_minutes)
    out = args.out or Path("data") / f"nezha-{args.system}.npz"
    ds.save(out)
    _print_card(ds, out)
    return 0
