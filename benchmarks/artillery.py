"""Artillery, pinned, installed with npm into the cache on first use, and run on loopback.

Artillery declares the Node versions it supports (``engines.node``); where the machine's
Node is older, a Node 22 comes from the npm registry as well: its ``node`` package
installs the official binary for the platform (``node_modules/node/bin/node``). Both go
into the project's cache (system/local/npm_cache.py), as dynalite does.

Installing Artillery skips its Playwright engine's browser download
(``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD``): the WebSocket engine needs no browser, and the
download fails where its CDN cannot be reached. A run sends no telemetry
(``ARTILLERY_DISABLE_TELEMETRY``): it talks to the loopback server only.

The scripts are JSON (which Artillery's YAML reader takes as it is) for its ``ws``
engine: each virtual user opens one connection and either sends a heartbeat and thinks
1 s in a loop, or only thinks (listens). A run is a child in its own session, so that
stopping it stops every process it started, and Ctrl-C in the terminal reaches only the
benchmark, which stops it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from system.local.npm_cache import cache_dir, npm_install
from system.local.processes import die_with_parent, kill_process_group

ARTILLERY_VERSION = "2.0.34"
# Artillery 2.0.34's package.json: "engines": {"node": ">= 22.18.0"}.
ARTILLERY_NODE = (22, 18, 0)
# The npm registry's `node` package at this version provides the Node Artillery runs on
# where the machine's is older.
NODE_FROM_NPM = "22.23.3"
INSTALL_NPM = "install Node.js with npm (it installs Artillery, and a Node 22 for it if needed)"
INSTALL_TIMEOUT_S = 600  # Artillery is about 460 packages
VERSION_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
LOG_LINES_ON_FAILURE = 5


@dataclass(frozen=True)
class Artillery:
    """An installed Artillery and the Node it runs on."""

    node: Path
    node_version: str
    cli: Path

    def version_line(self) -> str:
        return f"Artillery {ARTILLERY_VERSION} on Node {self.node_version} ({self.node})"


def parse_node_version(text: str) -> tuple[int, ...]:
    """``node --version``'s answer ("v20.20.2") as numbers."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)\S*", text.strip())
    if match is None:
        raise ValueError(f"not a Node version: {text.strip()!r}")
    return tuple(int(part) for part in match.groups())


def node_version_of(node: str | Path) -> str | None:
    """What ``node --version`` says, or None if it cannot run."""
    try:
        result = subprocess.run([str(node), "--version"], capture_output=True, text=True,
                                check=False, stdin=subprocess.DEVNULL, timeout=VERSION_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def node_for_artillery() -> Path:
    """The machine's ``node`` if Artillery supports it, else a Node from npm (cached)."""
    needed = ".".join(map(str, ARTILLERY_NODE))
    machine_node = shutil.which("node")
    version = None if machine_node is None else node_version_of(machine_node)
    if version is not None and parse_node_version(version) >= ARTILLERY_NODE:
        return Path(machine_node)
    home = cache_dir() / f"node-{NODE_FROM_NPM}"
    node = home / "node_modules" / "node" / "bin" / "node"
    if not node.exists():
        machine = "no node runs here" if version is None else f"the machine's is {version}"
        print(f"Installing Node {NODE_FROM_NPM} from npm into {home} (first use only: "
              f"Artillery needs Node {needed} or later, and {machine})")
        npm_install("node", NODE_FROM_NPM, home, install_npm=INSTALL_NPM)
    return node


def install_artillery() -> Artillery:
    """The pinned Artillery, installed into the cache on first use, and its Node.
    Raises NpmInstallError (one line) when npm is missing or an install fails."""
    node = node_for_artillery()
    home = cache_dir() / f"artillery-{ARTILLERY_VERSION}"
    cli = home / "node_modules" / "artillery" / "bin" / "run"
    if not cli.exists():
        print(f"Installing Artillery {ARTILLERY_VERSION} into {home} (first use only, about "
              f"two minutes)")
        npm_install("artillery", ARTILLERY_VERSION, home, install_npm=INSTALL_NPM,
                    environment={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
                    timeout_s=INSTALL_TIMEOUT_S)
    return Artillery(node, node_version_of(node) or "unknown", cli)


# -- scripts --------------------------------------------------------------------------------


def script(target: str, connections: int, per_s: float, flow: list[dict]) -> dict:
    """``connections`` virtual users, arriving evenly at ``per_s`` a second, each opening
    one connection to ``target`` and running ``flow`` on it."""
    return {
        "config": {"target": target,
                   "phases": [{"duration": math.ceil(connections / per_s),
                               "arrivalCount": connections}]},
        "scenarios": [{"engine": "ws", "flow": flow}],
    }


def heartbeat_flow(frame: str, seconds: float) -> list[dict]:
    """Send ``frame``, think 1 s, for ``seconds`` (a bound: the benchmark stops the run)."""
    return [{"loop": [{"send": frame}, {"think": 1}], "count": math.ceil(seconds)}]


def listen_flow(seconds: float) -> list[dict]:
    """Hold the connection open for ``seconds``, sending nothing. No step waits for a
    message (no capture or match), so Artillery counts none it receives."""
    return [{"think": math.ceil(seconds)}]


# -- a run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss: int  # bytes, summed over the processes
    uss: int | None  # bytes; None where the platform cannot tell
    processes: int


def memory_of(root: psutil.Process) -> Memory:
    """RSS and USS of ``root`` and every process under it, summed. (Summed RSS counts the
    pages they share once per process; USS counts each process's own pages only.)"""
    rss = 0
    uss: int | None = 0
    processes = 0
    for process in (root, *root.children(recursive=True)):
        try:
            info = process.memory_full_info()
        except psutil.AccessDenied:
            info = process.memory_info()
        except psutil.NoSuchProcess:
            continue
        processes += 1
        rss += info.rss
        uss = uss + info.uss if uss is not None and hasattr(info, "uss") else None
    return Memory(rss, uss, processes)


def cpu_seconds_of(root: psutil.Process) -> float:
    """User and system CPU of ``root`` and every process under it, including the
    children each has reaped (so a worker that exits during a window still counts)."""
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class ArtilleryRun:
    """``artillery run`` of one script, its output in a log file beside it."""

    def __init__(self, artillery: Artillery, run_script: dict, directory: Path) -> None:
        script_path = directory / "script.json"
        script_path.write_text(json.dumps(run_script, indent=2))
        self.log_path = directory / "artillery.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(artillery.node), str(artillery.cli), "run", str(script_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                env={**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "1"},
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only
            )
        self.usage = psutil.Process(self.process.pid)

    def expect_running_for(self, seconds: float) -> None:
        """Wait ``seconds``; raise at once if Artillery exits meanwhile."""
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return
        raise RuntimeError(f"Artillery exited (exit code {self.process.returncode}): "
                           f"{self.last_output()}")

    def last_output(self) -> str:
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines()]
        return " | ".join([line for line in lines if line][-LOG_LINES_ON_FAILURE:]) or "no output"

    def cpu_seconds(self) -> float:
        return cpu_seconds_of(self.usage)

    def memory(self) -> Memory:
        return memory_of(self.usage)

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                print(f"  Artillery did not stop in {STOP_TIMEOUT_S} s: killing it")
        kill_process_group(self.process.pid)  # whatever it left running
        self.process.wait()
