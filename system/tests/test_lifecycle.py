"""What a new user does: start the stack, chat with two clients, Ctrl-C; nothing is left
but this run's logs beside the last runs'. Served on a network address, the stack exposes
the chat's two ports there and nothing else."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from system.control import control_call
from system.local.launcher import LocalStackProcess
from system.local.processes import LOOPBACK


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def listening(pids: set[int]) -> set[tuple[str, int]]:
    """The (address, port) pairs the processes ``pids`` accept TCP connections on."""
    found = set()
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in connections
                  if c.status == psutil.CONN_LISTEN}
    return found


def network_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, or None."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if (address.family == socket.AF_INET
                    and not ipaddress.ip_address(address.address).is_loopback):
                return address.address
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("dynamodb", ["dynalite", "moto"])
async def test_chat_then_ctrl_c_leaves_no_process(tmp_path, clients, dynamodb):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "DefaultHandler.log").write_text("the run before\n")
    stack = LocalStackProcess(["--dynamodb", dynamodb], state_dir=tmp_path)
    try:
        file = stack.start()
        a = await clients(file.websocket_url)
        b = await clients(file.websocket_url)
        await a.send({"action": "sendmessage", "message": "hi"})
        for client in (a, b):
            await client.frame_where(lambda f: f.get("text") == "hi")
        await a.send("not json")
        await a.frame_where(lambda f: f.get("error") == "Invalid request")
        items = file.dynamodb_client().scan(TableName=file.tables["message_history"])["Items"]
        assert [item["message"]["S"] for item in items] == ["hi"]
        children = descendants(stack.process.pid)
        assert len(children) >= 4  # DynamoDB and an environment per function the chat ran
    finally:
        code = await asyncio.to_thread(stack.stop)  # the clients answer the close meanwhile
    assert code == 0
    assert [pid for pid in children if alive(pid)] == []
    assert not (tmp_path / "stack.json").exists()
    logs = Path(file.logs_dir)
    assert logs == tmp_path.resolve() / "logs" and Path(file.metrics_file).parent == logs
    assert (tmp_path / "logs.1" / "DefaultHandler.log").read_text() == "the run before\n"
    metrics = [json.loads(line) for line in Path(file.metrics_file).read_text().splitlines()]
    fanouts = [m for m in metrics if m.get("Route") == "sendmessage" and "Recipients" in m]
    assert [(m["Recipients"], m["Delivered"], m["Gone"]) for m in fanouts] == [(2, 2, 0)]
    writes = [m for m in metrics if m.get("Route") == "sendmessage" and m.get("Table")]
    assert {m["Table"]: m["ConsumedWCU"] for m in writes}["MessageHistory"] >= 1
    log = (logs / "SendMessageHandler.log").read_text()
    assert "START RequestId" in log and "REPORT RequestId" in log
    default_log = (logs / "DefaultHandler.log").read_text()
    assert "invalid request from" in default_log and "the run before" not in default_log


async def test_a_network_host_serves_the_chat_there_and_nothing_else(tmp_path, clients):
    """--host on a network address: a warning; only the WebSocket and @connections ports on
    it; DynamoDB, the proxy and the control API on loopback. Broadcasts work: handlers post
    to https://{domainName}/{stage}, domainName is that address, the certificate names it."""
    host = network_address()
    if host is None:
        pytest.skip("this machine has no IPv4 address but loopback to serve on")
    stack = LocalStackProcess(["--host", host], state_dir=tmp_path)
    try:
        file = stack.start()
        assert "anyone on that network can connect" in stack.wait_for_output(f"--host {host}")
        ws_port = urlsplit(file.websocket_url).port
        management_port = urlsplit(file.management_endpoint).port
        assert urlsplit(file.management_endpoint).hostname == host
        ports = listening({stack.process.pid, *descendants(stack.process.pid)})
        assert {port for address, port in ports if address == host} == {ws_port, management_port}
        assert {address for address, _ in ports} == {host, LOOPBACK}
        a = await clients(file.websocket_url)
        b = await clients(file.websocket_url)
        await a.send({"action": "sendmessage", "message": "over the network"})
        for client in (a, b):
            await client.frame_where(lambda f: f.get("text") == "over the network")
        assert control_call(file, "GET")[0] == 200
        status, answer = control_call(file, "GET",
                                      endpoint=f"https://{host}:{management_port}/@harness")
        assert status == 403 and "loopback" in answer["message"]
    finally:
        await asyncio.to_thread(stack.stop)
