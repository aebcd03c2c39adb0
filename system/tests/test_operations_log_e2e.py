"""The DynamoDB proxy's operations log: every call, with the capacity the backend reported
beside the capacity DynamoDB's rules give, attributed to the invocation and route."""

from __future__ import annotations

import json
from pathlib import Path

from system.local.lambda_runtime.logs import OPERATIONS_LOG


def is_chat(text: str):
    return lambda f: f.get("type") == "chat" and f.get("text") == text


def operations_since(log: Path, offset: int) -> list[dict]:
    with log.open() as handle:
        handle.seek(offset)
        return [json.loads(line) for line in handle]


async def test_each_write_is_logged_with_measured_and_modelled_capacity(chat_stack, clients):
    """dynalite sizes strings in UTF-16 units: 600 × 'é' (1,200 UTF-8 bytes) is one WCU
    to it and two to DynamoDB; the log shows both, so the report can flag it."""
    log = Path(chat_stack.file.logs_dir) / OPERATIONS_LOG
    offset = log.stat().st_size
    table = chat_stack.file.tables["message_history"]
    a = await clients(chat_stack.file.websocket_url)
    for text in ("x" * 600, "é" * 600):
        await a.send({"action": "sendmessage", "message": text})
        await a.frame_where(is_chat(text))
    puts = [op for op in operations_since(log, offset)
            if op["op"] == "PutItem" and op["tables"] == [table]]
    assert [op["route"] for op in puts] == ["sendmessage", "sendmessage"]
    assert all(op["invocation"] for op in puts) and puts[0]["invocation"] != puts[1]["invocation"]
    ascii_put, accented_put = puts
    assert ascii_put["measured"][table]["write"] == ascii_put["modelled"][table]["write"] == 1
    assert accented_put["bytes"] > 1024 + 100  # the 1,200 bytes of text, and the rest
    assert accented_put["modelled"][table]["write"] == 2
    assert accented_put["measured"][table]["write"] == 1  # dynalite's UTF-16 count
    broadcasts = [op for op in operations_since(log, offset)
                  if op["op"] == "Scan" and op["route"] == "sendmessage"]
    assert len(broadcasts) == 2 and all(op["items"] >= 1 and op["bytes"] > 0
                                        and op["measured"] == op["modelled"] for op in broadcasts)
