"""From a measured run to a DynamoDB size: consumption, scaling, recommendation, costs, limits.

Everything here is arithmetic on what the run recorded (``RunData``); the
result is the ``capacity.json`` document that the HTML and Markdown reports
render. The sizing follows from the chat's design: a chat message is one
PutItem on MessageHistory plus one Scan of ActiveConnections, whose reads grow
with the number of connections N, so reads per second grow with N squared at a
fixed per-user message rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from loadtest.parameters import LoadParameters
from reports import fanout, pricing
from reports.fit import RULES as FIT_RULES
from reports.fit import linear_fit
from reports.run_data import RunData
from system.apigateway_quotas import NEW_CONNECTIONS_PER_SECOND
from system.dynamodb_capacity import read_units
from system.fanout_strategies import DEFAULT_FANOUT_CONCURRENCY, DEFAULT_FANOUT_STRATEGY
from system.local.aws_latency import LatencyTableError, load_latency_table
from system.local.capacity import TokenBucket
from system.routes import DEFAULT_MEMORY_MB

SCAN_PAGE_BYTES = 1024 * 1024  # one Scan page stops at 1 MB (Developer Guide, "Scan")
PARTITION_READ_UNITS = 3000  # per partition per second (Developer Guide, "Partitions")
PARTITION_WRITE_UNITS = 1000
CHAT_ROUTES = ("sendmessage", "$connect", "$disconnect")  # the routes that use the tables
KINDS = ("read", "write")


@dataclass(frozen=True)
class Target:
    """The workload to size for; unset fields default to the run's own."""

    users: int
    messages_per_user_per_min: float
    heartbeat_s: float
    session_minutes: float = 60.0
    target_utilisation: float = 0.7

    @classmethod
    def of_run(cls, run: RunData, **overrides) -> Target:
        load = LoadParameters.from_summary(run.summary["load"])
        fields = {"users": run.summary["users_peak"],
                  "messages_per_user_per_min": load.messages_per_minute,
                  "heartbeat_s": load.heartbeat_s}
        fields.update({k: v for k, v in overrides.items() if v is not None})
        target = cls(**fields)
        if target.users < 1 or target.messages_per_user_per_min < 0 or target.heartbeat_s <= 0 \
                or target.session_minutes <= 0 or not 0 < target.target_utilisation <= 1:
            raise ValueError("the target needs users >= 1, messages >= 0, heartbeat > 0 s, "
                             "session > 0 min and a target utilisation in (0, 1]")
        return target

    def is_the_run(self, run: RunData) -> bool:
        return self == Target.of_run(run, session_minutes=self.session_minutes,
                                     target_utilisation=self.target_utilisation)


def distribution(values) -> dict:
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        return {"count": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0}
    return {"count": int(values.size), "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)), "max": float(values.max()),
            "mean": float(values.mean())}


def scan_read_units(total_bytes: float) -> float:
    """An eventually consistent full Scan of ``total_bytes``: each 1 MB page rounded on its own."""
    full_pages, rest = divmod(max(0.0, total_bytes), SCAN_PAGE_BYTES)
    units = full_pages * read_units(SCAN_PAGE_BYTES)
    return units + read_units(math.ceil(rest)) if rest or not full_pages else units


def carries(rate: float, events: list[tuple[float, float]]) -> bool:
    """Whether the capacity governor's bucket at ``rate`` units per second, with no burst
    credit, admits every one of ``events`` (sorted (time, units))."""
    bucket = TokenBucket(rate, burst_s=0)
    for t, units in events:
        if not bucket.admits(t):
            return False
        bucket.charge(units, t)
    return True


def required_rate(events: list[tuple[float, float]], precision: float = 0.01) -> float:
    """The lowest provisioned units per second that carry ``events`` (sorted (time, units))
    through the capacity governor's bucket without a throttle, burst credit aside."""
    if not events:
        return 0.0
    low, high = 0.0, sum(units for _, units in events) + 1
    while high - low > precision:
        middle = (low + high) / 2
        low, high = (low, middle) if carries(middle, events) else (middle, high)
    return high


def sliding_peak(events: list[tuple[float, float]], window_s: float = 1.0) -> tuple[float, float]:
    """(units, start) of the window of ``window_s`` holding the most units; events sorted."""
    best, best_at, total, first = 0.0, events[0][0] if events else 0.0, 0.0, 0
    for t, units in events:
        total += units
        while events[first][0] + window_s <= t:  # outside [start, start + window)
            total -= events[first][1]
            first += 1
        if total > best:
            best, best_at = total, events[first][0]
    return best, best_at


