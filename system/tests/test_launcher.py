"""A stack that cannot start says why in one line, however its process ends."""

from __future__ import annotations

import os

import pytest

from system.local.launcher import LocalStackProcess, StackStartError

# Loaded by the stack's Python at start-up: when it exits, it ends its output first and
# then waits for a signal, as a process can still be running for a while after its last
# line (a CI run found `load` reading a stack file that was never written, from a stack
# that had printed its error and not yet exited).
OUTPUT_ENDS_BEFORE_THE_PROCESS = """\
import atexit, os, signal, sys

def linger():
    sys.stdout.flush()
    sys.stderr.flush()
    os.close(1)
    os.close(2)
    signal.pause()

atexit.register(linger)
"""


def test_a_stack_whose_output_ends_before_its_process_says_why_it_did_not_start(
        tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text(OUTPUT_ENDS_BEFORE_THE_PROCESS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("JWT_SECRET", raising=False)
    stack = LocalStackProcess(["--authorizer", "jwt"], state_dir=tmp_path / "stack")
    try:
        with pytest.raises(StackStartError) as raised:
            stack.start()
    finally:
        stack.stop()
    assert str(raised.value) == (
        "the local stack exited: chat-harness local: JwtAuthorizer needs JWT_SECRET set in the "
        "environment chat-harness runs in (a secret, never in the routes file)")
