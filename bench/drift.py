"""Online learning under drift, end to end on the local cluster.

The real pipeline, nothing replayed: the simulator's live mode drives the 16 kwok nodes
(metrics scraped by Prometheus every second, faults mirrored into node conditions), and
one operator process, running as its own ServiceAccount, serves two FaultTolerancePolicies
over the same nodes in Observe mode. They differ in one field: `drift-tuned` tunes its
model online (`learning.tuneEvery`), `drift-frozen` does not (`tuneEvery: 0`). Both see
the same faults, so the difference between their self-graded F1 curves is what online
tuning buys. After `--pre` intervals the bench switches the simulator to the drifted fault
pattern (`POST /drift`: swap storms that build up slowly, faster leaks, noisier disks).

The curves come from what the operator itself recorded: each policy's experience buffer
(risk, predicted and observed fault per node and interval, saved under --state-dir),
graded per chunk of intervals by the same code as `status.selfGrading`.

    .venv/bin/python bench/drift.py [--step 2] [--pre 150] [--post 450] [--tune-every 50]

It needs the local cluster (`ftmoe cluster up`; started here when it is not running) and
stops the demo's simulator and operator, which would fight over the same nodes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import get_json, write  # noqa: E402

GROUP, VERSION, PLURAL = "ftmoe.io", "v1alpha1", "faulttolerancepolicies"
TUNED, FROZEN = "drift-tuned", "drift-frozen"


@dataclass
class Ports:
    simulator: int = 29206
    metrics: int = 28180
    health: int = 28181


def policy(name: str, tune_every: int, args: argparse.Namespace, prometheus_url: str) -> dict[str, Any]:
    step = f"{args.step:g}s"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "Observe",
            "interval": step,
            "horizon": f"{args.horizon * args.step:g}s",
            # One scrape (1 s) more than a step: rate() sees exactly one interval's worth.
            "prometheus": {"url": prometheus_url, "rateWindow": f"{args.step + 1:g}s"},
            "learning": {"bufferIntervals": args.pre + args.post + 200, "tuneEvery": tune_every, "tuneEpochs": args.epochs, "holdout": 0.2},
        },
    }


def post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).close()


def series_count(prometheus: str, query: str) -> int:
    try:
        result = get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query}))["data"]["result"]
    except OSError:
        return 0
    return int(float(result[0]["value"][1])) if result else 0


def run_live(args: argparse.Namespace, cluster: Any, workdir: Path, ports: Ports | None = None, log: Any = print) -> dict[str, Any]:
    """Runs the experiment on ``cluster`` (a LocalCluster that is up) and returns what was
    recorded: both policies' buffers, their status over time and the drift time."""
    from kubernetes import client, config

    from ftmoe.cluster import processes, waiting
    from ftmoe.cluster.operator_access import apply_operator_manifests, service_account_kubeconfig

    ports = ports or Ports()
    ftmoe = str(Path(sys.executable).parent / "ftmoe")
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    apply_operator_manifests(cluster.kubectl)
    others = [
        p["metadata"]["name"]
        for p in api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
        if p["metadata"]["name"] not in (TUNED, FROZEN)
    ]
    if others:
        raise RuntimeError(
            f"other FaultTolerancePolicies exist ({', '.join(others)}); they would act on the drift's "
            "faults. Delete them (kubectl delete ftp NAME) or use a fresh cluster"
        )
    for name in ("simulator", "operator"):  # the demo's: same nodes, same Lease
        if processes.stop(cluster.processes_dir, name):
            log(f"stopped the demo's {name}")
    kubeconfig = service_account_kubeconfig(cluster.kubectl, cluster.kubeconfig, workdir / "operator.kubeconfig")
    state_dir = workdir / "state"
    began = time.time()
    sim = f"http://127.0.0.1:{ports.simulator}"
    try:
        processes.start(
            cluster.processes_dir,
            "drift-simulator",
            [
                ftmoe,
                "simulate",
                "serve",
                "--cluster",
                cluster.name,
                "--port",
                str(ports.simulator),
                "--step-seconds",
                f"{args.step:g}",
                "--seed",
                str(args.seed),
                "--targets-dir",
                str(cluster.fast_targets_dir),
            ],
        )
        waiting.wait_for(
            lambda: series_count(cluster.prometheus_url, "count(ftmoe_sim_interval)") >= 16,
            120,
            "the simulator's 16 nodes in Prometheus",
            error=RuntimeError,
        )
        operator_argv = [
            ftmoe,
            "operator",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            str(ports.metrics),
            "--health-port",
            str(ports.health),
            "--state-dir",
            str(state_dir),
        ]
        start_operator(cluster, operator_argv, ports)
        for name, every in ((TUNED, args.tune_every), (FROZEN, 0)):
            body = policy(name, every, args, cluster.prometheus_url)
            try:
                api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
            except client.ApiException as err:
                if err.status != 409:
                    raise
                api.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, body)

        def ready(name: str) -> bool:
            status = api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name).get("status") or {}
            return status.get("staleNodes") == 0 and any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )

        waiting.wait_for(
            lambda: ready(TUNED) and ready(FROZEN), 180, "both policies Ready with a prediction for every node", every=2, error=RuntimeError
        )
        timeline: list[dict[str, Any]] = []
        started = time.time()
        drift_time = None
        total = args.pre + args.post
        while (elapsed := time.time() - started) < total * args.step:
            if drift_time is None and elapsed >= args.pre * args.step:
                post(f"{sim}/drift")
                drift_time = time.time()
                log(f"interval {args.pre}: drift (the simulator now draws the drifted fault pattern)")
            sample = {"time": time.time()}
            for name in (TUNED, FROZEN):
                status = api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name).get("status") or {}
                grading, model = status.get("selfGrading") or {}, status.get("model") or {}
                sample[name] = {
                    "f1": grading.get("f1"),
                    "precision": grading.get("precision"),
                    "recall": grading.get("recall"),
                    "version": model.get("version"),
                    "experts": model.get("experts"),
                    "lastTuning": (model.get("lastTuning") or {}).get("outcome"),
                }
            timeline.append(sample)
            t, f = sample[TUNED], sample[FROZEN]
            log(
                f"interval {int(elapsed / args.step)}/{total}: status F1 tuned {t['f1']} ({t['version']}, {t['experts']} experts, "
                f"last tuning {t['lastTuning']}), frozen {f['f1']}"
            )
            time.sleep(min(args.report_every, max(0.0, total * args.step - (time.time() - started))))
        restart = restart_operator(api, cluster, state_dir, operator_argv, ports, log) if args.restart else None
    finally:
        processes.stop(cluster.processes_dir, "drift-operator")  # SIGTERM: the buffers are saved every interval
        processes.stop(cluster.processes_dir, "drift-simulator")
        for name in (TUNED, FROZEN):
            try:
                api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
            except client.ApiException:
                pass
        clean_nodes(client.CoreV1Api(api.api_client), began)
    buffers = {name: dict(np.load(state_dir / "buffers" / f"{name}.npz", allow_pickle=False)) for name in (TUNED, FROZEN)}
    tuned_dir = state_dir / "models" / TUNED
    models = sorted(p.name for p in tuned_dir.glob("*") if p.is_dir()) if tuned_dir.is_dir() else []
    return {
        "buffers": buffers,
        "timeline": timeline,
        "drift_time": drift_time,
        "started": started,
        "tuned_models": models,
        "restart": restart,
    }


