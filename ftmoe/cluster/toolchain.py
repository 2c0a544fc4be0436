"""Build the cluster's binaries from their Go modules, once, into a versioned cache.

Nothing here downloads a prebuilt binary: kube-apiserver, kube-controller-manager,
kube-scheduler and kubectl come from ``k8s.io/kubernetes``, etcd from
``go.etcd.io/etcd/server/v3``, kwok/kwokctl from ``sigs.k8s.io/kwok`` and helm (for the
chart's tests) from ``helm.sh/helm/v3``, each compiled in a throwaway Go module under the
cache folder. Prometheus and promtool come from Debian's package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ftmoe.cluster.errors import ClusterError
from ftmoe.cluster.progress import Progress
from ftmoe.cluster.versions import Versions, cache_root

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The Go version the pinned releases' go.mod files ask for at least.
MIN_GO = (1, 24)


@dataclass(frozen=True)
class Binaries:
    """Paths of every binary the local cluster runs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    kwokctl: Path
    prometheus: Path
    promtool: Path
    helm: Path
    stages: Path  # kwok's stock stages, taken from its module
    own_stages: Path  # the project's stages, shipped in the package


def go_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        # A user's go.work must not leak into the throwaway modules, and a go.mod asking
        # for a newer Go must fail clearly rather than try to download a toolchain.
        GOWORK="off",
        GOTOOLCHAIN="local",
        # Static binaries: no C toolchain needed, and they run from any folder.
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod",
        GO111MODULE="on",
        PWD=str(workdir),
    )
    return env


def check_go() -> str:
    """Return the Go version, or explain how to get a suitable one."""
    go = shutil.which("go")
    if go is None:
        raise ClusterError(
            "Go toolchain not found on PATH: the local cluster is built from source. "
            f"Install Go >= {MIN_GO[0]}.{MIN_GO[1]} (Debian: `apt-get install golang-go` "
            "if recent enough, or the official tarball) and run the command again."
        )
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise ClusterError(
            f"`go version` says {out.strip()!r}; the pinned Kubernetes release needs Go >= "
            f"{MIN_GO[0]}.{MIN_GO[1]}. Install a newer Go and run the command again."
        )
    return out.strip()


