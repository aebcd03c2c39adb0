"""What a new user does: start the stack, chat with two clients, Ctrl-C; nothing is left."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from system.local.launcher import LocalStackProcess


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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("dynamodb", ["dynalite", "moto"])
async def test_chat_then_ctrl_c_leaves_no_process(tmp_path, clients, dynamodb):
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
        assert len(children) >= 6  # DynamoDB and a warm worker per function
    finally:
        code = await asyncio.to_thread(stack.stop)  # the clients answer the close meanwhile
    assert code == 0
    assert [pid for pid in children if alive(pid)] == []
    assert not (tmp_path / "stack.json").exists()
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    fanouts = [m for m in metrics if m.get("Route") == "sendmessage" and "Recipients" in m]
    assert [(m["Recipients"], m["Delivered"], m["Gone"]) for m in fanouts] == [(2, 2, 0)]
    writes = [m for m in metrics if m.get("Route") == "sendmessage" and m.get("Table")]
    assert {m["Table"]: m["ConsumedWCU"] for m in writes}["MessageHistory"] >= 1
    log = (tmp_path / "logs" / "SendMessageHandler.log").read_text()
    assert "START RequestId" in log and "REPORT RequestId" in log
    assert "invalid request from" in (tmp_path / "logs" / "DefaultHandler.log").read_text()
