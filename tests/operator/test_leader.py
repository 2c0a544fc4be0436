"""Leader election on a real coordination.k8s.io Lease: one holder, takeover after expiry,
early hand-over on release."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pytest

from ftmoe.operator.leader import LeaseElector

pytestmark = pytest.mark.cluster


def test_one_leader_expiry_and_release(api_client: Any, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    a = LeaseElector(api_client, namespace, duration=15, me="replica-a")
    b = LeaseElector(api_client, namespace, duration=15, me="replica-b")
    t0 = dt.datetime.now(dt.timezone.utc)
    assert a.try_acquire(t0) and a.is_leader
    with caplog.at_level(logging.INFO, logger="ftmoe.operator.leader"):
        assert not b.try_acquire(t0 + dt.timedelta(seconds=1)) and not b.is_leader  # held and fresh
        assert not b.try_acquire(t0 + dt.timedelta(seconds=2))
    standby = [r.getMessage() for r in caplog.records if "standing by" in r.getMessage()]
    assert len(standby) == 1 and "held by replica-a" in standby[0], "a standby says once whom it waits for"
    assert a.try_acquire(t0 + dt.timedelta(seconds=5))  # renewal
    # a stops renewing: after the lease duration b takes over, and a's next renewal fails
    assert b.try_acquire(t0 + dt.timedelta(seconds=25)) and b.is_leader
    assert not a.try_acquire(t0 + dt.timedelta(seconds=26)) and not a.is_leader
    lease = b.coord.read_namespaced_lease(b.name, namespace)
    assert lease.spec.holder_identity == "replica-b" and lease.spec.lease_transitions == 1
    # a clean shutdown hands the lease over at once
    b.release()
    assert not b.is_leader
    assert a.try_acquire(dt.datetime.now(dt.timezone.utc)) and a.is_leader


def test_a_leader_whose_renewals_stall_stops_holding_before_the_lease_can_expire(api_client: Any, namespace: str) -> None:
    a = LeaseElector(api_client, namespace, me="a", duration=15, renew=5)
    assert a.try_acquire() and a.holds()
    a.valid_until = time.monotonic() - 0.001  # the renewal thread froze: the event says leader, time says no longer
    assert a.is_leader and not a.holds()
