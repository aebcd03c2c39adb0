"""API Gateway WebSocket API quotas, named once: for the chat's handlers, the local
stack's emulator, the test clients and the capacity report alike.

https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
(Amazon API Gateway quotas for configuring and running a WebSocket API).
"""

FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
# @connections POST Data: at most 128 KB, else PayloadTooLargeException.
MANAGEMENT_PAYLOAD_BYTES = 128 * 1024
IDLE_TIMEOUT_SECONDS = 10 * 60
MAX_DURATION_SECONDS = 2 * 60 * 60
# New connections per second, per account and Region.
NEW_CONNECTIONS_PER_SECOND = 500
# The longest an integration may run before API Gateway gives up on it.
INTEGRATION_TIMEOUT_SECONDS = 29
