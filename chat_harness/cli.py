"""``chat-harness``: one command for every part; each part defines its own subcommand
(``HELP``, ``DESCRIPTION``, ``add_arguments`` and ``run`` in its module); what combines
parts (the load run with its report, the web UI) is defined here.

``local`` is the local stack's own command line (``python -m system.local``); ``deploy``,
``destroy`` and ``deploy-policy`` take the chat to AWS (system/aws/command.py); ``load``
runs Locust headless and ``ui`` its web UI, with chat_harness/locustfile.py (the load
test and a capacity report for each run); ``report`` and ``verify`` are the report's;
``token`` mints a login token for the chat's jwt authorizer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from loadtest import run as load
from loadtest.parameters import LoadParameters
from reports import report, verify
from system.aws import command as aws
from system.aws.errors import AwsError
from system.handlers.authorizer import DEFAULT_TOKEN_LIFETIME_S, mint_token
from system.local import command as local
from system.local.dynamodb import BackendError
from system.local.launcher import StackStartError
from system.options import positive_float, user_errors_as_one_line

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def load_with_report(args: argparse.Namespace) -> int:
    """The load run, whose Locust process also builds the run's capacity report; then
    the recommendation, or why there is none (a report that fails loses no run data)."""
    run_dir = args.run_dir or load.new_run_dir()
    code = load.run(LoadParameters.from_options(args), run_dir, target=args.target,
                    fail_if=args.fail_if, stack_arguments=load.local_stack_arguments(args),
                    locustfile=LOCUSTFILE)
    capacity = run_dir / report.CAPACITY
    if capacity.exists():
        document = json.loads(capacity.read_text())
        report.print_recommendation(document)
        print("Report: " + ", ".join(str(run_dir / name) for name in report.FILES))
    elif (run_dir / "summary.json").exists():
        print("chat-harness load: no capacity report (the Locust output above says why)",
              file=sys.stderr)
    return code


UI_HELP = "Locust's web UI (127.0.0.1:8089) with the chat's settings in its start form"
UI_DESCRIPTION = ("Start Locust's web UI with the chat load test: each test started from it is "
                  "a run, with its run directory and capacity report linked from the Fan-out "
                  "tab. Arguments after the subcommand go to Locust (e.g. --web-port 8090, "
                  "--processes 2, --stack-file stack.json; for its own local stack: --dynamodb "
                  "moto, --fanout batched, --aws-latency, --authorizer jwt).")


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """None of its own: every argument goes to Locust (``main`` passes them on)."""


def web_ui(args: argparse.Namespace) -> NoReturn:
    """This process becomes Locust, so that Ctrl-C or a signal reaches it directly."""
    os.execv(sys.executable, [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                              *args.locust_arguments])


TOKEN_HELP = "print a login token the chat's jwt authorizer accepts (key: JWT_SECRET)"
TOKEN_DESCRIPTION = ("Mint an HS256 token for a user with the key in JWT_SECRET, for the web "
                     "client's token field or a client's ?Authorization= parameter.")


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="the token's subject (the principal)")
    parser.add_argument("--name", help="the name the chat shows (default: the user)")
    parser.add_argument("--lifetime", type=positive_float, default=DEFAULT_TOKEN_LIFETIME_S,
                        metavar="SECONDS", help="valid for this long (default %(default)s)")


def print_token(args: argparse.Namespace) -> int:
    if not os.environ.get("JWT_SECRET"):
        raise ValueError("set JWT_SECRET to the key the stack's jwt authorizer has")
    print(mint_token(os.environ["JWT_SECRET"], args.user, name=args.name,
                     lifetime_s=args.lifetime))
    return 0


# name -> (help, description, add_arguments, run)
SUBCOMMANDS = {
    "local": (local.HELP, local.DESCRIPTION, local.add_arguments, local.run),
    "load": (load.HELP, load.DESCRIPTION, load.add_arguments, load_with_report),
    "ui": (UI_HELP, UI_DESCRIPTION, add_ui_arguments, web_ui),
    "report": (report.HELP, report.DESCRIPTION, report.add_arguments, report.run),
    "verify": (verify.HELP, verify.DESCRIPTION, verify.add_arguments, verify.run),
    "deploy": (aws.DEPLOY_HELP, aws.DEPLOY_DESCRIPTION, aws.add_deploy_arguments, aws.run_deploy),
    "destroy": (aws.DESTROY_HELP, aws.DESTROY_DESCRIPTION, aws.add_destroy_arguments,
                aws.run_destroy),
    "deploy-policy": (aws.POLICY_HELP, aws.POLICY_DESCRIPTION, aws.add_policy_arguments,
                      aws.run_policy),
    "token": (TOKEN_HELP, TOKEN_DESCRIPTION, add_token_arguments, print_token),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chat-harness",
        description="Verify and load-test a serverless WebSocket chat, locally or on AWS.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, (summary, description, add_arguments, run) in SUBCOMMANDS.items():
        subparser = subcommands.add_parser(name, help=summary, description=description)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "ui":
        args.locust_arguments = unknown  # 'locust --help' lists them
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return user_errors_as_one_line(f"chat-harness {args.command}", lambda: args.run(args),
                                   (BackendError, StackStartError, AwsError))