class Analysis:
    """The capacity document for one run and one target workload."""

    def __init__(self, run: RunData, target: Target, prices: pricing.ReportPrices) -> None:
        self.run = run
        self.target = target
        self.prices = prices.table
        self.prices_fallback = prices.fallback
        self.roles = {name: role for role, name in run.tables.items()}
        self.size_based = run.summary["stack"].get("capacity_fidelity") == "size-based"

    # -- what each operation cost ----------------------------------------------------------

    def charged(self, operation: dict) -> dict[str, dict[str, float]]:
        """{table: {"read", "write"}} on the sizing basis: the backend's figures where they
        follow DynamoDB's rules (size-based), else the model's."""
        measured, modelled = operation.get("measured") or {}, operation.get("modelled") or {}
        basis = measured if self.size_based else modelled
        units = {t: dict(v) for t, v in basis.items()}
        for table, value in (modelled if self.size_based else measured).items():
            units.setdefault(table, dict(value))  # e.g. a failed conditional write
        return units

    def served(self) -> list[dict]:
        return [op for op in self.run.operations if not op.get("throttled")]

    def per_invocation(self) -> dict:
        """Route -> table -> read/write -> measured and modelled per-invocation distributions."""
        sums: dict[str, dict] = {}
        for op in self.served():
            if not op.get("invocation"):
                continue
            entry = sums.setdefault(op["invocation"], {"route": op["route"], "tables": {}})
            for source in ("measured", "modelled"):
                for table, units in (op.get(source) or {}).items():
                    totals = entry["tables"].setdefault(table, {
                        f"{s}_{k}": 0.0 for s in ("measured", "modelled") for k in KINDS})
                    for kind in KINDS:
                        totals[f"{source}_{kind}"] += units[kind]
        grouped: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        for entry in sums.values():
            for table, totals in entry["tables"].items():
                for key, value in totals.items():
                    grouped[entry["route"]][table][key].append(value)
        return {route: {table: {key: distribution(values) for key, values in keys.items()}
                        for table, keys in tables.items()} for route, tables in grouped.items()}

    def cross_check(self) -> dict:
        """Every operation's reported capacity against the model's, disagreements listed."""
        checked, unreported, disagreements = 0, 0, defaultdict(list)
        for op in self.served():
            measured, modelled = op.get("measured") or {}, op.get("modelled")
            if modelled is None:
                continue
            if not measured and op.get("error"):  # e.g. a failed conditional write
                unreported += 1
                continue
            for table in set(measured) | set(modelled):
                m = measured.get(table, {"read": 0.0, "write": 0.0})
                e = modelled.get(table, {"read": 0.0, "write": 0.0})
                checked += 1
                if any(abs(m[k] - e[k]) > 1e-9 for k in KINDS):
                    disagreements[f"{op['op']} {table}"].append(
                        {"measured": m, "modelled": e, "bytes": op.get("bytes")})
        backend = self.run.summary["stack"].get("dynamodb_backend")
        return {
            "backend": backend, "fidelity": self.run.summary["stack"].get("capacity_fidelity"),
            "checked": checked, "disagreed": sum(len(v) for v in disagreements.values()),
            "failed_unreported": unreported,
            "by_operation": {key: {"count": len(cases), "examples": cases[:3]}
                             for key, cases in sorted(disagreements.items())},
            "known_cause": BACKEND_QUIRKS.get(backend),
            "basis": "measured" if self.size_based else "modelled",
        }

    def consumption_events(self) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """Table -> read/write -> [(time, units)] of every served operation."""
        events = {table: {kind: [] for kind in KINDS} for table in self.roles}
        for op in self.served():
            for table, units in self.charged(op).items():
                for kind in KINDS:
                    if table in events and units[kind]:
                        events[table][kind].append((op["t"], units[kind]))
        return events

    def per_second(self) -> dict:
        """Table -> read and write units per second over the run, and their peaks: the most
        consumed in any one-second window, which is what a per-second bucket must hold."""
        started = self.run.summary["started_at"]
        events = self.consumption_events()
        times = [t for kinds in events.values() for e in kinds.values() for t, _ in e]
        start = math.floor(min([started, *times]))
        length = math.ceil(max([self.run.summary["ended_at"], *times])) - start + 1
        result = {}
        for table, kinds in events.items():
            result[table] = {"start": start}
            for kind, happened in kinds.items():
                series = np.zeros(length)
                for t, units in happened:
                    series[math.floor(t) - start] += units
                peak, peak_at = sliding_peak(sorted(happened)) if happened else (0.0, started)
                result[table].update({kind: series.round(3).tolist(), f"{kind}_peak": peak,
                                      f"{kind}_peak_at_s": peak_at - started,
                                      f"{kind}_peak_during": self.phase(peak_at - started),
                                      f"{kind}_required": required_rate(sorted(happened)),
                                      f"{kind}_mean": float(series.mean())})
        return result

    def phase(self, at_s: float) -> str:
        """Which part of the run ``at_s`` (seconds since the start) falls in."""
        steps = self.run.summary["steps"]
        for number, step in enumerate(steps, 1):
            if step["starts_at_s"] <= at_s < step["ends_at_s"]:
                return f"step {number}, {step['users']} users"
        return "the end: users leaving" if at_s >= steps[-1]["ends_at_s"] else "the start"

    def peak_factor(self, per_second: dict) -> float:
        """Peak over mean per second in the last step's steady part: how bursty the load is."""
        last = self.run.summary["steps"][-1]
        settled = last["starts_at_s"] + (last["ends_at_s"] - last["starts_at_s"]) / 3
        factors = [1.0]
        for series in per_second.values():
            offset = self.run.summary["started_at"] - series["start"]
            window = slice(math.ceil(offset + settled), math.floor(offset + last["ends_at_s"]))
            for kind in KINDS:
                values = np.asarray(series[kind][window])
                if values.size and (values > 0).mean() >= 0.5:
                    factors.append(float(values.max() / values.mean()))
        return max(factors)

    # -- scaling ---------------------------------------------------------------------------

    def scan_scaling(self) -> dict:
        """Bytes read by the broadcast Scan against the connections it returned, fitted."""
        table = self.run.tables["active_connections"]
        scans = [op for op in self.served() if op["op"] == "Scan" and table in op["tables"]]
        fit = linear_fit([op["items"] for op in scans], [op["bytes"] for op in scans])
        row_bytes = fit["slope"] if fit else (
            sum(op["bytes"] for op in scans) / max(1, sum(op["items"] for op in scans)))
        base = fit["intercept"] if fit else 0.0
        errors = [abs(self.charged(op)[table]["read"] - scan_read_units(base + row_bytes * op["items"]))
                  for op in scans if table in self.charged(op)]
        return {"scans": len(scans), "bytes_fit": fit, "row_bytes": row_bytes,
                "base_bytes": base, "points": [[op["items"], op["bytes"]] for op in scans],
                "read_units_error": distribution(errors)}

    def route_costs(self) -> dict:
        """Per route and table: units per invocation apart from the Scan, Scans per
        invocation, and the bytes of billed storage an invocation adds (its writes' net);
        the Scan itself is priced from the fit at the target's N."""
        active = self.run.tables["active_connections"]
        per_route: dict = defaultdict(lambda: {"invocations": set(), "scans": 0,
                                               "units": defaultdict(lambda: [0.0, 0.0]),
                                               "stored": defaultdict(float)})
        for op in self.served():
            if not op.get("invocation") or op["route"] not in CHAT_ROUTES:
                continue
            entry = per_route[op["route"]]
            entry["invocations"].add(op["invocation"])
            if op["op"] == "Scan" and active in op["tables"]:
                entry["scans"] += 1
                continue
            for table, units in self.charged(op).items():
                entry["units"][table][0] += units["read"]
                entry["units"][table][1] += units["write"]
            if op.get("stored_bytes") is not None:
                entry["stored"][op["tables"][0]] += op["stored_bytes"]
        result = {}
        for route, entry in per_route.items():
            n = len(entry["invocations"])
            result[route] = {"invocations": n, "scans_per_invocation": entry["scans"] / n,
                             "units_per_invocation": {
                                 table: {"read": r / n, "write": w / n}
                                 for table, (r, w) in entry["units"].items()},
                             "stored_bytes_per_invocation": {
                                 table: stored / n for table, stored in entry["stored"].items()}}
        return result

    def rates(self, users: float) -> dict[str, float]:
        """Invocations per second per route at ``users`` (the target's per-user rates)."""
        churn = users / (self.target.session_minutes * 60)
        return {"sendmessage": users * self.target.messages_per_user_per_min / 60,
                "$connect": churn, "$disconnect": churn}

    def mean_units(self, users: float, route_costs: dict, scaling: dict) -> dict:
        """Mean read/write units per second per table at ``users``."""
        active = self.run.tables["active_connections"]
        scan = scan_read_units(scaling["base_bytes"] + scaling["row_bytes"] * users)
        totals = {table: {"read": 0.0, "write": 0.0} for table in self.roles}
        for route, rate in self.rates(users).items():
            costs = route_costs.get(route)
            if costs is None:
                continue
            totals[active]["read"] += rate * costs["scans_per_invocation"] * scan
            for table, units in costs["units_per_invocation"].items():
                if table in totals:
                    for kind in KINDS:
                        totals[table][kind] += rate * units[kind]
        return totals

    # -- the recommendation ----------------------------------------------------------------

    def recommendation(self, per_second: dict, route_costs: dict, scaling: dict) -> dict:
        factor = self.peak_factor(per_second)
        mean = self.mean_units(self.target.users, route_costs, scaling)
        own_run = self.target.is_the_run(self.run)
        u = self.target.target_utilisation
        tables = {}
        for table in self.roles:
            entry = {}
            for kind in KINDS:
                peak = mean[table][kind] * factor
                if own_run:  # the run's own bursts (ramps, the disconnects at its end) count too
                    peak = max(peak, per_second[table][f"{kind}_required"])
                provisioned = max(1, math.ceil(peak / u))
                entry[kind] = {
                    "mean_per_s": mean[table][kind], "peak_per_s": peak,
                    "provisioned": provisioned,
                    "autoscaling": {"target_utilisation": u,
                                    "min": max(1, math.ceil(mean[table][kind] / u)),
                                    "max": max(provisioned, math.ceil(2 * peak / u))},
                }
            tables[table] = entry
        return {"peak_factor": factor, "sized_from_own_peaks": own_run, "tables": tables}

    def storage(self, route_costs: dict) -> dict | None:
        """How the tables' billed storage grows at the target: each route's rate times what
        an invocation of it adds; None where the run did not measure it (no operations
        log, or one from before stored bytes were logged)."""
        if not any(op.get("stored_bytes") is not None for op in self.run.operations):
            return None
        rates = self.rates(self.target.users)
        return pricing.dynamodb_storage_growth(self.prices, {
            table: sum(rate * route_costs.get(route, {}).get(
                "stored_bytes_per_invocation", {}).get(table, 0.0)
                for route, rate in rates.items())
            for table in self.roles})

    def costs(self, recommendation: dict, route_costs: dict) -> dict:
        t, p = self.target, self.prices
        tables = recommendation["tables"]
        mean_r = sum(e["read"]["mean_per_s"] for e in tables.values())
        mean_w = sum(e["write"]["mean_per_s"] for e in tables.values())
        rates = self.rates(t.users)
        heartbeats = t.users / t.heartbeat_s
        durations = self.lambda_durations()
        invocations = {f"sendmessage (chat){'' if f == fanout.BROADCASTER else ': ' + f}":
                       (rates["sendmessage"] * count, ms)
                       for f, count, ms in self.chat_invocations()}
        invocations.update({"sendmessage (heartbeat)": (heartbeats, durations["heartbeat"]),
                            "$connect": (rates["$connect"], durations["$connect"]),
                            "$disconnect": (rates["$disconnect"], durations["$disconnect"])})
        inbound = rates["sendmessage"] + heartbeats
        outbound = rates["sendmessage"] * t.users + self.fanout["presence"]["posts_per_s"]
        return {
            "prices": {"region": p.region, "source": p.source, "as_of": p.as_of,
                       "fallback": self.prices_fallback},
            "dynamodb_on_demand": pricing.dynamodb_on_demand_monthly(p, mean_r, mean_w),
            "dynamodb_provisioned": pricing.dynamodb_provisioned_monthly(
                p, sum(e["read"]["provisioned"] for e in tables.values()),
                sum(e["write"]["provisioned"] for e in tables.values())),
            "dynamodb_autoscaled": pricing.dynamodb_provisioned_monthly(
                p, sum(max(1, e["read"]["mean_per_s"] / t.target_utilisation)
                       for e in tables.values()),
                sum(max(1, e["write"]["mean_per_s"] / t.target_utilisation)
                    for e in tables.values())),
            "dynamodb_storage": self.storage(route_costs),
            "lambda": {name: {"per_s": rate, "duration_ms": ms,
                              "monthly": pricing.lambda_monthly(p, rate, ms)}
                       for name, (rate, ms) in invocations.items()},
            "apigateway": {"messages_per_s": inbound + outbound, "inbound_per_s": inbound,
                           "outbound_per_s": outbound, "connections": t.users,
                           "monthly": pricing.apigateway_websocket_monthly(
                               p, inbound + outbound, t.users)},
        }

    def durations_by_function(self) -> dict[str, list[float]]:
        by_function = defaultdict(list)
        for invocation in self.run.invocations:
            by_function[invocation["function"]].append(invocation["duration_ms"])
        return by_function

    def lambda_durations(self) -> dict[str, float]:
        """Mean duration (ms) per kind of invocation that does not grow with N, from the run
        (a heartbeat: the quickest 5 % of SendMessageHandler's)."""
        by_function = self.durations_by_function()
        sendmessage = np.asarray(by_function.get("SendMessageHandler") or [1.0])
        chat = float(np.percentile(sendmessage, 95))
        return {"heartbeat": float(np.percentile(sendmessage, 5)),
                "$connect": float(np.mean(by_function.get("ConnectHandler") or [chat])),
                "$disconnect": float(np.mean(by_function.get("DisconnectHandler") or [chat]))}

    def chat_invocations(self) -> list[tuple[str, int, float]]:
        """(function, invocations per chat message, ms each) at the target's N for the run's
        strategy, from the fan-out's cost model; without one, the run's p95 SendMessageHandler."""
        cost = self.fanout["lambda_cost"]
        if cost is None:
            durations = self.durations_by_function().get("SendMessageHandler") or [1.0]
            return [(fanout.BROADCASTER, 1, float(np.percentile(durations, 95)))]
        row = next(r for r in cost["strategies"] if r["strategy"] == self.fanout["strategy"])
        return [(i["function"], i["per_message"], i["ms"]) for i in row["invocations"]]

    # -- fan-out: its strategy, its fit, where it meets the Lambda timeout, its cost ---------

    # Why a run has no fan-out points, when that is known (CloudWatch keeps no per-message ones).
    NO_FANOUT_POINTS: str | None = None

    def fanout_strategy(self) -> tuple[str, str]:
        return fanout.run_strategy(self.run.metrics)

    def last_recipient_points(self, strategy: str) -> tuple[list[list[float]], str, int]:
        points, incomplete = fanout.last_recipient_points(self.run.metrics, strategy)
        return (*fanout.at_full_steps(points, [s["users"] for s in self.run.summary["steps"]]),
                incomplete)

    def batch_points(self) -> list[list[float]]:
        return fanout.batch_points(self.run.metrics)

    def batch_size(self) -> tuple[int, str]:
        return fanout.batch_size(self.run.metrics)

    def timeouts(self) -> dict[str, int] | None:
        """Function -> invocations that timed out (None where the run does not say)."""
        return fanout.timeouts_by_function(self.run.invocations)

    def timeout_ms(self) -> float:
        return fanout.timeout_ms_of(self.run.invocations)

    def delivered_posts(self) -> dict[str, int]:
        return fanout.delivered_posts(self.run.metrics)

    def presence_notices(self) -> str:
        """'on', 'off' or 'unknown': whether the run's $connect and $disconnect broadcast."""
        if fanout.broadcast_lines(self.run.metrics, fanout.PRESENCE_ROUTES):
            return "on"
        if any(i["function"] == "ConnectHandler" for i in self.run.invocations):
            return "off"
        return "unknown"

    def measured_post_ms(self, strategy: str, points: list[list[float]]) -> tuple[float | None,
                                                                                 str]:
        """One post's ms without a usable fit, and how it was found."""
        at_once = fanout.POSTS_AT_ONCE[strategy]
        return fanout.post_ms_from_points(points, strategy), (
            f"the median of each broadcast's ms ÷ its rounds of {at_once} posts (the fit is "
            f"not used)")

    def latency_table(self):
        """The AWS latency model the run had on, if it is the shipped table (the stack
        records the model's date only)."""
        date = self.run.summary["stack"].get("aws_latency")
        if not date:
            return None
        try:
            table = load_latency_table()
        except LatencyTableError:
            return None
        return table if table.date == date else None

    def post_model(self, strategy: str, invocation_fit: dict) -> tuple[fanout.PostModel | None,
                                                                       list[str]]:
        """The cost model's figures and, one line each, where they come from.

        One post: with the AWS latency model on, its table's post_to_connection p50 (and the
        Invoke API's p50 for a dispatch); else the run's, the fitted ms per recipient × the
        posts the strategy makes at a time, or (the fit refused) the median of each
        broadcast's ms ÷ its rounds of posts. An asynchronous Invoke is taken to last a post
        without the model (both are one signed HTTPS call to an AWS API). An invocation's
        time apart from its posts: the run's quickest 5 % of SendMessageHandler (heartbeats,
        which post nothing). Posts FANOUT_CONCURRENCY (32) at a time in threads and within a
        batch; batches of FANOUT_BATCH_SIZE (100 unless the run shows another)."""
        size, _ = self.batch_size()
        at_once = fanout.POSTS_AT_ONCE[strategy]
        table = self.latency_table()
        sources = []
        if table is not None:
            post_ms = table.entries["post_to_connection"].p50_ms
            invoke_ms = table.entries["lambda_invoke_api"].p50_ms
            sources.append(f"One post: {post_ms:g} ms, and one asynchronous Invoke "
                           f"{invoke_ms:g} ms: the p50s of the AWS latency model of {table.date}")
        else:
            line = invocation_fit["fit"]
            if invocation_fit["refused"] is None and line["slope"] > 0:
                post_ms = line["slope"] * at_once
                sources.append(f"One post: {post_ms:,.2f} ms, the run's fitted "
                               f"{line['slope']:,.3f} ms per recipient × {at_once} posts at a "
                               f"time ({strategy})")
            else:
                post_ms, how = self.measured_post_ms(strategy, invocation_fit["points"])
                if post_ms is None:
                    return None, ["no broadcast measured, nothing to price a post from"]
                sources.append(f"One post: {post_ms:,.2f} ms, {how}")
            invoke_ms = post_ms
            sources.append("An asynchronous Invoke is taken to last a post (both one HTTPS "
                           "call to an AWS API)")
            if self.run.summary["stack"].get("aws_latency"):
                sources.append(f"The run had the AWS latency model of "
                               f"{self.run.summary['stack']['aws_latency']} on, not the shipped "
                               f"table: its posts' time is the run's own")
            elif not self.run.on_aws:
                sources.append("The run had no AWS latency model: its posts took this machine's "
                               "time, not AWS's (tens of ms a post); a run with --aws-latency "
                               "prices AWS-like posts")
        durations = self.durations_by_function().get("SendMessageHandler")
        overhead_ms = float(np.percentile(durations, 5)) if durations else 0.0
        sources.append(f"An invocation apart from its posts: {overhead_ms:,.1f} ms (the run's "
                       f"quickest 5 % of SendMessageHandler: heartbeats)" if durations else
                       "An invocation apart from its posts: not measured, taken as 0 ms")
        sources.append(f"Posts {DEFAULT_FANOUT_CONCURRENCY} at a time (FANOUT_CONCURRENCY) in "
                       f"threads and within a batch; batches of {size} (FANOUT_BATCH_SIZE), "
                       f"each full")
        return fanout.PostModel(post_ms=post_ms, overhead_ms=overhead_ms, invoke_ms=invoke_ms,
                                batch_size=size), sources

    @cached_property
    def fanout(self) -> dict:
        """The fan-out section: the run's strategy; the time to the last recipient against
        recipients, fitted and judged (``reports.fit``: no extrapolation from a poor fit);
        the break point, the N at which the invocation doing the posts reaches the Lambda
        timeout (batched: one batch's invocation, at most FANOUT_BATCH_SIZE recipients, not
        the whole broadcast); the run's timed-out invocations; flags; each strategy's Lambda
        cost at the target's N; and what join and leave notices cost."""
        n = self.target.users
        strategy, strategy_source = self.fanout_strategy()
        timeout_ms = self.timeout_ms()
        points, points_from, incomplete = self.last_recipient_points(strategy)
        last = {**fanout.duration_fit(points, n, timeout_ms, self.NO_FANOUT_POINTS),
                "points_from": points_from}
        size, size_source = self.batch_size()
        batches = (fanout.duration_fit(self.batch_points(), min(n, size), timeout_ms,
                                       self.NO_FANOUT_POINTS) if strategy == "batched" else None)
        invocation = batches if batches is not None else last
        cost, cost_note = self.lambda_cost(strategy, invocation, timeout_ms)
        timeouts = self.timeouts()
        batched = strategy == "batched"
        return {
            "strategy": strategy, "strategy_source": strategy_source,
            "aws_latency": self.run.summary["stack"].get("aws_latency"),
            "timeout_ms": timeout_ms, "target_users": n, "fit_rules": FIT_RULES,
            "batch_size": size if batched else None,
            "batch_size_source": size_source if batched else None,
            "last_recipient": last, "batches": batches, "incomplete_broadcasts": incomplete,
            "break_point": fanout.break_point(invocation, timeout_ms, size if batched else None),
            "timeouts": timeouts,
            "flags": self.fanout_flags(strategy, invocation, cost, timeouts, incomplete,
                                       timeout_ms),
            "lambda_cost": cost, "lambda_cost_note": cost_note,
            "presence": self.presence(),
        }

    def lambda_cost(self, strategy: str, invocation: dict,
                    timeout_ms: float) -> tuple[dict | None, str | None]:
        """Each strategy's Lambda cost per chat message at the target's N (``post_model``
        says from what), or None and why not."""
        model, sources = self.post_model(strategy, invocation)
        if model is None:
            return None, sources[0]
        n, rate = self.target.users, self.rates(self.target.users)["sendmessage"]
        return {"post_ms": model.post_ms, "invoke_ms": model.invoke_ms,
                "overhead_ms": model.overhead_ms, "concurrency": model.concurrency,
                "batch_size": model.batch_size, "memory_mb": DEFAULT_MEMORY_MB,
                "messages_per_s": rate, "sources": sources,
                "strategies": fanout.strategy_costs(model, n, rate, timeout_ms, self.prices,
                                                    DEFAULT_MEMORY_MB)}, None

    def fanout_flags(self, strategy: str, invocation: dict, cost: dict | None,
                     timeouts: dict | None, incomplete: int, timeout_ms: float) -> list[str]:
        """One line each: a strategy whose predicted invocation at the target's N passes the
        timeout (the run's own from its fit when it may be extrapolated, the others from
        the cost model), the run's timed-out invocations, broadcasts missing a batch."""
        n, flags = self.target.users, []
        fitted = invocation["refused"] is None
        if fitted and invocation["predicted_ms"] >= timeout_ms:
            how = (f"each batch of {invocation['at']:,}, from the batches' fit"
                   if strategy == "batched" else "from the run's fit")
            flags.append(fanout.timeout_flag(
                strategy, n, invocation["predicted_ms"], timeout_ms,
                f"{how}: {invocation['count']:,} points, R² {invocation['fit']['r2']:.2f}"))
        for row in cost["strategies"] if cost else []:
            if row["passes_timeout"] and not (fitted and row["strategy"] == strategy):
                at_once = 1 if row["strategy"] == "sequential" else cost["concurrency"]
                flags.append(fanout.timeout_flag(
                    row["strategy"], n, row["longest_invocation_ms"], timeout_ms,
                    f"modelled: {cost['post_ms']:,.1f} ms a post, {at_once} at a time"))
        total = sum((timeouts or {}).values())
        if total:
            listed = ", ".join(f"{f} {c:,}" for f, c in timeouts.items() if c)
            flags.append(f"{total:,} invocation{'s' if total > 1 else ''} timed out in this run "
                         f"({listed}): a timed-out invocation prints no metric line, so the "
                         f"fits leave out the slowest broadcasts")
        if incomplete:
            flags.append(f"{incomplete:,} batched broadcast"
                         f"{'s lack' if incomplete > 1 else ' lacks'} a batch's line (timed out "
                         f"or lost): left out of the time to the last recipient")
        return flags

    def presence(self) -> dict:
        """Join and leave notices: their share of the run's posts, and their cost at the
        target (PRESENCE_NOTICES=off removes them)."""
        posts = self.delivered_posts()
        notices = sum(posts.get(route, 0) for route in fanout.PRESENCE_ROUTES)
        chat = posts.get(fanout.CHAT_ROUTE, 0)
        state = self.presence_notices()
        rates = self.rates(self.target.users)
        return {"notices": state,
                "run_posts": {"presence": notices, "chat": chat,
                              "share": notices / (notices + chat) if notices + chat else 0.0},
                **fanout.presence_cost(notices=state != "off", users=self.target.users,
                                       churn_per_s=rates["$connect"],
                                       messages_per_s=rates["sendmessage"], prices=self.prices)}

    # -- what the run used, and where the design stops -------------------------------------

    def run_usage(self) -> dict:
        """The run's own Lambda invocations, API Gateway messages and connection minutes."""
        functions = defaultdict(lambda: {"count": 0, "duration_ms": 0.0})
        for invocation in self.run.invocations:
            functions[invocation["function"]]["count"] += 1
            functions[invocation["function"]]["duration_ms"] += invocation["duration_ms"]
        summary, requests = self.run.summary, self.run.requests
        notices = self.fanout["presence"]["run_posts"]["presence"]
        inbound = requests.get("chat", 0) + requests.get("heartbeat", 0)
        outbound = summary["deliveries_received"] + notices
        minutes = sum(s["users"] * (s["ends_at_s"] - s["starts_at_s"]) / 60
                      for s in summary["steps"])
        duration, month = self.run.duration_s, pricing.SECONDS_PER_MONTH
        count = sum(f["count"] for f in functions.values())
        mean_ms = sum(f["duration_ms"] for f in functions.values()) / max(1, count)
        return {  # a month's cost at the run's rates, prorated to the run's length
            "lambda": {name: {"count": f["count"], "mean_ms": f["duration_ms"] / f["count"]}
                       for name, f in sorted(functions.items())},
            "lambda_cost": pricing.lambda_monthly(self.prices, count / duration, mean_ms)
            * duration / month,
            "apigateway_messages": {"inbound": inbound, "outbound": outbound},
            "connection_minutes": minutes,
            "apigateway_cost": pricing.apigateway_websocket_monthly(
                self.prices, (inbound + outbound) / duration, minutes / (duration / 60))
            * duration / month,
        }

    def break_points(self, route_costs: dict, scaling: dict) -> dict:
        t = self.target
        active = self.run.tables["active_connections"]

        def first_users(reaches) -> int | None:
            low, high = 1, 10_000_000
            if not reaches(high):
                return None
            while low < high:
                middle = (low + high) // 2
                low, high = (low, middle) if reaches(middle) else (middle + 1, high)
            return low

        def table_reaches(table: str, kind: str, limit: float):
            return lambda n: self.mean_units(n, route_costs, scaling)[table][kind] >= limit

        connects = defaultdict(int)
        for invocation in self.run.invocations:
            if invocation["function"] == "ConnectHandler":
                connects[math.floor(invocation["t"])] += 1
        row = scaling["row_bytes"]
        return {
            "scan_page_users": math.floor(SCAN_PAGE_BYTES / row) if row > 0 else None,
            "partition_read_users": first_users(
                table_reaches(active, "read", PARTITION_READ_UNITS)),
            "partition_write_users": {
                table: first_users(table_reaches(table, "write", PARTITION_WRITE_UNITS))
                for table in self.roles},
            # the fan-out section's, its one home: the N at which the invocation posting
            # reaches the timeout, from a fit good enough to extrapolate (else None, and why)
            "lambda_timeout_users": self.fanout["break_point"]["users"],
            "lambda_timeout_note": self.fanout["break_point"]["note"],
            "lambda_timeout_ms": self.fanout["timeout_ms"],
            "new_connections_per_s_limit": NEW_CONNECTIONS_PER_SECOND,
            "run_peak_new_connections_per_s": max(connects.values(), default=0),
            "reconnect_all_s": t.users / NEW_CONNECTIONS_PER_SECOND,
            "reconnect_storm_read_per_s": NEW_CONNECTIONS_PER_SECOND * scan_read_units(
                scaling["base_bytes"] + row * t.users / 2),
        }

    def document(self) -> dict:
        per_second = self.per_second()
        scaling = self.scan_scaling()
        route_costs = self.route_costs()
        recommendation = self.recommendation(per_second, route_costs, scaling)
        summary = self.run.summary
        return {
            "run": {"directory": str(self.run.directory), "started_at": summary["started_at"],
                    "duration_s": self.run.duration_s, "load": summary["load"],
                    "stack": summary["stack"], "users_peak": summary["users_peak"],
                    "messages_sent": summary["messages_sent"],
                    "delivery_ratio": summary["delivery_ratio"]},
            "target": asdict(self.target),
            "tables": self.run.tables,
            "per_invocation": self.per_invocation(),
            "cross_check": self.cross_check(),
            "per_second": per_second,
            "throttled": sum(1 for op in self.run.operations if op.get("throttled")),
            "scaling": {"scan": scaling, "route_costs": route_costs,
                        "projection": self.projection(route_costs, scaling)},
            "fanout": self.fanout,
            "recommendation": recommendation,
            "costs": self.costs(recommendation, route_costs),
            "run_usage": self.run_usage(),
            "break_points": self.break_points(route_costs, scaling),
            "by_users": [{"users": s["users"], "delivery_ratio": s["delivery_ratio"],
                          "fanout_ms": s["fanout_ms"], "last_recipient_ms": s["last_recipient_ms"],
                          "messages_sent": s["messages_sent"],
                          "generator_saturated": s["generator"]["saturated"]}
                         for s in summary["steps"]],
            "step_starts_s": [s["starts_at_s"] for s in summary["steps"]],
            "generator": summary["generator"],
        }

    def projection(self, route_costs: dict, scaling: dict) -> list[dict]:
        """Mean units per second per table against N, for the scaling plot."""
        points = sorted({int(n) for n in np.geomspace(10, 100_000, 25)} | {self.target.users})
        return [{"users": n, "tables": self.mean_units(n, route_costs, scaling)} for n in points]