def run_go(args: list[str], workdir: Path, what: str) -> str:
    proc = subprocess.run(["go", *args], cwd=workdir, env=go_env(workdir), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        hint = ""
        if re.search(
            r"dial tcp|no such host|i/o timeout|TLS handshake|404 Not Found|410 Gone|GOPROXY|"
            r"module lookup disabled|unrecognized import path|reading https?://",
            tail,
        ):
            proxy = go_env(workdir).get("GOPROXY") or "the default proxy"
            hint = (
                f"\nA Go module download failed: check that the module proxy ({proxy}) is "
                "reachable from this machine, or set GOPROXY to a mirror you can reach."
            )
        raise ClusterError(f"{what} failed (go {' '.join(args[:2])} ...):\n{tail}{hint}")
    return proc.stdout


def binary_version(path: Path, flag: str = "--version") -> str:
    try:
        proc = subprocess.run([str(path), flag], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout + proc.stderr).strip()


class Toolchain:
    """Knows where each binary is cached and how to build it when it is not."""

    def __init__(self, versions: Versions | None = None, root: Path | None = None):
        self.versions = versions or Versions()
        self.root = (root or cache_root()) / self.versions.key
        self.bin = self.root / "bin"
        self.src = self.root / "src"

    # -- what is cached ---------------------------------------------------------------

    def binaries(self) -> Binaries:
        return Binaries(
            kube_apiserver=self.bin / "kube-apiserver",
            kube_controller_manager=self.bin / "kube-controller-manager",
            kube_scheduler=self.bin / "kube-scheduler",
            kubectl=self.bin / "kubectl",
            etcd=self.bin / "etcd",
            kwok=self.bin / "kwok",
            kwokctl=self.bin / "kwokctl",
            prometheus=Path(shutil.which("prometheus") or "/usr/bin/prometheus"),
            promtool=Path(shutil.which("promtool") or "/usr/bin/promtool"),
            helm=self.bin / "helm",
            stages=self.root / "stages",
            own_stages=Path(__file__).parent / "stages",
        )

    def kubernetes_ok(self) -> bool:
        want = f"Kubernetes {self.versions.kubernetes}"
        servers_ok = all(want in binary_version(self.bin / name) for name in KUBE_BINARIES[:3])
        return servers_ok and self.versions.kubernetes in binary_version(self.bin / "kubectl", "version")

    def etcd_ok(self) -> bool:
        return f"etcd Version: {self.versions.etcd.lstrip('v')}" in binary_version(self.bin / "etcd")

    def kwok_ok(self) -> bool:
        stages_ok = all((self.root / "stages" / f).is_file() for f in ("node-initialize.yaml", "pod-general.yaml"))
        return (
            stages_ok
            and self.versions.kwok in binary_version(self.bin / "kwokctl")
            and self.versions.kwok in binary_version(self.bin / "kwok")
        )

    def helm_ok(self) -> bool:
        return f'Version:"{self.versions.helm}"' in binary_version(self.bin / "helm", "version")

    def prometheus_ok(self) -> bool:
        return "prometheus, version" in binary_version(self.binaries().prometheus)

    # -- building ---------------------------------------------------------------------

    def ensure(self, progress: Progress | None = None) -> Binaries:
        """Build whatever is missing from the cache; reuse what is there."""
        progress = progress or Progress(total=5)
        self.bin.mkdir(parents=True, exist_ok=True)
        self.src.mkdir(parents=True, exist_ok=True)
        steps = [
            (
                f"Kubernetes {self.versions.kubernetes} (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)",
                self.kubernetes_ok,
                self.build_kubernetes,
                "cold build: about 6-12 minutes on 2 cores",
            ),
            (f"etcd {self.versions.etcd}", self.etcd_ok, self.build_etcd, "cold build: a few minutes"),
            (f"kwok and kwokctl {self.versions.kwok}", self.kwok_ok, self.build_kwok, "cold build: a few minutes"),
            (f"helm {self.versions.helm}", self.helm_ok, self.build_helm, "cold build: a few minutes"),
            ("Prometheus and promtool (Debian package)", self.prometheus_ok, install_prometheus, "apt-get install"),
        ]
        for title, ok, build, hint in steps:
            if ok():
                progress.skip(f"{title}: cached, reused")
                continue
            if build is not install_prometheus:
                check_go()
            with progress.step(f"{title} -- {hint}"):
                build()
            if not ok():
                raise ClusterError(f"{title}: built, but the result does not report the pinned version")
        return self.binaries()

    def _module(self, name: str, go_mod: str, main_go: str | None = None) -> Path:
        workdir = self.src / name
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        (workdir / "go.mod").write_text(go_mod)
        if main_go is not None:
            (workdir / "main.go").write_text(main_go)
        return workdir

    def _install(self, built: Path) -> None:
        for path in built.iterdir():
            os.replace(path, self.bin / path.name)

    def build_kubernetes(self) -> None:
        v = self.versions.kubernetes
        minor = v.lstrip("v").split(".")[1]
        staging_v = "v0." + ".".join(v.lstrip("v").split(".")[1:])
        workdir = self._module("kubernetes", f"module ftmoe.local/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes {v}\n")
        run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{v}"], workdir, f"downloading k8s.io/kubernetes@{v}")
        # k8s.io/kubernetes points its staging modules at ./staging; outside the repository
        # each must be replaced by its published version (v0.MINOR.PATCH).
        upstream = Path(run_go(["env", "GOMODCACHE"], workdir, "go env").strip()) / f"k8s.io/kubernetes@{v}" / "go.mod"
        staged = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging", upstream.read_text(), re.M)
        if not staged:
            raise ClusterError(f"no staging replace lines found in {upstream}")
        with (workdir / "go.mod").open("a") as fh:
            for module in staged:
                fh.write(f"replace {module} => {module} {staging_v}\n")
        (workdir / "tools.go").write_text(
            "//go:build tools\n\npackage tools\n\nimport (\n" + "".join(f'\t_ "k8s.io/kubernetes/cmd/{b}"\n' for b in KUBE_BINARIES) + ")\n"
        )
        run_go(["mod", "tidy", "-e"], workdir, "resolving the Kubernetes module graph")
        ldflags = ["-s", "-w"]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            ldflags += [
                f"-X {pkg}.gitVersion={v}",
                f"-X {pkg}.gitMajor=1",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
                f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            ]
        with tempfile.TemporaryDirectory(dir=self.root) as out:
            run_go(
                [
                    "build",
                    "-trimpath",
                    "-ldflags",
                    " ".join(ldflags),
                    "-o",
                    out + "/",
                    *[f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES],
                ],
                workdir,
                "building Kubernetes",
            )
            self._install(Path(out))

    def build_etcd(self) -> None:
        v = self.versions.etcd
        workdir = self._module(
            "etcd",
            f"module ftmoe.local/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 {v}\n",
            'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n',
        )
        run_go(["mod", "tidy", "-e"], workdir, "resolving the etcd module graph")
        with tempfile.TemporaryDirectory(dir=self.root) as out:
            run_go(["build", "-trimpath", "-ldflags", "-s -w", "-o", out + "/etcd", "."], workdir, "building etcd")
            self._install(Path(out))

    def build_kwok(self) -> None:
        v = self.versions.kwok
        workdir = self._module("kwok", f"module ftmoe.local/kwok\n\ngo 1.24.0\n\nrequire sigs.k8s.io/kwok {v}\n")
        (workdir / "tools.go").write_text(
            '//go:build tools\n\npackage tools\n\nimport (\n\t_ "sigs.k8s.io/kwok/cmd/kwok"\n\t_ "sigs.k8s.io/kwok/cmd/kwokctl"\n)\n'
        )
        run_go(["mod", "tidy", "-e"], workdir, "resolving the kwok module graph")
        ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={v}"
        with tempfile.TemporaryDirectory(dir=self.root) as out:
            run_go(
                ["build", "-trimpath", "-ldflags", ldflags, "-o", out + "/", "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok/cmd/kwokctl"],
                workdir,
                "building kwok",
            )
            self._install(Path(out))
        # kwok's stock stages ship inside its module; kwokctl needs them passed explicitly.
        modroot = Path(run_go(["env", "GOMODCACHE"], workdir, "go env").strip()) / f"sigs.k8s.io/kwok@{v}"
        stages = self.root / "stages"
        stages.mkdir(exist_ok=True)
        # The node heartbeat is our own (ftmoe/cluster/stages/), so the simulator's faults survive it.
        for group, folders in (("node-initialize", ("node/fast",)), ("pod-general", ("pod/general",))):
            docs = [
                p.read_text()
                for folder in folders
                for p in sorted((modroot / "kustomize/stage" / folder).glob("*.yaml"))
                if p.name != "kustomization.yaml"
            ]
            if not docs:
                raise ClusterError(f"kwok {v} ships no stages under kustomize/stage/{folders}")
            (stages / f"{group}.yaml").write_text("\n---\n".join(d.strip() for d in docs) + "\n")

    def build_helm(self) -> None:
        v = self.versions.helm
        workdir = self._module("helm", f"module ftmoe.local/helm\n\ngo 1.24.0\n\nrequire helm.sh/helm/v3 {v}\n")
        (workdir / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n')
        run_go(["mod", "tidy", "-e"], workdir, "resolving the helm module graph")
        # As helm's own Makefile does: without these, `helm template` assumes Kubernetes 1.20.
        major, minor = self.versions.kubernetes.lstrip("v").split(".")[:2]
        ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={v}" + "".join(
            f" -X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMajor={major} -X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMinor={minor}"
            for pkg in ("chartutil", "lint/rules")
        )
        with tempfile.TemporaryDirectory(dir=self.root) as out:
            run_go(["build", "-trimpath", "-ldflags", ldflags, "-o", out + "/helm", "helm.sh/helm/v3/cmd/helm"], workdir, "building helm")
            self._install(Path(out))


def install_prometheus() -> None:
    """Install Debian's prometheus package (the server binary and promtool)."""
    if shutil.which("apt-get") is None:
        raise ClusterError(
            "Prometheus is not installed and apt-get is not available: install a Prometheus 2.x "
            "server binary on PATH as `prometheus` and run the command again."
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]):
        proc = subprocess.run(sudo + args, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise ClusterError(
                f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}\n"
                "Install Debian's `prometheus` package by hand and run the command again."
            )
