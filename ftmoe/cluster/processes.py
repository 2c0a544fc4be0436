"""Background processes that belong to a local cluster (the demo's simulator and
operator): started detached, recorded in the cluster's state folder, and stopped by
`ftmoe cluster down` together with the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def start(folder: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    stop(folder, name)  # a demo run twice replaces, never doubles, its processes
    log = (folder / f"{name}.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    (folder / f"{name}.pid").write_text(str(proc.pid))
    return proc


def alive(folder: Path, name: str) -> int | None:
    """The pid of ``name`` when it still runs (and is still ours), else None."""
    pid_file = folder / f"{name}.pid"
    try:
        pid = int(pid_file.read_text().strip() or 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if pid and "ftmoe" in cmdline else None


def running(folder: Path) -> list[dict[str, object]]:
    """The cluster's background processes that run now (what `ftmoe cluster down` stops)."""
    if not folder.is_dir():
        return []
    found = []
    for pid_file in sorted(folder.glob("*.pid")):
        pid = alive(folder, pid_file.stem)
        if pid is not None:
            found.append({"name": pid_file.stem, "pid": pid, "log": str(folder / f"{pid_file.stem}.log")})
    return found


def stop(folder: Path, name: str, timeout: float = 30.0) -> bool:
    pid_file = folder / f"{name}.pid"
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text().strip() or 0)
    pid_file.unlink(missing_ok=True)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if "ftmoe" not in cmdline:  # the pid was reused by something else: leave it alone
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    return True


def stop_all(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.stem for p in sorted(folder.glob("*.pid")) if stop(folder, p.stem)]
