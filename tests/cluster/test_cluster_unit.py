"""The local-cluster tooling's own behaviour, without starting a cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ftmoe.cluster import ClusterError
from ftmoe.cluster.local import ClusterSettings, LocalCluster
from ftmoe.cluster.nodes import node_manifests
from ftmoe.cluster.progress import Progress
from ftmoe.cluster.toolchain import Toolchain, check_go, run_go


def test_sixteen_nodes_shaped_like_the_paper() -> None:
    nodes = node_manifests(16)
    memory = [n["status"]["capacity"]["memory"] for n in nodes]
    assert memory.count("4Gi") == 8 and memory.count("8Gi") == 8
    assert len({n["metadata"]["name"] for n in nodes}) == 16
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {"zone-a", "zone-b", "zone-c"}
    for n in nodes:
        cap = n["status"]["capacity"]
        assert set(cap) == {"cpu", "memory", "ephemeral-storage", "pods"}


def test_zero_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        node_manifests(0)


def test_busy_port_fails_before_any_build(tmp_path: Path) -> None:
    class NoBuild(Toolchain):
        def ensure(self, progress: Progress | None = None):  # type: ignore[no-untyped-def]
            raise AssertionError("the port check must come before the build")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cluster = LocalCluster("busy", toolchain=NoBuild(root=tmp_path / "cache"), root=tmp_path / "state")
        with pytest.raises(ClusterError, match=rf"port {port} is already in use.*--apiserver-port"):
            cluster.up(ClusterSettings("busy", 1, port, 1), Progress(7, stream=sys.stderr))


def test_missing_go_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match="Go toolchain not found"):
        check_go()


def test_failed_module_download_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if subprocess.run(["go", "version"], capture_output=True).returncode != 0:
        pytest.fail("Go is required to build the local cluster")
    (tmp_path / "go.mod").write_text("module probe\n\ngo 1.24.0\n\nrequire example.invalid/nothing v1.0.0\n")
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    with pytest.raises(ClusterError, match="A Go module download failed"):
        run_go(["mod", "download"], tmp_path, "probe")


def test_cached_toolchain_is_reused_without_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Cached(Toolchain):
        def kubernetes_ok(self) -> bool:
            return True

        etcd_ok = kwok_ok = helm_ok = prometheus_ok = kubernetes_ok

    monkeypatch.setenv("PATH", str(tmp_path))  # no Go: nothing may be built
    lines: list[str] = []

    class Capture:
        def write(self, s: str) -> None:
            lines.append(s)

        def flush(self) -> None:
            pass

    Cached(root=tmp_path).ensure(Progress(5, stream=Capture()))  # type: ignore[arg-type]
    assert sum("cached, reused" in line for line in lines) == 5


def test_down_without_state_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert LocalCluster("nothing", root=tmp_path).down() is False
    assert "not running" in capsys.readouterr().out


def test_cli_rejects_zero_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    from ftmoe.cli import main

    assert main(["cluster", "--name", "unit", "up", "--nodes", "0"]) == 1
    assert "--nodes must be at least 1" in capsys.readouterr().err


def test_cli_rejects_more_pods_per_node_than_a_node_holds(capsys: pytest.CaptureFixture[str]) -> None:
    from ftmoe.cli import main

    assert main(["cluster", "--name", "unit", "up", "--pods-per-node", "111"]) == 1
    assert "--pods-per-node must be between 0 and 110" in capsys.readouterr().err


def test_heartbeats_slow_with_the_node_count_and_stay_inside_the_grace_period() -> None:
    from ftmoe.cluster.scale import GRACE_PERIOD_SECONDS, Heartbeat, render_heartbeat_stage

    assert Heartbeat.for_nodes(16) == Heartbeat(10.0, 40)  # kwok's own cadence for small clusters
    big = Heartbeat.for_nodes(5000)
    assert big.status_seconds == 100.0 and big.lease_seconds == GRACE_PERIOD_SECONDS - 20
    assert big.status_seconds * 1.5 < GRACE_PERIOD_SECONDS  # jitter included, nodes never go NotReady
    for n in (100, 1000, 2000, 5000):
        beat = Heartbeat.for_nodes(n)
        assert n / beat.status_seconds <= 50.0 + 1e-9  # status writes per second
        assert n <= 2000 or beat.lease_seconds == GRACE_PERIOD_SECONDS - 20  # above 2,000 the Lease is capped by the grace period
    stage = (Path(__file__).parents[2] / "ftmoe" / "cluster" / "stages" / "node-heartbeat.yaml").read_text()
    rendered = render_heartbeat_stage(stage, big)
    assert "durationMilliseconds: 100000" in rendered and "jitterDurationMilliseconds: 50000" in rendered


def test_load_pods_are_bound_small_and_named_after_their_node() -> None:
    from ftmoe.cluster.scale import create_load_pods, load_pod

    pod = load_pod("node-7", 3)
    assert pod["metadata"]["name"] == "load-node-7-3" and pod["spec"]["nodeName"] == "node-7"
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "10m"
    made: list[str] = []
    assert create_load_pods(lambda body: made.append(body["metadata"]["name"]), ["a", "b"], 2, print) == 4
    assert sorted(made) == ["load-a-0", "load-a-1", "load-b-0", "load-b-1"]


def test_the_service_account_kubeconfig_carries_its_ca_inline(tmp_path: Path) -> None:
    """The image's operator reads the kubeconfig where the admin's CA file is not."""
    import base64

    from ftmoe.cluster.operator_access import self_contained

    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nabc\n")
    entry = {"name": "c", "cluster": {"server": "https://127.0.0.1:1", "certificate-authority": "pki/ca.crt"}}
    out = self_contained(entry, tmp_path)
    assert "certificate-authority" not in out["cluster"] and out["cluster"]["server"] == "https://127.0.0.1:1"
    assert base64.b64decode(out["cluster"]["certificate-authority-data"]) == b"-----BEGIN CERTIFICATE-----\nabc\n"
    assert self_contained({"name": "c", "cluster": {"server": "s", "insecure-skip-tls-verify": True}}, tmp_path)["cluster"] == {
        "server": "s",
        "insecure-skip-tls-verify": True,
    }


class ReloadingPrometheus:
    """A stand-in for Prometheus' /-/reload: answers ``status`` and counts the reloads."""

    def __init__(self, status: int):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        outer = self
        self.reloads = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                outer.reloads += 1
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"" if status == 200 else b"loading groups failed: bad rule")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        Thread(target=self.server.serve_forever, daemon=True).start()


