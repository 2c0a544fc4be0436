"""``ftmoe checkpoint relay``: wire the relay (checkpoint_relay.py) to a pod and a trainer."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftmoe.checkpoint import ACK
from ftmoe.checkpoint_relay import COST, Relay, RelayError, RelaySettings, file_source, pid_from_file, watch, wrap
from ftmoe.errors import reports
from ftmoe.operator.durations import parse_duration

log = logging.getLogger("ftmoe.checkpoint.relay")


def register(commands: Any) -> None:
    cp = commands.add_parser("checkpoint", help="the training side of the checkpoint contract")
    sub = cp.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    r = sub.add_parser(
        "relay",
        help="turn the operator's checkpoint requests into a signal or a trigger file for an unchanged trainer, and ack its checkpoints",
        description="Entrypoint wrapper: ftmoe checkpoint relay [OPTIONS] -- python train.py ...  "
        "Sidecar (shareProcessNamespace): ftmoe checkpoint relay --pid-file /shared/trainer.pid [OPTIONS]",
    )
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--signal", help="signal the trainer on a request: SIGUSR1 (save and go on), SIGTERM (Megatron: save and exit)")
    how.add_argument("--trigger-file", type=Path, help="write the request id to this file on a request (the trainer polls it)")
    r.add_argument("--exits", action="store_true", help="the signal makes the trainer save and exit (checks the grace period)")
    r.add_argument("--checkpoint-glob", help="files or folders that appear when a checkpoint is saved, e.g. '/ckpt/checkpoint-*'")
    r.add_argument("--done-command", help="or a command that exits 0 once the requested checkpoint is saved")
    r.add_argument("--annotations", default="/etc/ftmoe/annotations", help="the downwardAPI annotations file, or 'api' to read the pod")
    r.add_argument("--pod", default=os.environ.get("POD_NAME"), help="this pod's name (default $POD_NAME), for the ack")
    r.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE"), help="this pod's namespace (default $POD_NAMESPACE)")
    r.add_argument("--kubeconfig", type=Path, help="kubeconfig for the ack (default: in-cluster)")
    r.add_argument("--grace-period", type=float, help="the pod's terminationGracePeriodSeconds (default: read from the pod)")
    r.add_argument("--checkpoint-cost", type=float, help=f"seconds one checkpoint takes (default: the pod's {COST})")
    r.add_argument("--timeout", default="10m", help="stop waiting for a requested checkpoint after this long")
    r.add_argument("--poll", default="1s", help="how often to look for requests and checkpoints")
    r.add_argument("--warmup", default="10s", help="signal no trainer younger than this (its handler may not be installed yet)")
    r.add_argument("--pid-file", type=Path, help="sidecar mode: the trainer's pid (with shareProcessNamespace)")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- the trainer's command (entrypoint mode)")
    r.set_defaults(func=cmd_relay)


def pod_api(args: argparse.Namespace) -> tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]] | None:
    """(read the pod, patch the pod), or None where there is no pod or no API to reach."""
    if not (args.pod and args.namespace):
        return None
    from kubernetes import client, config

    try:
        if args.kubeconfig:
            config.load_kube_config(str(args.kubeconfig))
        else:
            config.load_incluster_config()
    except config.ConfigException as err:
        log.warning("no API access (%s): checkpoints are taken but not acknowledged; the operator waits its ack timeout", err)
        return None
    core = client.CoreV1Api()

    def read() -> dict[str, Any]:
        resp: Any = core.read_namespaced_pod(args.pod, args.namespace, _preload_content=False)  # JSON, as the API spells it
        return dict(json.loads(resp.data))

    def patch(body: dict[str, Any]) -> None:
        core.patch_namespaced_pod(args.pod, args.namespace, body)

    return read, patch


@reports(RelayError)
def cmd_relay(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if bool(command) == bool(args.pid_file):
        raise RelayError("give the trainer's command after -- (entrypoint) or --pid-file (sidecar), not both or neither")
    try:
        sig = int(signal.Signals[args.signal if args.signal.startswith("SIG") else f"SIG{args.signal}"]) if args.signal else None
    except KeyError:
        raise RelayError(f"--signal {args.signal}: not a signal name; write SIGUSR1, SIGTERM or SIGINT") from None
    api = pod_api(args)
    if args.annotations == "api":
        if api is None:
            raise RelayError("--annotations api needs the pod (--pod/--namespace or $POD_NAME/$POD_NAMESPACE) and API access")
        get = api[0]

        def read() -> dict[str, str]:
            try:
                return dict((get().get("metadata") or {}).get("annotations") or {})
            except (ApiException, OSError) as err:
                log.warning("could not read the pod: %s", err)
                return {}

    else:
        read = file_source(Path(args.annotations))
    pod = None
    if api is not None and (args.grace_period is None or args.checkpoint_cost is None):
        try:
            pod = api[0]()
        except (ApiException, OSError) as err:
            log.warning("could not read the pod for its grace period: %s", err)
    grace = args.grace_period if args.grace_period is not None else ((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds")
    cost = args.checkpoint_cost
    if cost is None:
        try:
            cost = float(read().get(COST) or ((pod or {}).get("metadata") or {}).get("annotations", {}).get(COST) or "nan")
        except ValueError:
            cost = None
        cost = None if cost is None or cost != cost else cost
    settings = RelaySettings(
        signal=sig,
        trigger_file=args.trigger_file,
        exits=args.exits,
        checkpoint_glob=args.checkpoint_glob,
        done_command=["sh", "-c", args.done_command] if args.done_command else None,
        timeout=duration(args.timeout, "--timeout"),
        poll=duration(args.poll, "--poll"),
        warmup=duration(args.warmup, "--warmup"),
        grace_period=float(grace) if grace is not None else None,
    )
    settings.check(cost)

    def ack(request: int) -> bool:
        if api is None:
            return False
        try:
            api[1]({"metadata": {"annotations": {ACK: str(request)}}})
            return True
        except (ApiException, OSError) as err:
            log.warning("could not acknowledge request %d: %s", request, err)
            return False

    relay = Relay(settings, read, ack, pid_from_file(args.pid_file) if args.pid_file else lambda: None)
    log.info("relaying checkpoint requests (%s)", f"signal {args.signal}" if sig else f"trigger file {args.trigger_file}")
    if command:
        return wrap(relay, command)
    pid = pid_from_file(args.pid_file)
    return watch(relay, lambda: alive(pid()))


def alive(pid: int | None) -> bool:
    if pid is None:
        return True  # not written yet: wait for the trainer
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text, flag)
    except ValueError as err:
        raise RelayError(str(err)) from None
