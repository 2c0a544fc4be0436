"""Reactive peers as policies of the kubernetes regime, written from their documented behaviour.

Each acts after a node condition shows; none sees the future. Numbers are the projects'
documented defaults where they have one; the others are marked as assumptions.

- Medik8s Node Healthcheck + Self Node Remediation: a node Ready=False/Unknown for 300 s
  (NHC's default unhealthyConditions) is remediated while at least 51 % of nodes are healthy
  (minHealthy); SNR reboots it and, once it may assume the reboot happened, deletes its pods,
  StatefulSet pods included (180 s: an assumption for safeTimeToAssumeNodeRebootedSeconds,
  which SNR computes from its watchdog and API-check settings).
- draino: cordon and drain a node when a configured condition shows (here NotReady,
  pressure and a GPU health condition), at most one drain per 10 minutes (its drain-buffer
  default). Evicting pods of an unreachable node replaces Deployment and Job pods;
  StatefulSet pods stay Terminating.
- Karpenter node repair: a node NotReady for 30 minutes (the toleration of Ready=False and
  Ready=Unknown) is deleted and replaced, unless more than 20 % of nodes are unhealthy.
  The replacement is Ready after KubeTimings.provisioning.
"""

from __future__ import annotations

from ftmoe.simulator.kubernetes_regime import ReactivePeer

NHC = ReactivePeer("Medik8s NHC + SNR", on=("NotReady",), after=300.0, action="fence", extra=180.0, min_healthy=0.51)
DRAINO = ReactivePeer("draino", on=("NotReady", "Pressure", "Degraded"), after=0.0, action="drain", buffer=600.0)
KARPENTER = ReactivePeer("Karpenter node repair", on=("NotReady",), after=1800.0, action="replace", max_share=0.2)

PEERS: dict[str, ReactivePeer | None] = {"none": None, "nhc": NHC, "draino": DRAINO, "karpenter": KARPENTER}
