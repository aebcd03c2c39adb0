"""Tiny handlers that let the Lambda runtime tests see what the worker does."""

import json
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def pid(event, context):
    """``die``: kill this environment's process mid-invocation."""
    if event.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in event.get("env", [])}}


def client_of(event, context):
    """The API version of a boto3 client of the service named ``service``."""
    import boto3

    client = boto3.client(event["service"], endpoint_url="http://127.0.0.1:9")
    return {"api_version": client.meta.service_model.api_version}


def hold(event, context):
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}


def chatty(event, context):
    print("printed line")
    logger.info("logged line")
    print(json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [
        {"Namespace": "Probe", "Dimensions": [[]], "Metrics": [{"Name": "Things"}]}]},
        "Things": 3}))
    return "done"


def crash(event, context):
    raise ValueError("probe crashed")


def not_json(event, context):
    return object()


def blocked(event, context):
    """``touch``: create that file, to show the invocation ran. ``port``: connect to the
    test there (so it knows the invocation runs) and wait until it hangs up."""
    if "touch" in event:
        Path(event["touch"]).touch()
    if "port" in event:
        with socket.create_connection(("127.0.0.1", event["port"])) as line:
            line.recv(1)
    return {"pid": os.getpid()}


def leave_a_child(event, context):
    """Start a child process that sleeps for ten minutes holding the connection to the
    test at ``port`` (after this handler sent it the child's pid), then pass the timeout."""
    with socket.create_connection(("127.0.0.1", event["port"])) as line:
        child = subprocess.Popen(["sleep", "600"], stdout=line.fileno())
        line.sendall(f"{child.pid}\n".encode())
    time.sleep(context.get_remaining_time_in_millis() / 1000 + 5)


def sized(event, context):
    return {"pid": os.getpid(), "padding": "x" * event.get("bytes", 0)}


def flood(event, context):
    """Print 10 MB."""
    line = "x" * 1023
    for _ in range(10 * 1024):
        print(line)
    return "done"


def fails_until(event, context):
    """Count this attempt in the file ``attempts``; fail unless it is attempt ``succeed_at``
    or later (never, without it)."""
    attempts = Path(event["attempts"])
    with attempts.open("a") as count:
        count.write("x")
    attempt = len(attempts.read_text())
    if attempt < event.get("succeed_at", float("inf")):
        raise RuntimeError(f"attempt {attempt} fails")
    return {"attempt": attempt}
