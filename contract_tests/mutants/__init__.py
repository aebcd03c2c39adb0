"""Broken handler sets the contract suite must catch (see ``mutation_check.py``).

The names here are functions in ``handlers.py``, kept apart so that the check can
list them without importing handler code (which builds boto3 clients at import).
Beside each, the tests known to catch it (node ids under ``contract_tests/``) and
why: a run against the mutant starts with them, so it fails as soon as they do; the
rest of the suite follows, so a mutant that gets past them is still caught by any.
"""

CAUGHT_FIRST_BY = {
    # Reads one 1 MB scan page: the test's bulky rows push live connections onto the
    # next page, and they never get the broadcast.
    "unpaginated_scan": (
        "test_connections.py::test_a_broadcast_reaches_connections_past_the_first_scan_page",
    ),
    # Leaves the row the fan-out met GoneException on: the test seeds a row of a
    # connection that never existed and waits for the next broadcast to delete it.
    "no_gone_pruning": (
        "test_connections.py::test_a_row_whose_connection_is_gone_is_pruned_at_the_next_broadcast",
    ),
    # Broadcasts the heartbeat as a chat message: the test sends one and finds it in inboxes.
    "ping_stored": (
        "test_messages.py::test_heartbeat_is_stored_nowhere_and_broadcast_to_no_one",
    ),
    # Skips the sender: the test's newcomer waits for its own barrier broadcast. (The
    # hypothesis test of delivery catches it too, but shrinks through minutes of timeouts.)
    "sender_excluded": (
        "test_connections.py::test_connect_registers_and_tells_every_other_client_once",
    ),
}

MUTANT_NAMES = tuple(CAUGHT_FIRST_BY)
