"""Does the contract suite catch broken handlers? Run it against each mutant; each must fail.

    python -m contract_tests.mutation_check [MUTANT ...]

For each mutant in ``mutants/handlers.py`` (unpaginated scan, no Gone pruning,
ping stored, sender excluded) it writes a routes file that runs the chat's
routes through the mutant, runs the contract suite with ``-x`` on a local stack with
those handlers, the tests known to catch the mutant first (``mutants/__init__.py``),
and reports the test that caught it. Exits 1 if any mutant survives. Two suites run at
a time: each spends most of its time waiting on its stack, so two share this
project's 2-core machine well. ``test_mutants.py`` makes the same runs, a test per
mutant, in the ordinary pytest run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contract_tests.mutants import CAUGHT_FIRST_BY, MUTANT_NAMES
from system.routes import write_routes_variant

SUITE = Path(__file__).resolve().parent
REPOSITORY = SUITE.parent
# The tests that run this check: a run of the suite against a mutant must not run them.
MUTANT_TESTS = SUITE / "test_mutants.py"
RUN_TIMEOUT_S = 600
SUITES_AT_ONCE = 2
OUTPUT_TAIL_LINES = 15


@dataclass(frozen=True)
class SuiteRun:
    """How a run of the contract suite against one mutant ended."""

    mutant: str
    exit_code: int
    failed: tuple[str, ...]  # node ids, as the short summary lists the failed tests
    output: str = field(repr=False)
    seconds: float

    @property
    def caught(self) -> bool:
        """A test failed. Exit code 1 alone is not enough: a stack that will not start
        ends the run with errors, not failures, and says nothing of the mutant."""
        return self.exit_code == pytest.ExitCode.TESTS_FAILED and bool(self.failed)

    def summary(self) -> str:
        if self.caught:
            return f"mutant {self.mutant} caught in {self.seconds:.1f} s by {self.failed[0]}"
        ending = ("passed" if self.exit_code == pytest.ExitCode.OK
                  else f"ended with exit code {self.exit_code} and no failed test")
        tail = "\n".join(self.output.strip().splitlines()[-OUTPUT_TAIL_LINES:])
        return (f"mutant {self.mutant} SURVIVED: the contract suite against it {ending} "
                f"in {self.seconds:.1f} s; its output ends:\n{tail}")


def mutant_routes(mutant: str, path: Path) -> Path:
    """The chat's routes file, every function's handler taken from the mutant module."""
    def mutated(document: dict) -> None:
        for spec in document["functions"].values():
            module = spec["handler"].split(".")[-2]
            attribute = "sendmessage_handler" if module == "sendmessage" else module
            spec["handler"] = f"contract_tests.mutants.handlers.{attribute}"
            spec["environment"] = {"CHAT_MUTANT": mutant}

    return write_routes_variant(path, mutated)


def run_suite_against(mutant: str, directory: Path) -> SuiteRun:
    """The contract suite on a local stack running ``mutant`` (its routes file written
    into ``directory``), stopping at the first failure: the tests known to catch it
    first, in the order given, then the whole suite."""
    routes = mutant_routes(mutant, directory / f"{mutant}.toml")
    catchers = [str(SUITE / node_id) for node_id in CAUGHT_FIRST_BY[mutant]]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *catchers, str(SUITE), f"--ignore={MUTANT_TESTS}",
         # pytest would otherwise drop a node id inside a directory it is also given and
         # run that test in its file's turn; kept, a catcher that passes runs again there.
         "--keep-duplicates",
         "-x", "-q", "-p", "no:cacheprovider", "--routes", str(routes)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    return SuiteRun(mutant, result.returncode,
                    tuple(re.findall(r"^FAILED (\S+)", result.stdout, re.MULTILINE)),
                    result.stdout + result.stderr, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", metavar="MUTANT",
                        help=f"some of {', '.join(MUTANT_NAMES)} (default: all)")
    mutants = parser.parse_args(argv).mutants or list(MUTANT_NAMES)
    unknown = set(mutants) - set(MUTANT_NAMES)
    if unknown:
        parser.error(f"unknown mutants {sorted(unknown)}; known: {', '.join(MUTANT_NAMES)}")
    with tempfile.TemporaryDirectory(prefix="mutants-") as directory, \
            ThreadPoolExecutor(SUITES_AT_ONCE) as pool:
        def run_and_report(mutant: str) -> SuiteRun:
            run = run_suite_against(mutant, Path(directory))
            print(run.summary(), flush=True)
            return run

        survivors = [run.mutant for run in pool.map(run_and_report, mutants) if not run.caught]
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
