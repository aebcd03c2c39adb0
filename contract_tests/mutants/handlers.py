"""Deliberately broken variants of the chat's handlers: each breaks one contract.

Each variant patches one thing in the real handler modules (no copies of them),
then exposes the route's ``lambda_handler``. ``mutation_check.py`` runs the
contract suite against each and expects it to fail; ``__init__.py`` names the tests
that catch each, and why.
"""

import os

import system.handlers.connect
import system.handlers.default
import system.handlers.disconnect
import system.handlers.whoami
from contract_tests.mutants import MUTANT_NAMES
from system.handlers import chat, sendmessage


def _scan_one_page() -> list[dict]:
    return chat.dynamodb.scan(TableName=chat.ACTIVE_CONNECTIONS_TABLE).get("Items", [])


def unpaginated_scan():
    """Reads only the first 1 MB page of ActiveConnections, as the reference app does."""
    chat.active_connections = _scan_one_page


def no_gone_pruning():
    """Leaves rows of connections that answered GoneException in place."""
    chat.prune = lambda row: None


def ping_stored():
    """Treats the heartbeat as a chat message: stored and broadcast."""
    sendmessage.HEARTBEAT = None


def sender_excluded():
    """Broadcasts to everyone but the sender."""
    real_broadcast = chat.broadcast
    sendmessage.broadcast = lambda event, payload, exclude=None: real_broadcast(
        event, payload, exclude=chat.connection_id(event))


MUTANTS = {name: globals()[name] for name in MUTANT_NAMES}

# The worker imports this module as every route's handler module; the mutant named
# by the function's environment is applied once, at import, as a cold start would.
MUTANTS[os.environ["CHAT_MUTANT"]]()

connect = system.handlers.connect.lambda_handler
disconnect = system.handlers.disconnect.lambda_handler
default = system.handlers.default.lambda_handler
whoami = system.handlers.whoami.lambda_handler
sendmessage_handler = sendmessage.lambda_handler
