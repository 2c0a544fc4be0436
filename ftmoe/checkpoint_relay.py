"""``ftmoe checkpoint relay``: the checkpoint contract for training code that never heard of it.

The operator asks for a checkpoint by raising ``ftmoe.io/checkpoint-request`` on the pod
(checkpoint.py); trainers already checkpoint on a signal (Megatron-LM's
``--exit-signal-handler`` saves on SIGTERM and exits) or on a trigger file (a Hugging Face
``TrainerCallback`` that sets ``control.should_save``, instructlab-style trainers). The relay
sits between them, as the container's entrypoint (``ftmoe checkpoint relay ... -- python
train.py``) or as a sidecar with ``shareProcessNamespace`` (``--pid-file``):

1. it reads the pod's annotations (the downwardAPI file, or the pod through the API);
2. on a request newer than the last ``ftmoe.io/checkpoint-ack``, it sends the signal to
   the trainer or writes the trigger file;
3. when a new checkpoint appears (a file matching ``--checkpoint-glob`` newer than the
   request, or ``--done-command`` exiting 0) it patches ``ftmoe.io/checkpoint-ack`` on
   the pod, so the operator evicts at once instead of after its ack timeout.

Nothing is acked that was not seen on disk; a checkpoint that does not come within
``--timeout`` is logged and left to the operator's ack timeout.
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftmoe.checkpoint import ACK, REQUEST, parse_annotations

log = logging.getLogger("ftmoe.checkpoint.relay")
COST = "ftmoe.io/checkpoint-cost-seconds"


class RelayError(RuntimeError):
    """A setting that cannot work; the message says which and the fix."""


@dataclass(frozen=True)
class RelaySettings:
    signal: int | None = None  # send this to the trainer on a request
    trigger_file: Path | None = None  # or write the request id here
    exits: bool = False  # the signal makes the trainer save and exit (Megatron) rather than save and go on
    checkpoint_glob: str | None = None  # a new match means the checkpoint is saved
    done_command: list[str] | None = None  # or this exits 0
    timeout: float = 600.0  # give up waiting for a checkpoint after this long
    poll: float = 1.0
    grace_period: float | None = None  # the pod's terminationGracePeriodSeconds, for the save-and-exit check
    warmup: float = 10.0  # no signal to a trainer younger than this: its handler may not be installed yet

    def check(self, checkpoint_cost: float | None) -> None:
        if (self.signal is None) == (self.trigger_file is None):
            raise RelayError("give exactly one of --signal and --trigger-file: how the trainer is asked to checkpoint")
        if self.checkpoint_glob is None and not self.done_command:
            raise RelayError("give --checkpoint-glob (where checkpoints appear) or --done-command: how the relay sees one was saved")
        if self.exits and self.grace_period is not None and checkpoint_cost is not None and self.grace_period < checkpoint_cost:
            raise RelayError(
                f"the trainer saves on the signal and exits, but terminationGracePeriodSeconds ({self.grace_period:g}s) is shorter "
                f"than the checkpoint ({checkpoint_cost:g}s, {COST}): on an eviction the kubelet would kill it mid-save. "
                f"Set terminationGracePeriodSeconds to at least {checkpoint_cost * 1.2:.0f}, or lower --grace-period if it is wrong"
            )


def newest(pattern: str) -> dict[str, float]:
    """Modification time of every file or folder matching ``pattern``."""
    out = {}
    for p in glob.glob(pattern):
        try:
            out[p] = os.stat(p).st_mtime
        except OSError:
            continue  # removed between glob and stat (a checkpoint rotated away)
    return out


@dataclass
class Waiting:
    request: int
    since: float  # wall clock, as file times are
    before: dict[str, float] = field(default_factory=dict)


class Relay:
    """One request at a time: deliver, wait for the checkpoint, ack. ``tick`` does one step."""

    def __init__(
        self,
        settings: RelaySettings,
        read: Callable[[], dict[str, str]],
        ack: Callable[[int], bool],
        pid: Callable[[], int | None],
        clock: Callable[[], float] = time.time,
    ):
        self.s, self.read, self.ack, self.pid, self.clock = settings, read, ack, pid, clock
        self.handled = 0
        self.waiting: Waiting | None = None
        self.acked: list[int] = []
        self.started = clock()  # when the trainer started (wrap() resets it)

    def pending(self) -> int | None:
        ann = self.read()
        try:
            request, acked = int(ann.get(REQUEST, "0")), int(ann.get(ACK, "0"))
        except ValueError:
            return None
        return request if request > max(acked, self.handled) else None

    def tick(self) -> None:
        if self.waiting is not None:
            self._check()
            return
        request = self.pending()
        if request is not None and (self.s.signal is None or self.clock() - self.started >= self.s.warmup):
            self._deliver(request)

    def _deliver(self, request: int) -> None:
        w = Waiting(request, self.clock(), newest(self.s.checkpoint_glob) if self.s.checkpoint_glob else {})
        if self.s.trigger_file is not None:
            tmp = self.s.trigger_file.with_name(self.s.trigger_file.name + ".tmp")
            tmp.write_text(f"{request}\n")
            tmp.replace(self.s.trigger_file)  # atomic: a trainer polling the file never reads half of it
            log.info("checkpoint request %d: wrote %s", request, self.s.trigger_file)
        else:
            pid = self.pid()
            if pid is None:
                log.warning("checkpoint request %d: no trainer process to signal yet", request)
                return
            assert self.s.signal is not None
            os.kill(pid, self.s.signal)
            log.info("checkpoint request %d: sent %s to pid %d", request, signal.Signals(self.s.signal).name, pid)
        self.waiting = w

    def saved(self, w: Waiting) -> str | None:
        """What shows that a checkpoint was saved since the request, or None."""
        if self.s.checkpoint_glob:
            for path, mtime in newest(self.s.checkpoint_glob).items():
                if mtime > w.before.get(path, w.since - 1.0):
                    return path
        if self.s.done_command and subprocess.run(self.s.done_command, check=False, capture_output=True).returncode == 0:
            return " ".join(self.s.done_command)
        return None

    def _check(self) -> None:
        w = self.waiting
        assert w is not None
        seen = self.saved(w)
        if seen is not None:
            ok = self.ack(w.request)
            log.info("checkpoint request %d: saved (%s)%s", w.request, seen, ", acknowledged" if ok else ", could not acknowledge")
            if ok:
                self.acked.append(w.request)
            self.handled, self.waiting = w.request, None
        elif self.clock() - w.since > self.s.timeout:
            log.warning("checkpoint request %d: no checkpoint within %.0fs; the operator's ack timeout applies", w.request, self.s.timeout)
            self.handled, self.waiting = w.request, None


def wrap(relay: Relay, command: list[str]) -> int:
    """Run the trainer as a child, relaying requests while it runs and forwarding SIGTERM and
    SIGINT to it (the kubelet's stop reaches the trainer as if it were PID 1). Returns its exit code."""
    child = subprocess.Popen(command)
    relay.pid, relay.started = (lambda: child.pid), relay.clock()

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, forward)
    while child.poll() is None:
        relay.tick()
        time.sleep(relay.s.poll)
    if relay.waiting is not None:
        relay.tick()  # a save-and-exit trainer's last checkpoint
    return child.returncode if child.returncode >= 0 else 128 - child.returncode  # killed by a signal: as a shell says it


def watch(relay: Relay, alive: Callable[[], bool]) -> int:
    """Sidecar: relay while the trainer (``--pid-file``) is alive."""
    while alive():
        relay.tick()
        time.sleep(relay.s.poll)
    return 0


def file_source(path: Path) -> Callable[[], dict[str, str]]:
    def read() -> dict[str, str]:
        try:
            return parse_annotations(path.read_text())
        except OSError:
            return {}  # not projected yet

    return read


def pid_from_file(path: Path) -> Callable[[], int | None]:
    def pid() -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    return pid
