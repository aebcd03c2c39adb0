"""API Gateway WebSocket API emulation.

The semantics (route selection, events, limits, @connections answers, what the
client sees of an integration's outcome) are plain values-in, values-out code in
``routing``, ``events``, ``connections``, ``limits`` and ``integration``; the
servers in ``websocket_server`` and ``management_server`` only move bytes.
"""
