"""Calls to a local stack's control API (``/@harness/``): status and JSON body, errors
included, with the stack's CA and control token."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from system.stackfile import StackFile


def control_call(stack: StackFile, method: str, path: str = "faults", body: bytes | None = None,
                 endpoint: str | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of a control request; ``endpoint`` overrides the stack file's."""
    request = urllib.request.Request(
        f"{endpoint or stack.control_endpoint}/{path}", method=method, data=body,
        headers={"Authorization": f"Bearer {stack.control_token}"})
    tls = ssl.create_default_context(cafile=stack.ca_bundle)
    try:
        with urllib.request.urlopen(request, context=tls, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