def cluster_with_prometheus(tmp_path: Path, prometheus: ReloadingPrometheus) -> LocalCluster:
    import json
    from dataclasses import asdict

    cluster = LocalCluster("rules", root=tmp_path)
    cluster.state.mkdir(parents=True)
    cluster.settings_file.write_text(json.dumps(asdict(ClusterSettings("rules", 16, 1, prometheus.port))))
    cluster.prometheus_dir.mkdir()
    cluster.prometheus_config.write_text("global: {scrape_interval: 5s}\nscrape_configs: []\n")  # an older release's: no rule_files
    return cluster


def test_loading_rules_brings_an_older_config_up_to_date_and_reloads(tmp_path: Path) -> None:
    import yaml

    prometheus = ReloadingPrometheus(200)
    cluster = cluster_with_prometheus(tmp_path, prometheus)
    path = cluster.load_rules("ftmoe-p", "groups: []\n")
    assert path.read_text() == "groups: []\n" and prometheus.reloads == 1
    assert yaml.safe_load(cluster.prometheus_config.read_text())["rule_files"] == [str(cluster.rules_dir / "*.yml")]
    prometheus.server.shutdown()


def test_rules_prometheus_refuses_are_removed_and_quoted(tmp_path: Path) -> None:
    prometheus = ReloadingPrometheus(500)
    cluster = cluster_with_prometheus(tmp_path, prometheus)
    with pytest.raises(ClusterError, match="refused the rules in ftmoe-p.yml: loading groups failed"):
        cluster.load_rules("ftmoe-p", "groups: [oops]\n")
    assert not (cluster.rules_dir / "ftmoe-p.yml").exists()
    prometheus.server.shutdown()


def test_loading_rules_into_a_cluster_that_is_not_up_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="not up"):
        LocalCluster("absent", root=tmp_path).load_rules("ftmoe-p", "groups: []\n")
