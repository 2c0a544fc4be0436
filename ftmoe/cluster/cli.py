"""``ftmoe cluster up|down|status|kubeconfig|kubectl``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ftmoe.cluster.errors import ClusterError
from ftmoe.cluster.local import DEFAULT_APISERVER_PORT, DEFAULT_NAME, DEFAULT_NODES, DEFAULT_PROMETHEUS_PORT, ClusterSettings, LocalCluster
from ftmoe.errors import reports


def register(commands: Any) -> None:
    parser = commands.add_parser("cluster", help="a real local Kubernetes cluster (kwok nodes, no Docker)")
    parser.add_argument(
        "--name",
        default=os.environ.get("FTMOE_CLUSTER") or DEFAULT_NAME,
        help=f"cluster name (default $FTMOE_CLUSTER, else {DEFAULT_NAME})",
    )
    sub = parser.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    up = sub.add_parser("up", help="build (once) and start the control plane, Prometheus and fake nodes")
    up.add_argument("--nodes", type=int, default=DEFAULT_NODES, help=f"fake nodes to create (default {DEFAULT_NODES})")
    up.add_argument(
        "--pods-per-node",
        type=int,
        default=0,
        help="also create this many small pods bound to every node, in namespace ftmoe-load (scale tests; default 0)",
    )
    up.add_argument("--apiserver-port", type=int, default=DEFAULT_APISERVER_PORT, help="kube-apiserver port on 127.0.0.1")
    up.add_argument("--prometheus-port", type=int, default=DEFAULT_PROMETHEUS_PORT, help="Prometheus port on 127.0.0.1")
    up.set_defaults(func=cmd_up)

    sub.add_parser("build", help="build and cache the binaries only (what `up` does first)").set_defaults(func=cmd_build)
    sub.add_parser("down", help="stop what `up` started and remove its state").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show whether the cluster runs, its nodes and endpoints")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format")
    status.set_defaults(func=cmd_status)
    sub.add_parser("kubeconfig", help="print the kubeconfig path (export KUBECONFIG=$(ftmoe cluster kubeconfig))").set_defaults(
        func=cmd_kubeconfig
    )
    sub.add_parser("env", help='shell lines that point kubectl at the cluster: eval "$(ftmoe cluster env)"').set_defaults(func=cmd_env)
    kubectl = sub.add_parser("kubectl", help="run the cluster's own kubectl against it", add_help=False)
    kubectl.add_argument("args", nargs=argparse.REMAINDER, help="kubectl's own arguments, passed through unchanged")
    kubectl.set_defaults(func=cmd_kubectl)


@reports(ClusterError)
def cmd_up(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        raise ClusterError(f"--nodes must be at least 1 (got {args.nodes})")
    if args.pods_per_node < 0 or args.pods_per_node > 110:
        raise ClusterError(f"--pods-per-node must be between 0 and 110, a node's pod capacity (got {args.pods_per_node})")
    settings = ClusterSettings(args.name, args.nodes, args.apiserver_port, args.prometheus_port, args.pods_per_node)
    LocalCluster(args.name).up(settings)
    return 0


@reports(ClusterError)
def cmd_build(args: argparse.Namespace) -> int:
    binaries = LocalCluster(args.name).toolchain.ensure()
    print(f"binaries ready in {binaries.kubectl.parent}")
    return 0


@reports(ClusterError)
def cmd_down(args: argparse.Namespace) -> int:
    LocalCluster(args.name).down()
    return 0


@reports(ClusterError)
def cmd_status(args: argparse.Namespace) -> int:
    info = LocalCluster(args.name).status()
    if args.output == "json":
        print(json.dumps(info, indent=2))
    else:
        if "kubeconfig" not in info:
            print(f"cluster {args.name!r}: not created (run `ftmoe cluster up`)")
            return 1
        print(f"cluster {info['name']!r}: {'running' if info['running'] else 'NOT running'}")
        for key in ("apiserver", "kubeconfig", "prometheus"):
            print(f"  {key + ':':12} {info[key]}")
        print(f"  {'prometheus ready:':12} {info['prometheus_ready']}")
        if info["running"]:
            print(f"  nodes:       {info['nodes_ready']}/{info['nodes']} Ready")
            print(f"  components:  {', '.join(info['components']) or '-'}")
        for proc in info.get("processes", []):
            print(f"  {proc['name'] + ':':12} running, pid {proc['pid']}, log {proc['log']}")
    return 0 if info["running"] else 1


@reports(ClusterError)
def cmd_kubeconfig(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    if not cluster.kubeconfig.is_file():
        raise ClusterError(f"cluster {args.name!r} has no kubeconfig: run `ftmoe cluster up` first")
    print(cluster.kubeconfig)
    return 0


def running_cluster(name: str) -> tuple[LocalCluster, Path]:
    """The cluster and its kubectl, or the error that says to start it."""
    cluster = LocalCluster(name)
    kubectl = cluster.toolchain.binaries().kubectl
    if not cluster.kubeconfig.is_file() or not kubectl.exists():
        raise ClusterError(f"cluster {name!r} is not up: run `ftmoe cluster up` first")
    return cluster, kubectl


@reports(ClusterError)
def cmd_env(args: argparse.Namespace) -> int:
    """KUBECONFIG and the cluster's own kubectl on PATH, for `eval` in the user's shell."""
    cluster, kubectl = running_cluster(args.name)
    print(f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}")
    print(f'export PATH={shlex.quote(str(kubectl.parent))}:"$PATH"')
    return 0


@reports(ClusterError)
def cmd_kubectl(args: argparse.Namespace) -> int:
    cluster, kubectl = running_cluster(args.name)
    argv = [str(kubectl), "--kubeconfig", str(cluster.kubeconfig), *args.args]
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 0  # not reached
