"""What a run against AWS consumed, read back from CloudWatch.

Two sources: DynamoDB's own table metrics (``AWS/DynamoDB``) and the Embedded Metric
Format lines the chat's handlers print (namespace ``ChatHarness``): per invocation and
table ``ConsumedRCU``/``ConsumedWCU`` [Route, Table]; per invocation with a fan-out
``Recipients``, ``Delivered``, ``Gone``, ``Failed`` and ``FanoutDuration`` [Route].
Everything is read with GetMetricData
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

RESOLUTION_S = 60
# "Data points with a period of 60 seconds (1-minute) are available for 15 days."
MAX_WINDOW = timedelta(days=15)
# "A single GetMetricData call can include as many as 500 MetricDataQuery structures."
MAX_QUERIES_PER_CALL = 500
# Whole-window statistics of one EMF metric: output name -> CloudWatch statistic.
DISTRIBUTION_STATS = {"count": "SampleCount", "p50": "p50", "p95": "p95", "max": "Maximum"}
FANOUT_TOTALS = {"delivered": "Delivered", "gone": "Gone", "failed": "Failed"}


def run_consumption(cloudwatch, *, tables: list[str], routes: list[str], start: datetime,
                    end: datetime, namespace: str = "ChatHarness") -> dict:
    """The run's consumption between ``start`` and ``end`` (timezone-aware), from the
    boto3 CloudWatch client ``cloudwatch``.

    ``tables``: per minute, DynamoDB's ConsumedRead/WriteCapacityUnits Sum over 60 s / 60,
    the per-second average DynamoDB's metrics guide describes; minutes with neither are
    left out. ``throttled_requests``: ThrottledRequests summed over the operations
    (dimensions TableName, Operation) that list_metrics finds for the table.
    ``invocations`` and ``fanout``: the handlers' EMF metrics over the whole window as one
    period (count = SampleCount). The window is widened to whole minutes, as CloudWatch
    rounds a start time down to the minute. Tables and routes without data are left out.
    60 s data points are kept for 15 days, so a run older than that reads back empty.
    """
    start, end = _whole_minutes(start, end)
    window_s = int((end - start).total_seconds())
    queries = {**_table_queries(cloudwatch, tables, window_s),
               **_route_queries(namespace, routes, tables, window_s)}
    points = _MetricPoints(_get_metric_data(cloudwatch, queries, start, end))

    report = {"source": "cloudwatch", "resolution_s": RESOLUTION_S,
              "tables": {}, "invocations": {}, "fanout": {}}
    for table in tables:
        if points.has_data("minute", table) or points.has_data("throttled", table):
            report["tables"][table] = _table_consumption(points, table)
    for route in routes:
        by_table = _invocation_consumption(points, route, tables)
        if by_table:
            report["invocations"][route] = by_table
        if points.has_data("fanout", route):
            report["fanout"][route] = _fanout(points, route)
    return report


def _whole_minutes(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window widened to whole minutes (CloudWatch rounds a start time down to the
    minute); ValueError if it is empty or longer than CloudWatch keeps 60 s data points."""
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if end - start > MAX_WINDOW:
        raise ValueError(f"window {end - start} is longer than the {MAX_WINDOW.days} days "
                         f"CloudWatch keeps {RESOLUTION_S} s data points")
    end_minute = end.replace(second=0, microsecond=0)
    return (start.replace(second=0, microsecond=0),
            end_minute if end_minute == end else end_minute + timedelta(seconds=RESOLUTION_S))


def _table_queries(cloudwatch, tables: list[str], window_s: int) -> dict[tuple, dict]:
    """Per table, its read and write capacity per minute and its throttled requests per
    operation over the window (DynamoDB's own metrics)."""
    queries: dict[tuple, dict] = {}
    for table in tables:
        for side in ("Read", "Write"):
            queries["minute", table, side] = _metric_stat(
                "AWS/DynamoDB", f"Consumed{side}CapacityUnits", {"TableName": table}, "Sum",
                RESOLUTION_S)
        for operation in _throttled_operations(cloudwatch, table):
            queries["throttled", table, operation] = _metric_stat(
                "AWS/DynamoDB", "ThrottledRequests", {"TableName": table, "Operation": operation},
                "Sum", window_s)
    return queries


def _route_queries(namespace: str, routes: list[str], tables: list[str],
                   window_s: int) -> dict[tuple, dict]:
    """Per route, the handlers' EMF metrics over the window: capacity per invocation and
    table, and the fan-out's distributions and totals."""
    queries: dict[tuple, dict] = {}
    for route in routes:
        for table in tables:
            for unit in ("RCU", "WCU"):
                for stat in DISTRIBUTION_STATS.values():
                    queries["invocation", route, table, unit, stat] = _metric_stat(
                        namespace, f"Consumed{unit}", {"Route": route, "Table": table}, stat,
                        window_s)
        for metric in ("Recipients", "FanoutDuration"):
            for stat in DISTRIBUTION_STATS.values():
                queries["fanout", route, metric, stat] = _metric_stat(
                    namespace, metric, {"Route": route}, stat, window_s)
        for metric in FANOUT_TOTALS.values():
            queries["fanout", route, metric, "Sum"] = _metric_stat(
                namespace, metric, {"Route": route}, "Sum", window_s)
    return queries


