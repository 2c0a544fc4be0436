"""Job side of the checkpoint contract: a training loop asks "should I checkpoint now?".

The operator writes three annotations on each training pod; the pod projects its
annotations into a file through a downwardAPI volume (mounted as a directory, not with
subPath, so the kubelet's atomic symlink swap keeps it current in a running pod):

    ftmoe.io/checkpoint-interval-seconds   how often to checkpoint (the periodic interval)
    ftmoe.io/checkpoint-request            an id that only grows: a new value means "now"
    ftmoe.io/checkpoint-reason             why, for logs

and, before evicting the pod, waits (bounded) for ``ftmoe.io/checkpoint-ack`` to equal
the request id. The job never needs API access; if its ServiceAccount may patch its own
pod, ``acknowledge()`` writes the ack and the eviction need not wait for the timeout.

    signal = CheckpointSignal("/etc/ftmoe")           # where the volume is mounted
    for step in range(steps):
        train_step()
        if signal.should_checkpoint(step):
            save_checkpoint(step)
            signal.checkpointed(step)                 # and acknowledges a pending request

Imports neither torch nor kopf; with ``distributed=True`` it agrees across
torch.distributed ranks (all ranks checkpoint at the same step).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

INTERVAL = "ftmoe.io/checkpoint-interval-seconds"
REQUEST = "ftmoe.io/checkpoint-request"
REASON = "ftmoe.io/checkpoint-reason"
ACK = "ftmoe.io/checkpoint-ack"
SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")

log = logging.getLogger("ftmoe.checkpoint")


def parse_annotations(text: str) -> dict[str, str]:
    """The kubelet writes one ``key="value"`` per line, the value quoted as Go's %q."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, quoted = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(quoted)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, str):
            out[key] = value
    return out


class CheckpointSignal:
    def __init__(
        self,
        folder: str | os.PathLike[str] = "/etc/ftmoe",
        file: str = "annotations",
        default_interval: float = 1800.0,
        distributed: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = Path(folder) / file
        self.default_interval = default_interval
        self.distributed = distributed
        self.clock = clock
        self.last_checkpoint = clock()
        self.handled_request = self._request()  # a request already there at start was before us
        self.reason = ""

    def annotations(self) -> dict[str, str]:
        try:
            return parse_annotations(self.path.read_text())
        except OSError:
            return {}  # not mounted (a run outside Kubernetes): the default interval applies

    def interval(self) -> float:
        try:
            return max(1.0, float(self.annotations().get(INTERVAL, self.default_interval)))
        except ValueError:
            return self.default_interval

    def _request(self) -> int:
        try:
            return int(self.annotations().get(REQUEST, "0"))
        except ValueError:
            return 0

    def should_checkpoint(self, step: int | None = None) -> bool:
        """True when the interval has passed since the last checkpoint or a new request
        arrived. With ``distributed``, every rank gets the same answer."""
        request = self._request()
        due = self.clock() - self.last_checkpoint >= self.interval()
        asked = request > self.handled_request
        self.reason = f"request {request}: {self.annotations().get(REASON, '')}" if asked else "interval elapsed" if due else ""
        decision = due or asked
        if self.distributed:
            decision = agree(decision)
        if decision:
            log.info("checkpoint at step %s: %s", step, self.reason or "another rank asked")
        return decision

    def checkpointed(self, step: int | None = None, acknowledge: bool = True) -> None:
        """Call after a checkpoint is saved: resets the clock and handles pending requests."""
        self.last_checkpoint = self.clock()
        request = self._request()
        if request > self.handled_request:
            self.handled_request = request
            if acknowledge:
                self.acknowledge(request)

    def acknowledge(self, request: int) -> bool:
        """Patch ``ftmoe.io/checkpoint-ack`` on this pod when the ServiceAccount may; without
        that right the operator waits its configured time instead. Returns success."""
        name, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not (name and namespace and host and (SA / "token").is_file()):
            return False
        body = json.dumps({"metadata": {"annotations": {ACK: str(request)}}}).encode()
        req = urllib.request.Request(
            f"https://{host}:{port}/api/v1/namespaces/{namespace}/pods/{name}",
            data=body,
            method="PATCH",
            headers={"Content-Type": "application/merge-patch+json", "Authorization": f"Bearer {(SA / 'token').read_text().strip()}"},
        )
        try:
            with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(SA / "ca.crt")), timeout=10):
                return True
        except OSError as err:
            log.warning("could not acknowledge checkpoint request %d: %s", request, err)
            return False


def agree(decision: bool) -> bool:
    """True on every rank if it is True on any (torch.distributed all-reduce of a max)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return decision
    flag = torch.tensor([1 if decision else 0], dtype=torch.int32)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
