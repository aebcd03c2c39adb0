"""The local stack's command line: ``python -m system.local`` (or ``chat-harness local``).

Starts DynamoDB, the Lambda workers, the API Gateway WebSocket emulator and the
@connections API on 127.0.0.1, writes a stack file, prints where everything is and
``READY_LINE``, and runs until Ctrl-C (or SIGTERM). ``LocalStackProcess`` waits for
that line. A ``--host`` other than loopback serves the WebSocket and @connections
ports there, after a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from system.fanout_strategies import FANOUT_STRATEGIES
from system.local.apigateway.limits import ApiLimits
from system.local.aws_latency import DEFAULT_LATENCY_TABLE, LatencyTableError, load_latency_table
from system.local.capacity import parse_provisioned
from system.local.dynamodb import BackendError
from system.local.lambda_runtime.pool import LAMBDA_CONCURRENT_EXECUTIONS
from system.local.launcher import READY_LINE
from system.local.stack import LOG_RUNS_KEPT, LocalStack, LocalStackOptions, exposure_warning
from system.options import (
    non_negative_float,
    non_negative_int,
    port,
    positive_float,
    positive_int,
    user_errors_as_one_line,
)
from system.provision import Capacity
from system.routes import DEFAULT_ROUTES_FILE

HELP = "run the chat on a local AWS stack until Ctrl-C"
DESCRIPTION = ("Start DynamoDB, the Lambda workers, the API Gateway WebSocket emulator and the "
               "@connections API on 127.0.0.1, write a stack file, run until Ctrl-C.")


def _provisioned(text: str) -> tuple[str, Capacity]:
    try:
        return parse_provisioned(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LocalStackOptions()
    limits = ApiLimits()
    parser.add_argument("--host", default=defaults.host,
                        help="address of the WebSocket and @connections ports (default "
                             "%(default)s; any other is reachable from its network)")
    parser.add_argument("--port", type=port, default=defaults.port,
                        help="WebSocket port, 0 for any (default %(default)s)")
    parser.add_argument("--management-port", type=port, default=defaults.management_port,
                        help="@connections HTTPS port, 0 for any (default %(default)s)")
    parser.add_argument("--dynamodb", default=defaults.dynamodb, metavar="dynalite|moto|URL",
                        help="DynamoDB backend (default %(default)s)")
    parser.add_argument("--routes", type=Path, default=DEFAULT_ROUTES_FILE, metavar="FILE",
                        help="route -> handler mapping (TOML; default: the chat's own)")
    parser.add_argument("--stack-file", type=Path, metavar="PATH",
                        help="where to write the stack file (default STATE_DIR/stack.json)")
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir,
                        help="logs, metrics, CA (default %(default)s)")
    parser.add_argument("--stage", default=defaults.stage)
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument("--concurrency", type=positive_int, default=defaults.concurrency,
                        help="Lambda environments per function (default %(default)s)")
    parser.add_argument("--queue-limit", type=non_negative_int, metavar="N",
                        help="invocations that may wait for a busy function before it is "
                             "throttled (500 on $connect, an error frame on messages; "
                             f"default: {LAMBDA_CONCURRENT_EXECUTIONS} in flight, Lambda's "
                             "default quota, less --concurrency; 0: throttle once "
                             "--concurrency are busy)")
    parser.add_argument("--lambda-timeout", type=positive_float, metavar="SECONDS",
                        help="override every function's timeout")
    parser.add_argument("--idle-timeout", type=positive_float, default=limits.idle_timeout_s,
                        metavar="SECONDS", help="close idle connections (default %(default)s)")
    parser.add_argument("--max-duration", type=positive_float, default=limits.max_duration_s,
                        metavar="SECONDS", help="close connections this old (default %(default)s)")
    parser.add_argument("--outbound-stall", type=positive_float, default=limits.outbound_stall_s,
                        metavar="SECONDS", help="disconnect a client that leaves a full "
                        "outbound buffer unread this long (default %(default)s)")
    parser.add_argument("--frame-limit", type=positive_int, default=limits.frame_bytes,
                        metavar="BYTES", help="largest frame (default %(default)s)")
    parser.add_argument("--message-limit", type=positive_int, default=limits.message_bytes,
                        metavar="BYTES", help="largest message (default %(default)s)")
    parser.add_argument("--connect-rate", type=positive_float,
                        default=limits.new_connections_per_s, metavar="PER_SECOND",
                        help="new connections per second (default %(default)s)")
    parser.add_argument("--provisioned", action="append", default=[], type=_provisioned,
                        metavar="TABLE=RCU/WCU",
                        help="provision TABLE and enforce its capacity per second, answering "
                             "ProvisionedThroughputExceededException (repeatable)")
    parser.add_argument("--burst-seconds", type=non_negative_float,
                        default=defaults.burst_s, metavar="SECONDS",
                        help="unused capacity a provisioned table keeps as burst credit "
                             "(default %(default)s, DynamoDB's)")
    parser.add_argument("--fanout", choices=FANOUT_STRATEGIES, metavar="STRATEGY",
                        help="how a broadcast reaches its recipients, for every function "
                             "(FANOUT_STRATEGY): sequential, threads or batched (default: the "
                             "routes file's, else threads)")
    parser.add_argument("--authorizer", metavar="NAME",
                        help="put the routes file's authorizer NAME on $connect (the chat's: "
                             "jwt, with JWT_SECRET in the environment)")
    parser.add_argument("--aws-latency", nargs="?", type=Path, const=DEFAULT_LATENCY_TABLE,
                        metavar="TABLE", help="add the delays AWS adds (post_to_connection, "
                        "DynamoDB, Lambda warm and cold starts, async invoke) from a dated "
                        "table (default: the harness's own, system/local/aws_latency.toml)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every invocation and connection")


def options_from(args: argparse.Namespace) -> LocalStackOptions:
    return LocalStackOptions(
        host=args.host, port=args.port, management_port=args.management_port, stage=args.stage,
        region=args.region, dynamodb=args.dynamodb, routes_file=args.routes,
        state_dir=args.state_dir, stack_file=args.stack_file, concurrency=args.concurrency,
        queue_limit=args.queue_limit,
        lambda_timeout_s=args.lambda_timeout, provisioned=dict(args.provisioned),
        burst_s=args.burst_seconds, fanout=args.fanout, authorizer=args.authorizer,
        aws_latency=load_latency_table(args.aws_latency) if args.aws_latency else None,
        limits=ApiLimits(
            frame_bytes=args.frame_limit, message_bytes=args.message_limit,
            idle_timeout_s=args.idle_timeout, max_duration_s=args.max_duration,
            new_connections_per_s=args.connect_rate, outbound_stall_s=args.outbound_stall,
        ),
    )


def print_where(stack: LocalStack) -> None:
    """Where everything is, for a person; ``READY_LINE`` last, for a waiting process."""
    f, options = stack.file, stack.options
    print("chat-harness local stack is up", flush=True)
    for label, value in (
        ("WebSocket URL", f.websocket_url),
        ("@connections", f"{f.management_endpoint}  (CA bundle {f.ca_bundle})"),
        ("Web client", f.web_client_url),
        ("DynamoDB", (f"{f.dynamodb_endpoint}  ({f.dynamodb_backend}, capacity "
                      f"{f.capacity_fidelity})")),
        ("Function logs", f"{f.logs_dir}  (earlier runs: logs.1 to logs.{LOG_RUNS_KEPT - 1})"),
        ("EMF metrics", f.metrics_file),
        ("Stack file", str(options.stack_path)),
    ):
        print(f"  {label:<14} {value}", flush=True)
    if options.fanout is not None:
        print(f"  {'Fan-out':<14} {options.fanout} (FANOUT_STRATEGY of every function)",
              flush=True)
    if (authorizer := stack.routes.authorizer) is not None:
        print(f"  {'Authorizer':<14} {authorizer.name} on $connect ({authorizer.function}, "
              f"identity: {', '.join(authorizer.identity_sources)})", flush=True)
    if stack.latency.enabled:
        print(f"  {'AWS latency':<14} {stack.latency.describe()}", flush=True)
    for table, capacity in options.provisioned.items():
        print(f"  {'Provisioned':<14} {table} {capacity.read} RCU / {capacity.write} WCU "
              f"per second, burst credit {options.burst_s:g} s", flush=True)
    if (warning := exposure_warning(options.host)) is not None:
        print(warning, file=sys.stderr, flush=True)
    print(READY_LINE, flush=True)


async def serve_until_signal(options: LocalStackOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with LocalStack(options) as stack:
        print_where(stack)
        await stop.wait()
        print("Stopping...", flush=True)
    print("Stopped.", flush=True)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("chat_harness").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.verbose:
        logging.getLogger("websockets").setLevel(logging.INFO)
    asyncio.run(serve_until_signal(options_from(args)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m system.local", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return user_errors_as_one_line("chat-harness local", lambda: run(args),
                                   (BackendError, LatencyTableError))
