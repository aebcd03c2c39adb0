"""Is the load generator itself the bottleneck? Each Locust process samples its CPU
and how late a short gevent sleep wakes (event-loop lag); a step in which some
process was saturated is flagged in every output, because its latencies are then
partly the generator's."""

from __future__ import annotations

import os
import time

import gevent
import psutil

SAMPLE_EVERY_S = 1.0
PROBE_SLEEP_S = 0.05
CPU_SATURATED_PERCENT = 90.0  # Locust's own cpu_warning threshold
LAG_SATURATED_MS = 100.0  # gevent's monitor thread reports blocking from 100 ms


class GeneratorMonitor:
    """Samples (epoch s, event-loop lag ms, CPU % of one core) while the run lasts."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self.process = f"{os.uname().nodename}:{os.getpid()}"
        self._greenlet: gevent.Greenlet | None = None

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        psutil.Process().cpu_percent(None)  # the first reading only starts the count
        self._greenlet = gevent.spawn(self._sample)

    def _sample(self) -> None:
        me = psutil.Process()
        while True:
            started = time.perf_counter()
            gevent.sleep(PROBE_SLEEP_S)
            lag_ms = max(0.0, (time.perf_counter() - started - PROBE_SLEEP_S) * 1000)
            self.samples.append((time.time(), round(lag_ms, 3), me.cpu_percent(None)))
            gevent.sleep(SAMPLE_EVERY_S)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def report(self) -> dict:
        return {"process": self.process, "samples": self.samples}


def generator_health(reports: list[dict], window: tuple[float, float] | None = None) -> dict:
    """Per process in ``window``: peak CPU and lag, and whether it was saturated."""
    processes = []
    for report in reports:
        samples = [s for s in report["samples"]
                   if window is None or window[0] <= s[0] < window[1]]
        if not samples:
            continue
        lags = sorted(s[1] for s in samples)
        cpu = max(s[2] for s in samples)
        lag_p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        processes.append({
            "process": report["process"], "cpu_percent_max": cpu,
            "loop_lag_ms_p95": lag_p95, "loop_lag_ms_max": lags[-1],
            "saturated": cpu >= CPU_SATURATED_PERCENT or lag_p95 >= LAG_SATURATED_MS,
        })
    return {"saturated": any(p["saturated"] for p in processes), "processes": processes}
