"""What a run against a deployed stack does to it, rehearsed on this local stack.

A session of the suite's own conftest (loaded as a plugin) runs, in a subprocess,
against a copy of the stack file that says ``kind: aws`` and offers neither fault
injection nor a metrics file. It runs the heavy-writes test and the fault tests, which
must skip saying why, and one test that seeds a row, chats and fails: its row, its
session and its message must all be gone when the run ends.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from contract_tests import test_faults
from contract_tests.tables import RUN_ATTRIBUTE

HEAVY_TEST = "test_a_broadcast_reaches_connections_past_the_first_scan_page"
FAULT_TESTS = sorted(name for name in vars(test_faults) if name.startswith("test_"))
RUN_TIMEOUT_S = 120
HEAVY_SKIP = ("writes 12 rows (4.6 MB) into ActiveConnections of the aws stack; "
              "--allow-heavy-writes runs it")
FAULTS_SKIP = ("needs fault injection, which only a local stack's control endpoint offers; "
               "the aws stack's file names none")

REHEARSAL = f'''
import time

import pytest

from contract_tests.test_connections import {HEAVY_TEST}, a_connection_id_that_never_connected
from contract_tests.test_faults import {", ".join(FAULT_TESTS)}


def test_seeds_a_row_chats_and_fails(clients, tables):
    seeded = a_connection_id_that_never_connected()
    tables.seed_active(seeded, connected_at_ms=int(time.time() * 1000) + 3_600_000)
    sender, receiver = clients(), clients()
    sender.chat("left behind")
    frame = receiver.wait_for(lambda f: f.kind == "ChatBroadcast"
                              and f.document.get("text") == "left behind")
    pytest.fail(f"on purpose: seeded={{seeded}} connection={{sender.connection_id}} "
                f"message={{frame.document['message_id']}}")
'''


def outcomes(junit_xml: str) -> dict[str, tuple[str, str]]:
    """Each test's outcome (passed, skipped, failure, error) and its message."""
    found = {}
    for case in ET.fromstring(junit_xml).iter("testcase"):
        result = next((child for child in case if child.tag in ("failure", "error", "skipped")),
                      None)
        found[case.get("name")] = ((result.tag, result.get("message", "")) if result is not None
                                   else ("passed", ""))
    return found


def test_a_run_against_a_deployed_stack_skips_what_it_must_and_leaves_no_row(stack, tables,
                                                                            tmp_path):
    if stack.kind != "local":
        pytest.skip("rehearses a deployed target on a local stack")
    deployed = dataclasses.replace(stack, kind="aws", control_endpoint=None, metrics_file=None,
                                   logs_dir=None)
    deployed.write(tmp_path / "stack.json")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["contract_tests.conftest"]\n')
    (tmp_path / "test_rehearsal.py").write_text(REHEARSAL)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "test_rehearsal.py", "-p", "no:cacheprovider",
         "--stack-file", "stack.json", "--junit-xml", "results.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert run.returncode == 1, run.stdout + run.stderr

    [notice] = [line for line in run.stdout.splitlines() if line.startswith("contract run ")]
    assert f"the aws stack {stack.websocket_url}" in notice
    assert "heavy writes off (--allow-heavy-writes runs the tests marked heavy_writes)" in notice
    run_id = re.search(rf"{RUN_ATTRIBUTE}=(\w+)", notice).group(1)

    results = outcomes((tmp_path / "results.xml").read_text())
    assert results[HEAVY_TEST] == ("skipped", HEAVY_SKIP)
    for name in FAULT_TESTS:
        assert results[name] == ("skipped", FAULTS_SKIP), name
    outcome, message = results["test_seeds_a_row_chats_and_fails"]
    assert outcome == "failure"
    left = dict(re.findall(r"(seeded|connection|message)=(\S+)", message))

    assert not tables.is_active(left["seeded"])
    assert tables.session(left["connection"]) is None
    assert tables.message(left["message"]) is None
    for table in stack.tables.values():
        marked = tables.client.scan(TableName=table, ConsistentRead=True,
                                    FilterExpression=f"{RUN_ATTRIBUTE} = :run",
                                    ExpressionAttributeValues={":run": {"S": run_id}})
        assert marked["Items"] == [], f"{table} keeps rows of run {run_id}"