def clean_nodes(core: Any, since: float) -> None:
    """Leave the nodes as the run found them: no ftmoe.io annotations or labels, no events
    from the run (two Observe policies wrote them; no other policy existed)."""
    for node in core.list_node().items:
        meta = node.metadata
        annotations = {k: None for k in (meta.annotations or {}) if k.startswith("ftmoe.io/")}
        labels = {k: None for k in (meta.labels or {}) if k.startswith("ftmoe.io/")}
        if annotations or labels:
            core.patch_node(meta.name, {"metadata": {"annotations": annotations, "labels": labels}})
    for event in core.list_namespaced_event("default").items:
        if event.involved_object.kind == "Node" and event.metadata.creation_timestamp.timestamp() >= since:
            core.delete_namespaced_event(event.metadata.name, "default")


def start_operator(cluster: Any, argv: list[str], ports: Ports) -> None:
    from ftmoe.cluster import processes, waiting
    from ftmoe.cluster.local import http_ok

    processes.start(cluster.processes_dir, "drift-operator", argv)
    waiting.wait_for(
        lambda: http_ok(f"http://127.0.0.1:{ports.health}/healthz"), 120, "the operator's liveness endpoint", error=RuntimeError
    )


def restart_operator(api: Any, cluster: Any, state_dir: Path, argv: list[str], ports: Ports, log: Any) -> dict[str, Any]:
    """Stop the operator and start it again on the same state dir: the tuned policy must
    serve the same tuned model and go on with the same buffer."""
    from ftmoe.cluster import processes, waiting

    def seen() -> dict[str, Any]:
        status = api.get_cluster_custom_object(GROUP, VERSION, PLURAL, TUNED).get("status") or {}
        with np.load(state_dir / "buffers" / f"{TUNED}.npz", allow_pickle=False) as z:
            first, last, length = float(z["times"][0]), float(z["times"][-1]), len(z["times"])
        return {
            "version": (status.get("model") or {}).get("version"),
            "lastRun": status.get("lastRun"),
            "buffer_intervals": length,
            "buffer_since": first,
            "buffer_last": last,
        }

    def rows_after(t: float) -> int:
        with np.load(state_dir / "buffers" / f"{TUNED}.npz", allow_pickle=False) as z:
            return int((z["times"] > t).sum())

    before = seen()
    processes.stop(cluster.processes_dir, "drift-operator")
    stopped = seen()
    start_operator(cluster, argv, ports)
    # Counted in the saved buffer (one row per interval while it is small), not by lastRun:
    # an unchanged status is written only every minute (operator/interval.py STATUS_REFRESH).
    waiting.wait_for(lambda: rows_after(stopped["buffer_last"]) >= 3, 120, "three intervals of the restarted operator", error=RuntimeError)
    after = seen()
    log(
        f"restart: model {before['version']} -> {after['version']}, buffer {stopped['buffer_intervals']} -> "
        f"{after['buffer_intervals']} intervals"
    )
    return {"before": before, "stopped": stopped, "after": after}


