"""API Gateway WebSocket API emulation.

The semantics (ids, route selection, events, which handshakes are refused,
limits and when they close a connection, which close code $disconnect reports,
@connections answers, what the client sees of an integration's outcome) are
plain values-in, values-out code in ``ids``, ``routing``, ``events``,
``handshake``, ``limits``, ``closes``, ``connections`` and ``integration``; the
servers in ``websocket_server`` and ``management_server`` only move bytes.
"""