class CloudWatchAnalysis(Analysis):
    """A run against AWS: consumption from CloudWatch (``reports.cloudwatch``) instead of the
    local stack's operations log. Table figures are per-minute averages; per-invocation
    figures are the EMF metrics' whole-run statistics, with no model to check them against."""

    def __init__(self, run: RunData, target: Target, prices: pricing.ReportPrices,
                 cloudwatch: dict) -> None:
        super().__init__(run, target, prices)
        self.cloudwatch = cloudwatch
        self.size_based = True

    def consumption_events(self) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """Each minute's average per second, spread over its seconds."""
        events = {table: {kind: [] for kind in KINDS} for table in self.roles}
        for table, figures in self.cloudwatch["tables"].items():
            for minute, read, write in figures["per_second"]:
                for kind, rate in zip(KINDS, (read, write)):
                    if table in events and rate:
                        events[table][kind].extend(
                            (minute + second, rate) for second in range(60))
        return events

    def per_invocation(self) -> dict:
        empty = distribution([])
        return {route: {table: {"measured_read": {"mean": s["rcu"]["p50"], **s["rcu"]},
                                "measured_write": {"mean": s["wcu"]["p50"], **s["wcu"]},
                                "modelled_read": empty, "modelled_write": empty}
                        for table, s in tables.items()}
                for route, tables in self.cloudwatch["invocations"].items()}

    def cross_check(self) -> dict:
        return {"backend": "AWS", "fidelity": "DynamoDB's own", "checked": 0, "disagreed": 0,
                "failed_unreported": 0, "by_operation": {}, "known_cause": None,
                "basis": "measured"}

    def scan_scaling(self) -> dict:
        """Bytes per connection row, estimated from the broadcast's median read units and
        recipients (an upper bound: the units are rounded up to 4 KB)."""
        active = self.run.tables["active_connections"]
        reads = self.cloudwatch["invocations"].get("sendmessage", {}).get(active, {})
        recipients = self.cloudwatch["fanout"].get("sendmessage", {}).get("recipients", {})
        row = (reads["rcu"]["p50"] / read_units(4096) * 4096 / recipients["p50"]
               if reads and recipients.get("p50") else 0.0)
        return {"scans": 0, "bytes_fit": None, "row_bytes": row, "base_bytes": 0.0,
                "points": [], "read_units_error": distribution([])}

    def route_costs(self) -> dict:
        """Median units per invocation; the ActiveConnections reads are the route's Scan."""
        active = self.run.tables["active_connections"]
        result = {}
        for route, tables in self.cloudwatch["invocations"].items():
            if route not in CHAT_ROUTES:
                continue
            result[route] = {
                "invocations": max(s["rcu"]["count"] for s in tables.values()),
                "scans_per_invocation": 1.0 if tables.get(active, {}).get("rcu", {}).get("p50")
                else 0.0,
                "units_per_invocation": {
                    table: {"read": 0.0 if table == active else s["rcu"]["p50"] or 0.0,
                            "write": s["wcu"]["p50"] or 0.0} for table, s in tables.items()}}
        return result

    NO_FANOUT_POINTS = ("CloudWatch keeps whole-run statistics of the fan-out, not a point per "
                        "message: nothing to fit")

    def fanout_strategy(self) -> tuple[str, str]:
        return DEFAULT_FANOUT_STRATEGY, (
            "not known: CloudWatch's metrics do not carry the FanoutStrategy property; taken "
            f"as {DEFAULT_FANOUT_STRATEGY}, the chat's default")

    def last_recipient_points(self, strategy: str) -> tuple[list[list[float]], str, int]:
        return [], "none", 0

    def batch_points(self) -> list[list[float]]:
        return []

    def timeouts(self) -> dict[str, int] | None:
        return None  # in the functions' CloudWatch Logs, which the report does not read

    def delivered_posts(self) -> dict[str, int]:
        return {route: f["delivered"] for route, f in self.cloudwatch["fanout"].items()}

    def presence_notices(self) -> str:
        fanouts = self.cloudwatch["fanout"]
        return "on" if any(route in fanouts for route in fanout.PRESENCE_ROUTES) else "unknown"

    def measured_post_ms(self, strategy: str, points: list[list[float]]) -> tuple[float | None,
                                                                                 str]:
        """From the chat broadcasts' median duration and median recipients."""
        chat = self.cloudwatch["fanout"].get(fanout.CHAT_ROUTE)
        if not chat or not chat["recipients"]["p50"] or chat["duration_ms"]["p50"] is None:
            return None, ""
        median = [[chat["recipients"]["p50"], chat["duration_ms"]["p50"]]]
        return fanout.post_ms_from_points(median, strategy), (
            f"the chat broadcasts' median ms ÷ the rounds of {fanout.POSTS_AT_ONCE[strategy]} "
            f"posts to their median recipients (CloudWatch's whole-run statistics)")


BACKEND_QUIRKS = {
    "dynalite": "dynalite sizes strings in UTF-16 code units, not UTF-8 bytes, so non-ASCII "
                "text is under-counted (600 × 'é' is 1,200 UTF-8 bytes, 600 units to dynalite), "
                "and charges nothing for a Scan page that finds no item (DynamoDB: 0.5 RCU)",
    "moto": "moto reports fixed capacity (a write 1.0, a read 0.5, a Scan 1.0) whatever the "
            "size: the report sizes from the model instead",
}
