"""Child processes that cannot outlive the stack that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1
# Where every server of the local stack listens unless told otherwise.
LOOPBACK = "127.0.0.1"


def die_with_parent() -> None:
    """``preexec_fn`` for children: on Linux the kernel sends SIGTERM when we die,
    so even a SIGKILLed stack leaves no DynamoDB or worker process behind."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def kill_process_group(leader_pid: int) -> None:
    """SIGKILL the process group led by a child started with ``start_new_session=True``:
    the child and whatever it started, so nothing it left running survives it. A group
    already gone (or a pid since reused outside our reach) is left alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader_pid, signal.SIGKILL)


def raise_open_file_limit(needed: int) -> int:
    """Raise this process's soft open-file limit towards ``needed`` (children inherit it),
    as far as the hard limit allows; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS just handed out, for servers that cannot bind port 0 themselves."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # Servers bind with SO_REUSEADDR, so a port in TIME_WAIT is free for them too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
