"""``chat-harness report RUN_DIR``: capacity.json, report.html and report.md for a load run."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from reports.capacity import CHAT_ROUTES, Analysis, CloudWatchAnalysis, Target
from reports.cloudwatch import run_consumption
from reports.price_list import regional_prices
from reports.pricing import PriceTable, ReportPrices
from reports.run_data import RunData

CAPACITY = "capacity.json"
FILES = (CAPACITY, "report.html", "report.md")  # what ``write`` writes into a run directory
HELP = "size DynamoDB from a load run: report.html, report.md, capacity.json"
DESCRIPTION = ("Build the capacity report of a run directory: consumption per route, table and "
               "second, scaling against N, a provisioned recommendation and monthly costs for a "
               "target workload, break points.")


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a run directory written by 'chat-harness load'")
    add_target_arguments(parser)
    add_price_arguments(parser)


def add_target_arguments(parser) -> None:
    """The workload to size for; each defaults to the run's own."""
    group = parser.add_argument_group("target workload (default: the run's own)")
    group.add_argument("--users", type=int, help="connected users")
    group.add_argument("--messages-per-user-per-min", type=float, metavar="M",
                       help="chat messages per user per minute")
    group.add_argument("--heartbeat-s", type=float, metavar="S", help="heartbeat interval")
    group.add_argument("--session-minutes", type=float, default=60.0, metavar="MIN",
                       help="mean connection length, for $connect/$disconnect rates "
                            "(default %(default)s)")
    group.add_argument("--target-utilisation", type=float, default=0.7, metavar="FRACTION",
                       help="auto-scaling target: provisioned = peak / this (default %(default)s)")


def add_price_arguments(parser) -> None:
    """Which prices the costs use; see ``report_prices``."""
    group = parser.add_argument_group(
        "prices", "default: a run on AWS, its region's from the AWS Price List API; a local "
                  "run, the shipped us-east-1 table").add_mutually_exclusive_group()
    group.add_argument("--region", metavar="REGION",
                       help="price this AWS region from the AWS Price List API (cached for 30 "
                            "days; the shipped us-east-1 table if it cannot be reached)")
    group.add_argument("--prices", type=Path, metavar="TOML",
                       help="a price table file in the format of reports/prices.toml")


def report_prices(run: RunData, args=None, pricing=None) -> ReportPrices:
    """The prices the costs use: a ``--prices`` file as it is; else the region of ``--region``
    or of a run on AWS, from the AWS Price List API (``pricing``: a boto3 "pricing" client, by
    default one with the usual credentials) or, failing that, the shipped table and why; else,
    for a local run, the shipped us-east-1 table, with no call to AWS."""
    path = getattr(args, "prices", None)
    if path is not None:
        return ReportPrices(PriceTable.load(path))
    region = getattr(args, "region", None) or (run.summary["stack"]["region"] if run.on_aws
                                               else None)
    if region is None:
        return ReportPrices(PriceTable.load())
    return regional_prices(region, pricing)


def build(run_dir: Path, args=None, pricing=None) -> dict:
    """The capacity document for the run in ``run_dir``, for the target ``args`` name, priced
    as ``report_prices`` chooses."""
    run = RunData.load(run_dir)
    target = Target.of_run(
        run, users=getattr(args, "users", None),
        messages_per_user_per_min=getattr(args, "messages_per_user_per_min", None),
        heartbeat_s=getattr(args, "heartbeat_s", None),
        session_minutes=getattr(args, "session_minutes", None),
        target_utilisation=getattr(args, "target_utilisation", None))
    prices = report_prices(run, args, pricing)
    if run.on_aws:
        return CloudWatchAnalysis(run, target, prices, cloudwatch_consumption(run)).document()
    return Analysis(run, target, prices).document()


def cloudwatch_consumption(run: RunData, cloudwatch=None) -> dict:
    """The run's window read from CloudWatch (kept in cloudwatch.json), a minute either side.
    CloudWatch publishes with a delay of minutes: report again later for the last ones."""
    import boto3

    cloudwatch = cloudwatch or boto3.client("cloudwatch", region_name=run.summary["stack"]["region"])
    document = run_consumption(
        cloudwatch, tables=list(run.tables.values()), routes=list(CHAT_ROUTES),
        start=datetime.fromtimestamp(run.summary["started_at"] - 60, UTC),
        end=datetime.fromtimestamp(run.summary["ended_at"] + 60, UTC))
    (run.directory / "cloudwatch.json").write_text(json.dumps(document, indent=2) + "\n")
    return document


def write(run_dir: Path, document: dict) -> list[Path]:
    from reports.render import render  # matplotlib is imported only when rendering

    capacity = run_dir / CAPACITY
    capacity.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return [capacity, *render(document, run_dir)]


def print_recommendation(document: dict) -> None:
    """The recommendation and its costs; prices that are not the wanted region's own, and
    why, as a warning on stderr (``chat-harness load`` prints this too, after its run)."""
    target = document["target"]
    print(f"Capacity for {target['users']} users, {target['messages_per_user_per_min']:g} "
          f"messages per user per minute (provisioned = peak / "
          f"{target['target_utilisation']:g}):")
    for table, entry in document["recommendation"]["tables"].items():
        read, write = entry["read"], entry["write"]
        print(f"  {table:<20} {read['provisioned']:>6} RCU (peak {read['peak_per_s']:.1f}/s)  "
              f"{write['provisioned']:>6} WCU (peak {write['peak_per_s']:.1f}/s)")
    costs, prices = document["costs"], document["costs"]["prices"]
    print(f"  DynamoDB per month: on-demand ${costs['dynamodb_on_demand']:.2f}, provisioned "
          f"${costs['dynamodb_provisioned']:.2f} ({prices['region']} list prices from "
          f"{prices['source']} as of {prices['as_of']})")
    if prices["fallback"]:
        print(f"warning: {prices['fallback']}", file=sys.stderr)


def run(args) -> int:
    document = build(args.run_dir, args)
    paths = write(args.run_dir, document)
    print_recommendation(document)
    print("Report: " + ", ".join(str(p) for p in paths))
    return 0
