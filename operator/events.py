"""Kubernetes events on the objects the operator acts on, posted so `kubectl describe` finds them.

kopf's ``kopf.event`` writes ``involvedObject.namespace: default`` for cluster-scoped
objects (Nodes, FaultTolerancePolicies); `kubectl describe node` searches for events whose
involvedObject has the node's empty namespace, so it showed ``Events: <none>`` although
``kubectl get events`` held them. Here a cluster-scoped object's reference carries no
namespace, and its event lives in ``default``, as the kubelet and the node controller do it.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ftmoe.operator.request_tally import count

log = logging.getLogger("ftmoe.operator.events")

COMPONENT = "ftmoe-operator"
MAX_MESSAGE = 1024  # the API server's limit for an event's message


def involved_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``involvedObject`` of an event on ``obj``: no namespace when it has none."""
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "namespace": meta.get("namespace"),
    }
    return {k: v for k, v in ref.items() if v}


def event_body(obj: dict[str, Any], kind: str, reason: str, message: str, now: dt.datetime, instance: str) -> dict[str, Any]:
    ref = involved_object(obj)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref.get('name', 'object')}.{uuid.uuid4().hex[:16]}", "namespace": ref.get("namespace", "default")},
        "involvedObject": ref,
        "type": kind,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    """An ``EventSink``: one core/v1 Event per call. A failure is logged, never raised: an
    event that cannot be written must not stop the action it reports."""

    def __init__(self, api: client.ApiClient, may_write: Callable[[], bool] | None = None):
        self.core = client.CoreV1Api(api)
        self.instance = socket.gethostname()
        self.may_write = may_write  # the leader Lease, as for every other write (operator/kube.py)

    def __call__(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        if self.may_write is not None and not self.may_write():
            log.info("not the leader any more; event %s not posted", reason)
            return
        body = event_body(obj, kind, reason, message, dt.datetime.now(dt.timezone.utc), self.instance)
        try:
            count("create", "events")
            self.core.create_namespaced_event(body["metadata"]["namespace"], body)  # type: ignore[arg-type]  # a dict body is accepted
        except (ApiException, HTTPError) as err:
            log.warning(
                "could not post event %s on %s %s: %s",
                reason,
                body["involvedObject"].get("kind"),
                body["involvedObject"].get("name"),
                getattr(err, "reason", err),
            )