class _MetricPoints:
    """The (timestamp, value) points of every query, by the query's key."""

    def __init__(self, points: dict[tuple, list[tuple[datetime, float]]]) -> None:
        self._by_key = points

    def series(self, *key) -> list[tuple[datetime, float]]:
        return self._by_key.get(key, [])

    def has_data(self, *prefix) -> bool:
        return any(key[:len(prefix)] == prefix and series
                   for key, series in self._by_key.items())

    def total(self, *prefix) -> float:
        """The sum of every point of every query whose key starts with ``prefix``."""
        return sum(value for key, series in self._by_key.items() if key[:len(prefix)] == prefix
                   for _, value in series)

    def whole_window(self, *key) -> float | None:
        """The one value of a query whose period is the whole window, if it has data."""
        return self._by_key[key][0][1] if self._by_key.get(key) else None

    def distribution(self, *key) -> dict:
        """count, p50, p95 and max of one metric; without data, count 0 and the rest None."""
        stats = {name: self.whole_window(*key, stat) for name, stat in DISTRIBUTION_STATS.items()}
        return {**stats, "count": int(stats["count"] or 0)}


def _table_consumption(points: _MetricPoints, table: str) -> dict:
    """Capacity per second, minute by minute, and the throttled requests of ``table``."""
    per_minute = defaultdict(lambda: [0.0, 0.0])
    for column, side in enumerate(("Read", "Write")):
        for timestamp, total in points.series("minute", table, side):
            per_minute[int(timestamp.timestamp())][column] = total / RESOLUTION_S
    return {"per_second": [[minute, *per_minute[minute]] for minute in sorted(per_minute)],
            "throttled_requests": round(points.total("throttled", table))}


def _invocation_consumption(points: _MetricPoints, route: str, tables: list[str]) -> dict:
    """Per table with data, the capacity one invocation of ``route`` consumed."""
    return {table: {unit.lower(): points.distribution("invocation", route, table, unit)
                    for unit in ("RCU", "WCU")}
            for table in tables if points.has_data("invocation", route, table)}


def _fanout(points: _MetricPoints, route: str) -> dict:
    """The fan-outs of ``route``: recipients and duration per invocation, and the totals."""
    return {"recipients": points.distribution("fanout", route, "Recipients"),
            "duration_ms": points.distribution("fanout", route, "FanoutDuration"),
            **{name: round(points.whole_window("fanout", route, metric, "Sum") or 0)
               for name, metric in FANOUT_TOTALS.items()}}


def _metric_stat(namespace: str, metric: str, dimensions: dict[str, str], stat: str,
                 period_s: int) -> dict:
    """A GetMetricData MetricStat; a metric is matched on its exact set of dimensions."""
    return {"Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": period_s, "Stat": stat}


def _throttled_operations(cloudwatch, table: str) -> list[str]:
    """The Operation values ThrottledRequests has for ``table``: DynamoDB publishes it per
    table and operation only, and ListMetrics lists metrics with data in the past two weeks.
    """
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace="AWS/DynamoDB", MetricName="ThrottledRequests",
        Dimensions=[{"Name": "TableName", "Value": table}])
    return sorted({dimension["Value"] for page in pages for metric in page["Metrics"]
                   for dimension in metric["Dimensions"] if dimension["Name"] == "Operation"})


def _get_metric_data(cloudwatch, queries: dict[tuple, dict], start: datetime,
                     end: datetime) -> dict[tuple, list[tuple[datetime, float]]]:
    """Run ``queries`` (key -> MetricStat) in calls of at most 500, following NextToken;
    returns each key's (timestamp, value) points in time order."""
    keys = {f"q{number}": key for number, key in enumerate(queries)}
    ids = list(keys)
    points = defaultdict(list)
    for first in range(0, len(ids), MAX_QUERIES_PER_CALL):
        request = {"MetricDataQueries": [{"Id": query_id, "MetricStat": queries[keys[query_id]]}
                                         for query_id in ids[first:first + MAX_QUERIES_PER_CALL]],
                   "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
        while True:
            page = cloudwatch.get_metric_data(**request)
            for result in page["MetricDataResults"]:
                if result.get("StatusCode") in ("Forbidden", "InternalError"):
                    raise RuntimeError(f"CloudWatch {result['StatusCode']} for "
                                       f"{keys[result['Id']]}: {result.get('Messages')}")
                points[keys[result["Id"]]].extend(zip(result["Timestamps"], result["Values"]))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return {key: sorted(series) for key, series in points.items()}
