"""The `ftmoe` command as a newcomer meets it: every flag explained with its default, every
command the README and the demo print accepted, and bad set-ups answered with a sentence,
not a traceback. Subprocesses, as the user runs them."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ftmoe.cli import build_parser, split_passthrough, subparsers

ROOT = Path(__file__).resolve().parents[1]
FTMOE = str(Path(sys.executable).parent / "ftmoe")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FTMOE, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def no_kubeconfig_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    return env


def readme_commands() -> list[str]:
    """Every `ftmoe ...` line in the README's shell blocks, as a user would paste it."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            line = re.sub(r"^\.venv/bin/", "", line)
            if line.startswith("ftmoe "):
                commands.append(line)
    return commands


def ftmoe_words(command: str) -> list[str]:
    """The words after `ftmoe`, cut at the first pipe, redirect or `&`."""
    words = shlex.split(command.split("|")[0].split(" &")[0])
    return words[1:]


def test_every_flag_of_every_command_has_help_and_shows_its_default() -> None:
    silent = []
    for parser in subparsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                silent.append(f"{parser.prog} {action.dest}")
    assert silent == []
    out = " ".join(run("train", "--help").stdout.split())
    for flag, default in (
        ("--epochs", "30"),
        ("--window", "6"),
        ("--batch-size", "32"),
        ("--lr", "0.001"),
        ("--seed", "0"),
        ("--patience", "6"),
    ):
        assert re.search(rf"{flag} \S+ (?:(?! --).)*?\(default: {re.escape(default)}\)", out), flag
    assert "gbt (gradient-boosted trees" in out and "promql" in out, "--model-type lists every model type"
    assert "(default: 16)" in run("simulate", "--help").stdout
    assert "(default: 16443)" in run("cluster", "up", "--help").stdout
    assert "default: None" not in out


def test_every_ftmoe_command_in_the_readme_and_the_demo_parses() -> None:
    from ftmoe.demo import try_commands

    demo = [c for c, _ in try_commands(Path("/k"), "http://p", Path("/l"))]
    commands = readme_commands() + [re.sub(r"^KUBECONFIG=\S+ ", "", c) for c in demo]
    commands = [c for c in commands if c.startswith("ftmoe ")]
    assert len(commands) >= 20, "the README's commands were found"
    parser = build_parser()
    for command in commands:
        head, passthrough = split_passthrough(ftmoe_words(command))
        try:
            parser.parse_args(head)
        except SystemExit as err:
            pytest.fail(f"{command!r} does not parse (exit {err.code})")


def test_kubectl_flags_go_to_kubectl() -> None:
    assert split_passthrough(["cluster", "kubectl", "-n", "demo", "get", "deployment", "web"]) == (
        ["cluster", "kubectl"],
        ["-n", "demo", "get", "deployment", "web"],
    )
    assert split_passthrough(["cluster", "--name", "x", "kubectl", "--help"]) == (["cluster", "--name", "x", "kubectl"], ["--help"])
    assert split_passthrough(["train", "--data", "kubectl"]) == (["train", "--data", "kubectl"], None)
    # A cluster that is not up: the error is about the cluster, not about `-n`.
    proc = run("cluster", "--name", "no-such-cluster", "kubectl", "-n", "demo", "get", "deployment", "web")
    assert proc.returncode == 1 and "is not up" in proc.stderr and "unrecognized arguments" not in proc.stderr


@pytest.mark.parametrize("args", [["operator", "report", "demo"], ["operator", "run"]])
def test_no_kubeconfig_is_a_sentence_not_a_traceback(args: list[str], tmp_path: Path) -> None:
    proc = run(*args, env=no_kubeconfig_env(tmp_path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "no usable kubeconfig" in proc.stderr and "--kubeconfig" in proc.stderr and "KUBECONFIG" in proc.stderr


def test_operator_threads_below_one_is_named_not_a_traceback(tmp_path: Path) -> None:
    proc = run("operator", "run", "--threads", "0", env=no_kubeconfig_env(tmp_path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--threads 0: give at least 1" in proc.stderr


def test_simulator_on_a_busy_port_names_the_flag() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = run("simulate", "serve", "--port", str(port), "--cluster", "no-such-cluster")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"port {port} is already in use" in proc.stderr and "--port" in proc.stderr


def test_no_warning_on_an_ordinary_command() -> None:
    """torch_geometric's torch.jit FutureWarning used to print on every call."""
    proc = run("train", "--help")
    assert proc.returncode == 0 and "Warning" not in proc.stderr


def test_crds_generate_check_passes_on_the_repo_and_names_a_stale_file(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    ok = run("crds", "generate", "--check", "--dir", str(root / "crds"))
    assert ok.returncode == 0 and "match the API models" in ok.stdout, ok.stderr
    (tmp_path / "ftmoe.io_faulttolerancepolicies.yaml").write_text("# edited by hand\n")
    stale = run("crds", "generate", "--check", "--dir", str(tmp_path))
    assert stale.returncode == 1 and "ftmoe.io_faulttolerancepolicies.yaml differs" in stale.stderr
    assert "ftmoe.io_nodefaultpredictions.yaml differs" in stale.stderr, "a missing file is stale too"
    assert (
        run("crds", "generate", "--dir", str(tmp_path)).returncode == 0
        and run("crds", "generate", "--check", "--dir", str(tmp_path)).returncode == 0
    )
    printed = run("crds", "print").stdout
    assert printed.count("kind: CustomResourceDefinition") == 2 and "\n---\n" in printed