def curves(recorded: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Self-graded F1 per chunk of ``--chunk`` intervals counted from the drift, and pooled
    over the pre-drift intervals and over the second half after the drift."""
    from ftmoe.operator.learning.grading import grade

    drift, step = recorded["drift_time"], args.step
    out: dict[str, Any] = {}
    for name, b in recorded["buffers"].items():
        times, classes = b["times"], [*map(str, b["classes"]), "unknown"]
        nodes = [str(n) for n in b["nodes"]]

        def graded(
            lo: float, hi: float, times: np.ndarray = times, b: dict[str, Any] = b, nodes: list[str] = nodes, classes: list[str] = classes
        ) -> dict[str, Any]:
            sel = (times >= drift + lo * step) & (times < drift + hi * step)
            g = grade(
                times[sel], b["risk"][sel], b["observed"][sel], b["predicted"][sel], nodes, classes, args.threshold, args.horizon * step
            )
            return {
                "from": lo,
                "to": hi,
                "intervals": int(sel.sum()),
                "f1": g.f1,
                "precision": g.precision,
                "recall": g.recall,
                "faults": g.faults,
                "alarms": g.alarms,
            }

        starts = range(-(args.pre // args.chunk) * args.chunk, args.post, args.chunk)
        chunks = [c for c in (graded(s, s + args.chunk) for s in starts) if c["intervals"] >= args.chunk // 2]
        out[name] = {"pre_drift": graded(-args.pre, 0), "late": graded(args.post // 2, args.post), "chunks": chunks}
    return out


def summarise(c: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Per policy: its pre-drift F1, the F1 of the second half after the drift (both pooled
    over all their alarms and faults), and when the chunk curve first came back within
    ``--tolerance`` of the pre-drift F1 and how often it stayed there."""
    s: dict[str, Any] = {}
    for name in (TUNED, FROZEN):
        pre = c[name]["pre_drift"]["f1"]
        after = [r for r in c[name]["chunks"] if r["from"] >= 0 and r["f1"] is not None]
        within = [pre is not None and r["f1"] >= pre - args.tolerance for r in after]
        first = next((i for i, w in enumerate(within) if w), None)
        s[name] = {
            "pre_drift_f1": pre,
            "late_f1": c[name]["late"]["f1"],
            "chunks_within_tolerance": f"{sum(within)}/{len(within)}",
            "first_back_within_after_intervals": after[first]["to"] if first is not None else None,
            "within_from_then_on": f"{sum(within[first:])}/{len(within) - first}" if first is not None else None,
        }
    return s


def markdown(c: dict[str, Any], s: dict[str, Any], timeline: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> str:
    md = ["| intervals from the drift | frozen F1 | tuned F1 | faults |", "|---|---|---|---|"]
    by_from = {r["from"]: r for r in c[FROZEN]["chunks"]}
    for r in c[TUNED]["chunks"]:
        f = by_from.get(r["from"], {})
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        md.append(f"| {r['from']}..{r['to']} | {fmt(f.get('f1'))} | {fmt(r['f1'])} | {r['faults']} |")
    t, f = s[TUNED], s[FROZEN]
    versions = sorted({x[TUNED]["version"] for x in timeline if x[TUNED]["version"]})
    back = (
        f"the tuned curve is first back within {args.tolerance} of its pre-drift F1 {t['first_back_within_after_intervals']} "
        f"intervals after the drift and within for {t['within_from_then_on']} chunks from then on"
        if t["first_back_within_after_intervals"] is not None
        else f"the tuned curve never came back within {args.tolerance}"
    )
    md.append(
        f"\nLive on the local cluster: one operator, two Observe policies over the same 16 nodes, {args.step:g} s intervals, "
        f"drift after {args.pre} intervals, self-graded F1 per {args.chunk}-interval chunk (alarm: risk >= {args.threshold}; "
        f"horizon {args.horizon} intervals). Pre-drift F1: tuned policy {t['pre_drift_f1']:.3f}, frozen {f['pre_drift_f1']:.3f}. "
        f"Second half after the drift: tuned {t['late_f1']:.3f}, frozen {f['late_f1']:.3f}. Chunks after the drift within "
        f"{args.tolerance} of the policy's pre-drift F1: tuned {t['chunks_within_tolerance']}, frozen "
        f"{f['chunks_within_tolerance']}; {back} (tuning every {args.tune_every} intervals; {len(versions)} model versions "
        f"served). Command: `.venv/bin/python bench/drift.py --step {args.step:g} --pre {args.pre} --post {args.post} "
        f"--tune-every {args.tune_every} --chunk {args.chunk}` ({seconds / 60:.0f} min)"
    )
    return "\n".join(md)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", default="ftmoe", help="local cluster name")
    p.add_argument("--step", type=float, default=2.0, help="seconds per interval (simulator step and policy interval)")
    p.add_argument("--pre", type=int, default=150, help="intervals before the drift")
    p.add_argument("--post", type=int, default=450, help="intervals after the drift")
    p.add_argument("--chunk", type=int, default=50, help="intervals per point of the F1 curves")
    p.add_argument("--tune-every", type=int, default=50, help="the tuned policy's learning.tuneEvery")
    p.add_argument("--epochs", type=int, default=4, help="learning.tuneEpochs")
    p.add_argument("--horizon", type=int, default=3, help="the policies' horizon, in intervals")
    p.add_argument("--threshold", type=float, default=0.6, help="the cordon threshold (the policies' default): an alarm")
    p.add_argument("--tolerance", type=float, default=0.05, help="recovered = F1 within this of the pre-drift F1")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--report-every", type=float, default=20.0, help="seconds between progress lines")
    p.add_argument("--restart", action="store_true", help="restart the operator at the end and check what it kept")
    p.add_argument("--keep", type=Path, help="keep the operator's state dir (buffers, tuned models) here")
    return p


def main() -> None:
    from ftmoe.cluster.local import LocalCluster

    args = parser().parse_args()
    cluster = LocalCluster(args.cluster)
    if not cluster.control_plane_running() or not cluster.prometheus_running():
        cluster.up()
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ftmoe-drift-"))
    try:
        recorded = run_live(args, cluster, workdir, log=lambda m: print(m, file=sys.stderr, flush=True))
        if args.keep:
            shutil.copytree(workdir / "state", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    c = curves(recorded, args)
    s = summarise(c, args)
    timeline = [{"t": round(x["time"] - recorded["drift_time"], 1), TUNED: x[TUNED], FROZEN: x[FROZEN]} for x in recorded["timeline"]]
    write(
        "drift",
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "summary": s,
            "curves": c,
            "status_timeline": timeline,
            "seconds": time.monotonic() - t0,
        },
        markdown(c, s, timeline, args, time.monotonic() - t0),
    )


if __name__ == "__main__":
    main()
