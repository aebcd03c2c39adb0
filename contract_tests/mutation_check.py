"""Does the contract suite catch broken handlers? Run it against each mutant; each must fail.

    python -m contract_tests.mutation_check [MUTANT ...]

For each mutant in ``mutants/handlers.py`` (unpaginated scan, no Gone pruning,
ping stored, sender excluded) it writes a routes file that runs the chat's
routes through the mutant, runs ``pytest contract_tests -x`` on a local stack
with those handlers, and reports the first test that caught it. Exits 1 if any
mutant survives. Two suites run at a time: each spends most of its time waiting on
its stack, so two share this project's 2-core machine well.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contract_tests.mutants import MUTANT_NAMES
from system.routes import write_routes_variant

REPOSITORY = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 600
SUITES_AT_ONCE = 2


def mutant_routes(mutant: str, path: Path) -> Path:
    """The chat's routes file, every function's handler taken from the mutant module."""
    def mutated(document: dict) -> None:
        for spec in document["functions"].values():
            module = spec["handler"].split(".")[-2]
            attribute = "sendmessage_handler" if module == "sendmessage" else module
            spec["handler"] = f"contract_tests.mutants.handlers.{attribute}"
            spec["environment"] = {"CHAT_MUTANT": mutant}

    return write_routes_variant(path, mutated)


def run_suite(routes: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "contract_tests", "-x", "-q", "-p", "no:cacheprovider",
         "--routes", str(routes)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        env={**os.environ, "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")},
    )
    caught_by = re.findall(r"^FAILED (\S+)", result.stdout, re.MULTILINE)
    return result.returncode, caught_by[0] if caught_by else result.stdout.strip()[-300:]


def is_caught(mutant: str, directory: Path) -> bool:
    """Run the suite against one mutant; print which test caught it, and how fast."""
    routes = mutant_routes(mutant, directory / f"{mutant}.toml")
    started = time.perf_counter()
    code, detail = run_suite(routes)
    caught = code == 1
    print(f"{mutant:<18} {'caught' if caught else 'SURVIVED'} "
          f"in {time.perf_counter() - started:5.1f} s  {detail}", flush=True)
    return caught


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
        caught = dict(zip(mutants, pool.map(lambda m: is_caught(m, Path(directory)), mutants)))
    survivors = [mutant for mutant in mutants if not caught[mutant]]
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
