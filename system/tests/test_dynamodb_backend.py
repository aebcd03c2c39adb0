"""dynalite without Node.js: one line that says what to do, on every path, never a traceback.

Each test gets a PATH of its own making and an empty XDG_CACHE_HOME, so neither the
machine's node/npm nor a dynalite it installed earlier can make the start succeed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from system.local.dynamodb import DYNALITE_VERSION, BackendError, DynamoDB, cache_dir
from system.tests.machine_tools import needs_tool

MACHINE_TOOLS = {tool: shutil.which(tool) for tool in ("node", "npm")}
# What npm 11 printed when its registry refused the connection (stack lines trimmed).
NPM_OFFLINE_STDERR = """\
npm error code ECONNREFUSED
npm error syscall connect
npm error errno ECONNREFUSED
npm error FetchError: request to http://127.0.0.1:9/dynalite failed, reason: connect ECONNREFUSED 127.0.0.1:9
npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/node_modules/minipass-fetch/lib/index.js:130:14)
npm error }
npm error
npm error If you are behind a proxy, please make sure that the 'proxy' config is set properly.
npm error A complete log of this run can be found in: /tmp/cache/_logs/debug-0.log
"""


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    """The only directory on PATH, empty until a test puts a tool in it; no cached dynalite."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return path


def put_tool(bin_dir: Path, name: str, script: str) -> None:
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


def cached_cli() -> Path:
    cli = cache_dir() / f"dynalite-{DYNALITE_VERSION}" / "node_modules" / "dynalite" / "cli.js"
    cli.parent.mkdir(parents=True)
    cli.write_text("// a dynalite installed by an earlier run\n")
    return cli


async def start_error() -> str:
    with pytest.raises(BackendError) as raised:
        await DynamoDB("dynalite").start()
    message = str(raised.value)
    assert "\n" not in message
    return message


def assert_says_what_to_do(message: str) -> None:
    assert "--dynamodb moto" in message
    assert "--dynamodb URL" in message


async def test_no_node_and_no_npm(bin_dir):
    message = await start_error()
    assert "no node is on PATH" in message
    assert "install Node.js 20+ (with npm)" in message
    assert_says_what_to_do(message)


async def test_no_node_with_dynalite_already_installed(bin_dir):
    cached_cli()
    message = await start_error()
    assert "no node is on PATH" in message
    assert_says_what_to_do(message)


async def test_node_without_npm(bin_dir):
    put_tool(bin_dir, "node", "exit 1")
    message = await start_error()
    assert "no npm is on PATH" in message
    assert "install Node.js 20+ (with npm)" in message
    assert_says_what_to_do(message)


async def test_npm_install_failing_offline_names_npm_reason(bin_dir, tmp_path):
    put_tool(bin_dir, "node", "exit 1")
    stderr_file = tmp_path / "npm-stderr.txt"
    stderr_file.write_text(NPM_OFFLINE_STDERR)
    put_tool(bin_dir, "npm", f"/bin/cat '{stderr_file}' >&2; exit 1")
    message = await start_error()
    assert message.startswith(f"npm install dynalite@{DYNALITE_VERSION} failed (FetchError: "
                              "request to http://127.0.0.1:9/dynalite failed")
    assert "check npm's network access" in message
    assert_says_what_to_do(message)
    assert list((tmp_path / "cache" / "chat-harness").iterdir()) == []  # no half install left


async def test_npm_that_cannot_run(bin_dir):
    put_tool(bin_dir, "node", "exit 1")
    put_tool(bin_dir, "npm", "exit 0")
    (bin_dir / "npm").write_bytes(b"\x7fELF not really")  # executable, but not a program
    message = await start_error()
    assert message.startswith(f"npm install dynalite@{DYNALITE_VERSION} failed (")
    assert_says_what_to_do(message)


async def test_node_that_cannot_run_a_cached_dynalite(bin_dir):
    cached_cli()
    put_tool(bin_dir, "node", "echo 'SyntaxError: Unexpected token' >&2; exit 1")
    message = await start_error()
    assert "exited before listening: SyntaxError: Unexpected token" in message


@needs_tool("node")
@needs_tool("npm")
async def test_real_npm_with_no_registry(bin_dir, tmp_path, monkeypatch):
    for tool, path in MACHINE_TOOLS.items():
        (bin_dir / tool).symlink_to(path)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    message = await start_error()
    assert "ECONNREFUSED 127.0.0.1:9" in message
    assert_says_what_to_do(message)


def test_command_line_without_node_is_one_line_and_exit_2(tmp_path):
    environment = {**os.environ, "PATH": str(tmp_path / "no-such-dir"),
                   "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "system.local", "--port", "0", "--management-port", "0",
         "--state-dir", str(tmp_path / "state")],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("chat-harness local: dynalite needs Node.js")
    assert_says_what_to_do(lines[0])
