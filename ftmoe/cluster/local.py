"""Start, inspect and stop the local cluster: kwokctl's control plane plus Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ftmoe.cluster import processes
from ftmoe.cluster.errors import ClusterError
from ftmoe.cluster.nodes import node_manifests
from ftmoe.cluster.progress import Progress, format_duration
from ftmoe.cluster.scale import Heartbeat, create_load_pods, pod_creator, render_heartbeat_stage
from ftmoe.cluster.toolchain import Binaries, Toolchain
from ftmoe.cluster.versions import state_root

DEFAULT_NAME = "ftmoe"
DEFAULT_NODES = 16
DEFAULT_APISERVER_PORT = 16443
DEFAULT_PROMETHEUS_PORT = 19090
SCRAPE_INTERVAL = "5s"
# Experiments that step the simulator faster than the scrape interval (bench/drift.py)
# register their target here instead; one job, so the default stays cheap.
FAST_SCRAPE_INTERVAL = "1s"


@dataclass
class ClusterSettings:
    name: str = DEFAULT_NAME
    nodes: int = DEFAULT_NODES
    apiserver_port: int = DEFAULT_APISERVER_PORT
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    pods_per_node: int = 0  # bound pods in namespace ftmoe-load on every node (scale tests)


def port_busy(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def parse_components(text: str) -> list[str]:
    """`kwokctl get components` prints one component per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


