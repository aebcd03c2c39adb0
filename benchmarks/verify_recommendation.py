"""Does the capacity recommendation hold, and does half of it throttle? A measurement, run
by hand on a quiet machine (in a test it could fail for the machine's speed, not a bug:
a replay that runs faster than its run presses the tables harder than the run did).

Each round is a load run on a local stack (``chat-harness load``, the shape of
reports/tests/test_report_e2e.py by default) and ``chat-harness verify`` of it: a replay
with the tables provisioned at the report's recommendation, then at half of it, each
counting its throttled requests. Printed: per round, the throttled requests of both
replays; then in how many rounds the recommendation held (none throttled) and half of it
was pressed (some throttled).

Run it from the repository root, with the dev venv's Python:

    python benchmarks/verify_recommendation.py [--rounds 3] [--steps 5,10] [--step-hold 6]
        [--messages-per-minute 60] [--json results.json]

Every round runs in a temporary folder, removed at the end; the stacks are stopped by
the commands that start them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from system.options import file_in_existing_directory

ROUND_TIMEOUT_S = 900


def chat_harness(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "chat_harness", *arguments], check=True,
                   capture_output=True, text=True, timeout=ROUND_TIMEOUT_S)


def one_round(run_dir: Path, args: argparse.Namespace) -> dict:
    chat_harness("load", "--run-dir", str(run_dir), "--steps", args.steps,
                 "--step-hold", f"{args.step_hold:g}",
                 "--messages-per-minute", f"{args.messages_per_minute:g}",
                 "--heartbeat-s", "5")
    result = subprocess.run([sys.executable, "-m", "chat_harness", "verify", str(run_dir)],
                            capture_output=True, text=True, timeout=ROUND_TIMEOUT_S,
                            check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"verify failed: {result.stderr.strip()[-2000:]}")
    verdict = json.loads((run_dir / "verify.json").read_text())
    return {key: verdict[key]["throttled_total"] for key in ("at_recommendation", "at_half")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", default="5,10")
    parser.add_argument("--step-hold", type=float, default=6.0)
    parser.add_argument("--messages-per-minute", type=float, default=60.0)
    parser.add_argument("--json", type=file_in_existing_directory, default=None)
    args = parser.parse_args()
    rounds = []
    print(f"{'round':>5} {'throttled at the recommendation':>32} {'throttled at half':>18}")
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="verify-bench-") as directory:
            rounds.append(one_round(Path(directory) / "run", args))
        print(f"{number:>5} {rounds[-1]['at_recommendation']:>32} "
              f"{rounds[-1]['at_half']:>18}", flush=True)
    held = sum(r["at_recommendation"] == 0 for r in rounds)
    pressed = sum(r["at_half"] > 0 for r in rounds)
    print(f"The recommendation held in {held} of {len(rounds)} rounds; half of it throttled "
          f"in {pressed} of {len(rounds)}.")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "held": held,
                                         "half_pressed": pressed}, indent=2) + "\n")


if __name__ == "__main__":
    main()
