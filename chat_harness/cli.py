"""``chat-harness``: one command for every part; each part defines its own subcommand
(``HELP``, ``DESCRIPTION``, ``add_arguments`` and ``run`` in its module).

``local`` is the local stack's own command line (``python -m system.local``); ``load``
runs Locust headless, then builds the capacity report; ``report`` and ``verify`` are
the report's.
"""

from __future__ import annotations

import argparse
import logging
import sys

from loadtest import run as load
from loadtest.parameters import LoadParameters
from reports import report, verify
from system.local import command as local
from system.local.dynamodb import BackendError
from system.options import user_errors_as_one_line


def load_then_report(args: argparse.Namespace) -> int:
    """The load run, then its capacity report (a report that fails loses no run data)."""
    args.run_dir = args.run_dir or load.new_run_dir()
    code = load.run(LoadParameters.from_options(args), args.run_dir, target=args.target,
                    fail_if=args.fail_if)
    if (args.run_dir / "summary.json").exists():
        try:
            report.run(args)
        except (ValueError, OSError) as error:
            print(f"chat-harness load: no capacity report: {error}", file=sys.stderr)
    return code


# name -> (the module that defines it, what runs it)
SUBCOMMANDS = {
    "local": (local, local.run),
    "load": (load, load_then_report),
    "report": (report, report.run),
    "verify": (verify, verify.run),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chat-harness",
        description="Verify and load-test a serverless WebSocket chat, locally or on AWS.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, (module, run) in SUBCOMMANDS.items():
        subparser = subcommands.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(subparser)
        subparser.set_defaults(run=run)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return user_errors_as_one_line(f"chat-harness {args.command}", lambda: args.run(args),
                                   (BackendError,))
