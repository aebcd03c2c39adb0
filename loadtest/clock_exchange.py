"""The clock exchange between Locust's master and its workers, over Locust's own messages.

Each worker sends a round of probes to the master every ``ROUND_EVERY_S`` for as long as
it runs; the master answers each at once with its own two readings, and the worker keeps
the four readings of every probe (``loadtest/clock.py`` turns them into estimates). The
probes of a round leave ``PROBE_GAP_S`` apart so that they do not queue behind one another;
a round's best probe (the smallest round trip) is the one used.

``CHAT_HARNESS_CLOCK_SHIFT_S`` (seconds) shifts this process's wall clock, as a machine
whose clock is wrong would have it: the test of the correction runs a worker with it.
"""

from __future__ import annotations

import os
import time

import gevent

from loadtest.clock import ClockOffsets, ClockSample, best_estimate

CLOCK_PROBE = "clock_probe"
CLOCK_REPLY = "clock_reply"
ROUND_EVERY_S = 5.0
PROBES_PER_ROUND = 4
PROBE_GAP_S = 0.05
CLOCK_SHIFT_VARIABLE = "CHAT_HARNESS_CLOCK_SHIFT_S"


def shift_wall_clock_from_environment() -> float:
    """Shift ``time.time`` by ``CHAT_HARNESS_CLOCK_SHIFT_S`` seconds; the shift (0.0: unset).

    Every wall-clock reading of the process goes through ``time.time`` (the users' send,
    receipt, open and close times, the ledger's, the probes' answers), so shifting it
    shifts them all, as on a machine with a wrong clock; the monotonic clocks and gevent's
    timers are untouched, so nothing waits longer or shorter.
    """
    text = os.environ.get(CLOCK_SHIFT_VARIABLE, "").strip()
    if not text:
        return 0.0
    try:
        shift = float(text)
    except ValueError:
        raise ValueError(f"{CLOCK_SHIFT_VARIABLE} must be seconds, e.g. 0.25, "
                         f"not {text!r}") from None
    unshifted = time.time

    def shifted_time() -> float:
        return unshifted() + shift

    time.time = shifted_time
    return shift


def answer_probes(runner) -> None:
    """The master's side: each probe goes back to its worker with the master's readings
    on receipt and on reply."""
    def answer(environment, msg, **_) -> None:
        received = time.time()
        runner.send_message(CLOCK_REPLY, {**msg.data, "master_received": received,
                                          "master_replied": time.time()},
                            client_id=msg.node_id)

    runner.register_message(CLOCK_PROBE, answer)


class ClockProbe:
    """A worker's side: rounds of probes for the whole session, the replies kept by round."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self._rounds: list[list[ClockSample]] = []
        self._greenlet: gevent.Greenlet | None = None
        runner.register_message(CLOCK_REPLY, self._replied)

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._probe)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _probe(self) -> None:
        while True:
            self._rounds.append([])
            for _ in range(PROBES_PER_ROUND):
                self.runner.send_message(CLOCK_PROBE, {"round": len(self._rounds) - 1,
                                                       "sent": time.time()})
                gevent.sleep(PROBE_GAP_S)
            gevent.sleep(ROUND_EVERY_S)

    def _replied(self, environment, msg, **_) -> None:
        received = time.time()
        reply = msg.data
        self._rounds[reply["round"]].append(ClockSample(
            reply["sent"], reply["master_received"], reply["master_replied"], received))

    def offsets(self) -> ClockOffsets:
        """Every round's best estimate so far (a round whose replies are all still out
        has none)."""
        estimates = (best_estimate(samples) for samples in self._rounds)
        return ClockOffsets(estimate for estimate in estimates if estimate is not None)
