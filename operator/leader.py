"""One active writer: leader election on a coordination.k8s.io Lease.

kopf's peering only pauses other operators while one is active; it elects nobody, and two
replicas that start together both act. Here a replica acts only while it holds the Lease
``ftmoe-operator`` in its namespace, renewing it every ``renew`` seconds; a replica that
stops renewing loses it after ``duration`` seconds and another takes over. The Deployment
runs two replicas (deploy/base/deployment.yaml): one leads, the other stands by with its
watch caches filled, and takes over when the leader dies (bench/failover.py measures
it). The Lease also guards a second `ftmoe operator run` from a laptop and a node partition
that leaves an old pod running.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ftmoe.operator import own_metrics as M

log = logging.getLogger("ftmoe.operator.leader")


def identity() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class LeaseElector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str = "ftmoe-operator",
        duration: float = 15.0,
        renew: float = 5.0,
        me: str | None = None,
    ):
        self.coord = client.CoordinationV1Api(api)
        self.namespace, self.name = namespace, name
        self.duration, self.renew = duration, renew
        self.me = me or identity()
        self.leading = threading.Event()
        self.valid_until = 0.0  # monotonic: the Lease is surely ours until then (from before the last renewal was sent)
        self.stopped = threading.Event()
        self.waiting_for: str | None = None  # the holder last reported, so standby says it once per holder

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    def holds(self) -> bool:
        """Leader, and not past the Lease's duration since the last renewal was sent: a
        replica whose renewals stalled (frozen, partitioned) stops writing before a rival
        can take over, whatever the renewal thread last managed to record."""
        return self.leading.is_set() and time.monotonic() < self.valid_until

    def try_acquire(self, now: dt.datetime | None = None) -> bool:
        """One round: take the Lease if free or expired, renew it if ours. Returns leadership."""
        now = now or dt.datetime.now(dt.timezone.utc)
        sent = time.monotonic()
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace), spec=self._spec(now, now, 0))
            try:
                self.coord.create_namespaced_lease(self.namespace, body)
                return self._set(True, sent)
            except ApiException as err2:
                if err2.status == 409:
                    return self._set(False)
                raise
        spec = lease.spec or client.V1LeaseSpec()
        holder, renewed = spec.holder_identity, spec.renew_time
        expired = renewed is None or (now - renewed).total_seconds() > (spec.lease_duration_seconds or self.duration)
        if holder not in (None, "", self.me) and not expired:
            if holder != self.waiting_for:
                age = (now - renewed).total_seconds() if renewed is not None else 0.0
                log.info(
                    "standing by: Lease %s/%s is held by %s (renewed %.0fs ago); this replica acts once it is "
                    "released or %ss pass without a renewal",
                    self.namespace,
                    self.name,
                    holder,
                    age,
                    spec.lease_duration_seconds or int(self.duration),
                )
                self.waiting_for = holder
            return self._set(False)
        self.waiting_for = None
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.me else 1)
        acquired = spec.acquire_time if holder == self.me and spec.acquire_time else now
        lease.spec = self._spec(acquired, now, transitions)
        try:
            # The resourceVersion in `lease` makes this a compare-and-swap: a rival's write wins with 409.
            self.coord.replace_namespaced_lease(self.name, self.namespace, lease)
            return self._set(True, sent)
        except ApiException as err:
            if err.status == 409:
                return self._set(False)
            raise

    def _spec(self, acquired: dt.datetime, renewed: dt.datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.me,
            lease_duration_seconds=int(self.duration),
            acquire_time=acquired,
            renew_time=renewed,
            lease_transitions=transitions,
        )

    def _set(self, leading: bool, sent: float | None = None) -> bool:
        if leading and not self.leading.is_set():
            log.info("acquired Lease %s/%s as %s", self.namespace, self.name, self.me)
        if not leading and self.leading.is_set():
            log.warning("lost Lease %s/%s; stopping all actions", self.namespace, self.name)
        if leading and sent is not None:
            self.valid_until = sent + self.duration - self.renew  # a renew period of margin for clock rate and latency
        (self.leading.set if leading else self.leading.clear)()
        M.LEADER.set(1 if leading else 0)
        return leading

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.try_acquire()
            except Exception as err:  # noqa: BLE001 - any failure to renew means we may not be leader
                log.warning("Lease %s/%s: %s", self.namespace, self.name, err)
                self._set(False)
            self.stopped.wait(self.renew)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="lease-elector", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the Lease up at shutdown so a successor need not wait for it to expire."""
        self.stopped.set()
        if not self.leading.is_set():
            return
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.me:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.coord.replace_namespaced_lease(self.name, self.namespace, lease)
                log.info("released Lease %s/%s", self.namespace, self.name)
        except ApiException as err:
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, err.reason)
        self.leading.clear()
        M.LEADER.set(0)