class LocalCluster:
    """One named local cluster. Its state folder holds everything ``up`` created."""

    def __init__(self, name: str = DEFAULT_NAME, toolchain: Toolchain | None = None, root: Path | None = None):
        self.name = name
        self.toolchain = toolchain or Toolchain()
        self.state = (root or state_root()) / "clusters" / name
        self.kubeconfig = self.state / "kubeconfig"
        self.kwok_workdir = self.state / "kwok"
        self.prometheus_dir = self.state / "prometheus"
        self.targets_dir = self.prometheus_dir / "targets"
        self.fast_targets_dir = self.targets_dir / "fast"
        self.prometheus_config = self.prometheus_dir / "prometheus.yml"
        self.rules_dir = self.prometheus_dir / "rules"  # rule files Prometheus loads (`ftmoe operator recording-rules --local-cluster`)
        self.settings_file = self.state / "settings.json"
        self.processes_dir = self.state / "processes"

    # -- state --------------------------------------------------------------------------

    def settings(self) -> ClusterSettings | None:
        if not self.settings_file.is_file():
            return None
        return ClusterSettings(**json.loads(self.settings_file.read_text()))

    @property
    def prometheus_url(self) -> str:
        settings = self.settings()
        port = settings.prometheus_port if settings else DEFAULT_PROMETHEUS_PORT
        return f"http://127.0.0.1:{port}"

    def _env(self) -> dict[str, str]:
        return dict(os.environ, KWOK_WORKDIR=str(self.kwok_workdir))

    def kwokctl(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        binaries = self.toolchain.binaries()
        proc = subprocess.run(
            [str(binaries.kwokctl), "--name", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kwokctl {' '.join(args[:2])} failed:\n{(proc.stderr or proc.stdout).strip()[-3000:]}")
        return proc

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.toolchain.binaries().kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc

    def control_plane_running(self) -> bool:
        if not self.kubeconfig.is_file():
            return False
        proc = self.kubectl("get", "--raw", "/readyz", check=False, timeout=10)
        return proc.returncode == 0 and proc.stdout.strip() == "ok"

    def prometheus_running(self) -> bool:
        return http_ok(self.prometheus_url + "/-/ready")

    # -- up -----------------------------------------------------------------------------

    def up(self, settings: ClusterSettings | None = None, progress: Progress | None = None) -> Binaries:
        settings = settings or ClusterSettings(name=self.name)
        progress = progress or Progress(total=9 if settings.pods_per_node else 8)  # the toolchain's 5 steps, then the cluster's
        started = time.monotonic()

        existing = self.settings()
        if existing and self.control_plane_running():
            binaries = self.toolchain.ensure(progress)
            progress.skip(f"control plane: already running (kubeconfig {self.kubeconfig})")
            if not self.prometheus_running():
                self._start_prometheus(binaries, existing.prometheus_port, progress)
            else:
                progress.skip(f"Prometheus: already running at {self.prometheus_url}")
                self._refresh_prometheus_config(existing.prometheus_port, progress)
            self._ensure_nodes(settings.nodes, progress)
            self._ensure_pods(settings, progress)
            progress.say(f"cluster {self.name!r} is up: {settings.nodes} nodes, Prometheus at {self.prometheus_url}")
            return binaries
        if existing:
            progress.say(f"cluster {self.name!r} has stale state from an earlier run; cleaning it up")
            self.down(quiet=True)

        # Checked before the build, which can take many minutes when cold.
        for port, flag in ((settings.apiserver_port, "--apiserver-port"), (settings.prometheus_port, "--prometheus-port")):
            if port_busy(port):
                raise ClusterError(
                    f"port {port} is already in use on 127.0.0.1: stop what is using it "
                    f"(`ss -ltnp 'sport = :{port}'` shows it) or pick another with {flag}"
                )
        binaries = self.toolchain.ensure(progress)

        self.state.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps(settings.__dict__))
        with progress.step(f"control plane (kwokctl create cluster --runtime=binary, Kubernetes {self.toolchain.versions.kubernetes})"):
            self._create_control_plane(binaries, settings)
        self._start_prometheus(binaries, settings.prometheus_port, progress)
        self._ensure_nodes(settings.nodes, progress)
        self._ensure_pods(settings, progress)
        progress.say(
            f"cluster {self.name!r} is up in {format_duration(time.monotonic() - started)}: "
            f"{settings.nodes} nodes, Prometheus at {self.prometheus_url}\n"
            f"  kubectl:    ftmoe cluster kubectl get nodes\n"
            f"  kubeconfig: export KUBECONFIG={self.kubeconfig}"
        )
        return binaries

    def _create_control_plane(self, binaries: Binaries, settings: ClusterSettings) -> None:
        beat = Heartbeat.for_nodes(settings.nodes)
        rendered = self.state / "stages"
        rendered.mkdir(parents=True, exist_ok=True)
        for own in binaries.own_stages.glob("*.yaml"):
            (rendered / own.name).write_text(render_heartbeat_stage(own.read_text(), beat))
        stages = sorted(str(p) for p in [*binaries.stages.glob("*.yaml"), *rendered.glob("*.yaml")])
        args = [
            "create",
            "cluster",
            "--runtime=binary",
            f"--kubeconfig={self.kubeconfig}",
            f"--kube-apiserver-port={settings.apiserver_port}",
            "--secure-port=true",
            # RBAC and admission on, as in a real cluster: the operator's ClusterRole is tested.
            "--kube-authorization=true",
            "--kube-admission=true",
            f"--kube-apiserver-binary={binaries.kube_apiserver}",
            f"--kube-controller-manager-binary={binaries.kube_controller_manager}",
            f"--kube-scheduler-binary={binaries.kube_scheduler}",
            f"--kwok-controller-binary={binaries.kwok}",
            f"--etcd-binary={binaries.etcd}",
            f"--node-lease-duration-seconds={beat.lease_seconds}",
            "--wait=3m",
            "--timeout=5m",
        ]
        for stage in stages:
            args.append(f"--config={stage}")
        self.kwokctl(*args, timeout=600)
        deadline = time.monotonic() + 120
        while not self.control_plane_running():
            if time.monotonic() > deadline:
                raise ClusterError(f"the API server did not become ready; logs: {self.kwok_workdir}/clusters/{self.name}/logs")
            time.sleep(1)

    def _write_prometheus_config(self, port: int) -> bool:
        """Writes prometheus.yml; returns whether its content changed."""
        self.fast_targets_dir.mkdir(parents=True, exist_ok=True)
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(self.rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    # The simulator (and anything else) registers itself by writing a
                    # file_sd JSON file here; Prometheus picks it up without a restart.
                    "job_name": "ftmoe-targets",
                    "honor_labels": True,
                    "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")], "refresh_interval": "5s"}],
                },
                {
                    "job_name": "ftmoe-targets-fast",
                    "honor_labels": True,
                    "scrape_interval": FAST_SCRAPE_INTERVAL,
                    "file_sd_configs": [{"files": [str(self.fast_targets_dir / "*.json")], "refresh_interval": "5s"}],
                },
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            ],
        }
        text = yaml.safe_dump(config, sort_keys=False)
        if self.prometheus_config.is_file() and self.prometheus_config.read_text() == text:
            return False
        self.prometheus_config.write_text(text)
        return True

    def _refresh_prometheus_config(self, port: int, progress: Progress) -> None:
        """A running Prometheus from an older release gets the current scrape jobs."""
        if self._write_prometheus_config(port):
            try:
                self._reload_prometheus()
                progress.say("Prometheus scrape configuration updated and reloaded")
            except OSError as err:
                raise ClusterError(f"could not reload Prometheus ({err}); run `ftmoe cluster down` and `ftmoe cluster up`") from err

    def _reload_prometheus(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.prometheus_url + "/-/reload", method="POST"), timeout=30).close()

    def load_rules(self, name: str, text: str) -> Path:
        """Write a rule file for the running Prometheus and reload it; a file Prometheus
        refuses is removed again, and the error says why. The configuration is brought up to
        date first: one written by an older release has no ``rule_files``."""
        settings = self.settings()
        if settings is None:
            raise ClusterError(f"cluster {self.name!r} is not up; start it with `ftmoe cluster up`")
        self._write_prometheus_config(settings.prometheus_port)
        path = self.rules_dir / f"{name}.yml"
        path.write_text(text)
        try:
            self._reload_prometheus()
        except urllib.error.HTTPError as err:
            path.unlink()
            detail = err.read().decode(errors="replace").strip()[:500]
            raise ClusterError(f"Prometheus refused the rules in {path.name}: {detail}") from err
        except OSError as err:
            path.unlink()
            raise ClusterError(f"could not reach the local cluster's Prometheus at {self.prometheus_url} ({err}); is it up?") from err
        return path

    def _start_prometheus(self, binaries: Binaries, port: int, progress: Progress) -> None:
        with progress.step(f"Prometheus on 127.0.0.1:{port} (scrapes targets in {self.targets_dir})"):
            if not binaries.prometheus.exists():
                raise ClusterError("Prometheus binary missing; run `ftmoe cluster up` again to install it")
            self._write_prometheus_config(port)
            log = (self.prometheus_dir / "prometheus.log").open("ab")
            proc = subprocess.Popen(
                [
                    str(binaries.prometheus),
                    f"--config.file={self.prometheus_config}",
                    f"--storage.tsdb.path={self.prometheus_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            (self.prometheus_dir / "prometheus.pid").write_text(str(proc.pid))
            deadline = time.monotonic() + 60
            while not http_ok(f"http://127.0.0.1:{port}/-/ready"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ClusterError(f"Prometheus did not start; see {self.prometheus_dir / 'prometheus.log'}")
                time.sleep(0.5)

    def _ensure_nodes(self, count: int, progress: Progress) -> None:
        with progress.step(f"{count} fake nodes (kwok), waiting until all are Ready"):
            manifests: dict[str, Any] = {"apiVersion": "v1", "kind": "List", "items": node_manifests(count)}
            self.kubectl(
                "apply",
                "--server-side",
                "--field-manager=ftmoe-cluster",
                "-f",
                "-",
                input=json.dumps(manifests),
                timeout=max(120, count / 5),
            )
            names = [m["metadata"]["name"] for m in manifests["items"]]
            deadline = time.monotonic() + max(180, count / 10)
            while True:
                ready = self.ready_nodes()
                if all(n in ready for n in names):
                    break
                if time.monotonic() > deadline:
                    missing = sorted(set(names) - ready)
                    raise ClusterError(
                        f"nodes not Ready after {max(180, count // 10)}s: {', '.join(missing)}; is the kwok controller running? "
                        f"logs: {self.kwok_workdir}/clusters/{self.name}/logs"
                    )
                time.sleep(1 if count <= 500 else count / 500)

    def _ensure_pods(self, settings: ClusterSettings, progress: Progress) -> None:
        if settings.pods_per_node <= 0:
            return
        total = settings.pods_per_node * settings.nodes
        with progress.step(f"{total} pods bound to the nodes ({settings.pods_per_node} per node, namespace ftmoe-load)"):
            names = [m["metadata"]["name"] for m in node_manifests(settings.nodes)]
            create_load_pods(pod_creator(str(self.kubeconfig)), names, settings.pods_per_node, progress.say)

    def nodes(self) -> list[dict[str, Any]]:
        proc = self.kubectl("get", "nodes", "-o", "json", check=False, timeout=30)
        return json.loads(proc.stdout)["items"] if proc.returncode == 0 else []

    @staticmethod
    def ready(nodes: list[dict[str, Any]]) -> set[str]:
        return {
            n["metadata"]["name"]
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        }

    def ready_nodes(self) -> set[str]:
        """Through the server-side table (NAME STATUS ...): at 5,000 nodes the JSON list is 25 MB a poll."""
        proc = self.kubectl("get", "nodes", "--no-headers", check=False, timeout=60)
        if proc.returncode != 0:
            return set()
        rows = (line.split() for line in proc.stdout.splitlines())
        return {r[0] for r in rows if len(r) > 1 and "Ready" in r[1].split(",")}

    # -- status, down -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        settings = self.settings()
        if settings is None:
            return {"name": self.name, "running": False}
        running = self.control_plane_running()
        info: dict[str, Any] = {
            "name": self.name,
            "running": running,
            "kubeconfig": str(self.kubeconfig),
            "apiserver": f"https://127.0.0.1:{settings.apiserver_port}",
            "prometheus": self.prometheus_url,
            "prometheus_ready": self.prometheus_running(),
            "versions": self.toolchain.versions.__dict__,
        }
        if running:
            nodes = self.nodes()
            info["nodes"] = len(nodes)
            info["nodes_ready"] = len(self.ready(nodes))
            comps = self.kwokctl("get", "components", check=False, timeout=30)
            info["components"] = parse_components(comps.stdout)
        info["processes"] = processes.running(self.processes_dir)
        return info

    def _stop_prometheus(self) -> None:
        pid_file = self.prometheus_dir / "prometheus.pid"
        if not pid_file.is_file():
            return
        pid = int(pid_file.read_text().strip() or 0)
        # Only stop the process `up` started: check it is still our Prometheus.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            cmdline = ""
        if pid and "prometheus" in cmdline and str(self.prometheus_dir) in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    def down(self, quiet: bool = False) -> bool:
        """Stop what ``up`` started and remove its state. Returns False if nothing was there."""
        if not self.state.exists():
            if not quiet:
                print(f"cluster {self.name!r} is not running (no state in {self.state})")
            return False
        stopped = processes.stop_all(self.processes_dir)
        if stopped and not quiet:
            print(f"stopped {', '.join(stopped)}")
        self._stop_prometheus()
        if self.toolchain.binaries().kwokctl.exists() and (self.kwok_workdir / "clusters" / self.name).exists():
            self.kwokctl("delete", "cluster", check=False, timeout=120)
        shutil.rmtree(self.state, ignore_errors=True)
        if not quiet:
            print(f"cluster {self.name!r} stopped and its state removed")
        return True
