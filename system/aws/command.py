"""``chat-harness deploy``, ``destroy`` and ``deploy-policy``: the chat in AWS.

``deploy`` prints one line per resource (create, update, unchanged) and writes the
stack file every other command reads (``--stack-file`` / ``--target``); ``--plan``
prints the same lines and changes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from system.aws.deploy import DeployOptions, Throttling, deploy, destroy
from system.aws.deployer_policy import deployer_policy
from system.aws.stage import check_stage_name
from system.fanout_strategies import FANOUT_STRATEGIES
from system.provision import Capacity, TableNames
from system.routes import DEFAULT_ROUTES_FILE

DEPLOY_HELP = "deploy the chat to AWS (tables, roles, functions, WebSocket API, stage)"
DEPLOY_DESCRIPTION = (
    "Create or update the chat's stack in AWS with boto3, from the routes file, and write "
    "its stack file. Re-running converges; --plan shows what would change. Credentials and "
    "region come from the usual AWS settings (AWS_PROFILE, aws configure) or --profile, "
    "--region.")
DESTROY_HELP = "delete everything deploy made for a stage"
DESTROY_DESCRIPTION = ("Delete every resource tagged with the stage by deploy, wait until it is "
                       "gone, and remove the stage's stack file. Nothing else is touched.")
POLICY_HELP = "print the IAM policy a user needs to deploy and destroy"
POLICY_DESCRIPTION = ("Print, as JSON, the IAM policy that lets a user run chat-harness deploy "
                      "and destroy: limited to chat-harness-* names.")
TABLES_BY_NAME = {table: role for role, table in TableNames().as_dict().items()}


def table_capacity(text: str) -> tuple[str, Capacity]:
    """'MessageHistory=25/10' -> ('message_history', Capacity(25, 10))."""
    table, _, capacity = text.partition("=")
    if table not in TABLES_BY_NAME:
        raise argparse.ArgumentTypeError(
            f"must be TABLE=RCU/WCU with TABLE one of {', '.join(TABLES_BY_NAME)}, not {text!r}")
    try:
        return TABLES_BY_NAME[table], Capacity.parse(capacity)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def stage_name(text: str) -> str:
    try:
        return check_stage_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def default_stack_file(stage: str) -> Path:
    return Path(".chat-harness") / f"aws-{stage}.json"


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, type=stage_name,
                        help="the stage's name: resources are called chat-harness-STAGE-*")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or 'default')")
    parser.add_argument("--stack-file", type=Path, metavar="PATH",
                        help="the stage's stack file (default .chat-harness/aws-STAGE.json)")


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    _add_target(parser)
    parser.add_argument("--billing", choices=("on-demand", "provisioned"), default="on-demand",
                        help="DynamoDB billing mode (default %(default)s)")
    parser.add_argument("--capacity", action="append", default=[], type=table_capacity,
                        metavar="TABLE=RCU/WCU",
                        help="provisioned capacity of a table (repeatable; others 5/5)")
    parser.add_argument("--routes", type=Path, default=DEFAULT_ROUTES_FILE, metavar="FILE",
                        help="route -> handler mapping (TOML; default: the chat's own)")
    parser.add_argument("--fanout", choices=FANOUT_STRATEGIES, metavar="STRATEGY",
                        help="the handlers' fan-out strategy (FANOUT_STRATEGY): sequential, "
                             "threads or batched (default: the routes file's, else threads)")
    parser.add_argument("--authorizer", metavar="NAME",
                        help="put the routes file's authorizer NAME on $connect (the chat's: "
                             "jwt; JWT_SECRET from this environment goes into its function's)")
    defaults = Throttling()
    parser.add_argument("--throttle-rate", type=float, default=defaults.rate, metavar="PER_S",
                        help="stage throttling: steady requests/s (default %(default)g)")
    parser.add_argument("--throttle-burst", type=int, default=defaults.burst, metavar="N",
                        help="stage throttling: burst (default %(default)s)")
    parser.add_argument("--plan", action="store_true",
                        help="print what would be created or updated, change nothing")


def add_destroy_arguments(parser: argparse.ArgumentParser) -> None:
    _add_target(parser)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", default="*", help="limit to a region (default any)")
    parser.add_argument("--account", default="*", help="limit to an account id (default any)")


def session_for(args: argparse.Namespace):
    import boto3

    return boto3.Session(profile_name=args.profile, region_name=args.region)


def run_deploy(args: argparse.Namespace) -> int:
    if args.capacity and args.billing != "provisioned":
        raise ValueError("--capacity needs --billing provisioned")
    session = session_for(args)
    options = DeployOptions(
        stage=args.stage, region=session.region_name, routes_file=args.routes,
        provisioned=args.billing == "provisioned", capacity=dict(args.capacity),
        fanout=args.fanout, authorizer=args.authorizer,
        throttling=Throttling(args.throttle_rate, args.throttle_burst))
    changes, stack = deploy(session, options, apply=not args.plan)
    for change in changes:
        print(change.line())
    if stack is None:
        counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "delete")}
        print("Plan: " + ", ".join(f"{n} to {a}" for a, n in counts.items())
              + ". Nothing was changed.")
        return 0
    path = args.stack_file or default_stack_file(args.stage)
    stack.write(path)
    print(f"WebSocket URL: {stack.websocket_url}")
    print(f"Stack file: {path}")
    return 0


def run_destroy(args: argparse.Namespace) -> int:
    session = session_for(args)
    changes = destroy(session, args.stage, session.region_name)
    for change in changes:
        print(change.line())
    path = args.stack_file or default_stack_file(args.stage)
    path.unlink(missing_ok=True)
    print(f"Deleted {len(changes)} resources of stage {args.stage}." if changes
          else f"Nothing tagged with stage {args.stage} in {session.region_name}.")
    return 0


def run_policy(args: argparse.Namespace) -> int:
    print(json.dumps(deployer_policy(args.region, args.account), indent=2))
    return 0
