"""``chat-harness``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from loadtest.run import add_arguments as add_load_arguments
from loadtest.run import run as run_load
from reports.report import add_arguments as add_report_arguments
from reports.report import run as run_report
from reports.verify import add_arguments as add_verify_arguments
from reports.verify import run as run_verify
from system.local.apigateway.limits import ApiLimits
from system.local.capacity import parse_provisioned
from system.local.dynamodb import BackendError
from system.local.routes import DEFAULT_ROUTES_FILE
from system.local.stack import LocalStack, LocalStackOptions
from system.provision import Capacity


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _provisioned(text: str) -> tuple[str, Capacity]:
    try:
        return parse_provisioned(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0 for any free one), got {text}")
    return value


def _add_local(subcommands) -> None:
    local = subcommands.add_parser(
        "local", help="run the chat on a local AWS stack until Ctrl-C",
        description="Start DynamoDB, the Lambda workers, the API Gateway WebSocket emulator and "
                    "the @connections API on 127.0.0.1, write a stack file, run until Ctrl-C.",
    )
    defaults = LocalStackOptions()
    limits = ApiLimits()
    local.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    local.add_argument("--port", type=_port, default=defaults.port,
                       help="WebSocket port, 0 for any (default %(default)s)")
    local.add_argument("--management-port", type=_port, default=defaults.management_port,
                       help="@connections HTTPS port, 0 for any (default %(default)s)")
    local.add_argument("--dynamodb", default=defaults.dynamodb, metavar="dynalite|moto|URL",
                       help="DynamoDB backend (default %(default)s)")
    local.add_argument("--routes", type=Path, default=DEFAULT_ROUTES_FILE, metavar="FILE",
                       help="route -> handler mapping (TOML; default: the chat's own)")
    local.add_argument("--stack-file", type=Path, metavar="PATH",
                       help="where to write the stack file (default STATE_DIR/stack.json)")
    local.add_argument("--state-dir", type=Path, default=defaults.state_dir,
                       help="logs, metrics, CA (default %(default)s)")
    local.add_argument("--stage", default=defaults.stage)
    local.add_argument("--region", default=defaults.region)
    local.add_argument("--concurrency", type=_positive_int, default=defaults.concurrency,
                       help="Lambda environments per function (default %(default)s)")
    local.add_argument("--lambda-timeout", type=_positive_float, metavar="SECONDS",
                       help="override every function's timeout")
    local.add_argument("--idle-timeout", type=_positive_float, default=limits.idle_timeout_s,
                       metavar="SECONDS", help="close idle connections (default %(default)s)")
    local.add_argument("--max-duration", type=_positive_float, default=limits.max_duration_s,
                       metavar="SECONDS", help="close connections this old (default %(default)s)")
    local.add_argument("--frame-limit", type=_positive_int, default=limits.frame_bytes,
                       metavar="BYTES", help="largest frame (default %(default)s)")
    local.add_argument("--message-limit", type=_positive_int, default=limits.message_bytes,
                       metavar="BYTES", help="largest message (default %(default)s)")
    local.add_argument("--connect-rate", type=_positive_float,
                       default=limits.new_connections_per_s, metavar="PER_SECOND",
                       help="new connections per second (default %(default)s)")
    local.add_argument("--provisioned", action="append", default=[], type=_provisioned,
                       metavar="TABLE=RCU/WCU",
                       help="provision TABLE and enforce its capacity per second, answering "
                            "ProvisionedThroughputExceededException (repeatable)")
    local.add_argument("--burst-seconds", type=_non_negative_float,
                       default=defaults.burst_s, metavar="SECONDS",
                       help="unused capacity a provisioned table keeps as burst credit "
                            "(default %(default)s, DynamoDB's)")
    local.add_argument("-v", "--verbose", action="store_true", help="log every invocation and connection")
    local.set_defaults(run=_run_local)


def _options(args) -> LocalStackOptions:
    return LocalStackOptions(
        host=args.host, port=args.port, management_port=args.management_port, stage=args.stage,
        region=args.region, dynamodb=args.dynamodb, routes_file=args.routes,
        state_dir=args.state_dir, stack_file=args.stack_file, concurrency=args.concurrency,
        lambda_timeout_s=args.lambda_timeout, provisioned=dict(args.provisioned),
        burst_s=args.burst_seconds,
        limits=ApiLimits(
            frame_bytes=args.frame_limit, message_bytes=args.message_limit,
            idle_timeout_s=args.idle_timeout, max_duration_s=args.max_duration,
            new_connections_per_s=args.connect_rate,
        ),
    )


async def _serve_until_signal(options: LocalStackOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with LocalStack(options) as stack:
        f = stack.file
        print("chat-harness local stack is up", flush=True)
        for label, value in (
            ("WebSocket URL", f.websocket_url),
            ("@connections", f"{f.management_endpoint}  (CA bundle {f.ca_bundle})"),
            ("Web client", f.web_client_url),
            ("DynamoDB", (f"{f.dynamodb_endpoint}  ({f.dynamodb_backend}, capacity "
                         f"{f.capacity_fidelity})")),
            ("Function logs", f.logs_dir),
            ("EMF metrics", f.metrics_file),
            ("Stack file", str(options.stack_path)),
        ):
            print(f"  {label:<14} {value}", flush=True)
        for table, capacity in options.provisioned.items():
            print(f"  {'Provisioned':<14} {table} {capacity.read} RCU / {capacity.write} WCU "
                  f"per second, burst credit {options.burst_s:g} s", flush=True)
        print("Ready. Press Ctrl-C to stop.", flush=True)
        await stop.wait()
        print("Stopping...", flush=True)
    print("Stopped.", flush=True)


def _run_local(args) -> int:
    logging.getLogger("chat_harness").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.verbose:
        logging.getLogger("websockets").setLevel(logging.INFO)
    asyncio.run(_serve_until_signal(_options(args)))
    return 0


def _add_load(subcommands) -> None:
    load = subcommands.add_parser(
        "load", help="a headless load run (Locust) with its summary and run directory",
        description="Run the chat load test headless: a step shape of Locust chat users on a "
                    "local stack (or --target STACKFILE); write a run directory and summary.",
    )
    add_load_arguments(load)
    load.set_defaults(run=_run_load)


def _run_load(args) -> int:
    """The load run, then its capacity report (a report that fails loses no run data)."""
    code = run_load(args)
    if (args.run_dir / "summary.json").exists():
        try:
            run_report(args)
        except (ValueError, OSError) as error:
            print(f"chat-harness load: no capacity report: {error}", file=sys.stderr)
    return code


def _add_report(subcommands) -> None:
    report = subcommands.add_parser(
        "report", help="size DynamoDB from a load run: report.html, report.md, capacity.json",
        description="Build the capacity report of a run directory: consumption per route, "
                    "table and second, scaling against N, a provisioned recommendation and "
                    "monthly costs for a target workload, break points.",
    )
    add_report_arguments(report)
    report.set_defaults(run=run_report)


def _add_verify(subcommands) -> None:
    verify = subcommands.add_parser(
        "verify", help="replay a run with the tables provisioned at the report's "
                       "recommendation, and at half of it; count throttled requests",
        description="Replay RUN_DIR's load shape on a local stack whose capacity governor "
                    "enforces the recommended RCU/WCU per table, then half of it. Exit 1 if "
                    "the recommendation saw throttling.",
    )
    add_verify_arguments(verify)
    verify.set_defaults(run=run_verify)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chat-harness",
        description="Verify and load-test a serverless WebSocket chat, locally or on AWS.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    _add_local(subcommands)
    _add_load(subcommands)
    _add_report(subcommands)
    _add_verify(subcommands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.run(args)
    except (ValueError, OSError, BackendError) as error:  # what a user can cause: one line
        print(f"chat-harness {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
