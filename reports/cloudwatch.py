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
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if end - start > MAX_WINDOW:
        raise ValueError(f"window {end - start} is longer than the {MAX_WINDOW.days} days "
                         f"CloudWatch keeps {RESOLUTION_S} s data points")
    start = start.replace(second=0, microsecond=0)
    end_minute = end.replace(second=0, microsecond=0)
    end = end_minute if end_minute == end else end_minute + timedelta(seconds=RESOLUTION_S)
    window_s = int((end - start).total_seconds())

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

    points = _get_metric_data(cloudwatch, queries, start, end)

    def has_data(*prefix) -> bool:
        return any(key[:len(prefix)] == prefix and series for key, series in points.items())

    def whole_window(*key) -> float | None:
        """The one value of a query whose period is the whole window, if it has data."""
        return points[key][0][1] if points.get(key) else None

    def distribution(*key) -> dict:
        """count, p50, p95 and max of one metric; without data, count 0 and the rest None."""
        stats = {name: whole_window(*key, stat) for name, stat in DISTRIBUTION_STATS.items()}
        return {**stats, "count": int(stats["count"] or 0)}

    report = {"source": "cloudwatch", "resolution_s": RESOLUTION_S,
              "tables": {}, "invocations": {}, "fanout": {}}
    for table in tables:
        if not (has_data("minute", table) or has_data("throttled", table)):
            continue
        per_minute = defaultdict(lambda: [0.0, 0.0])
        for column, side in enumerate(("Read", "Write")):
            for timestamp, total in points.get(("minute", table, side), []):
                per_minute[int(timestamp.timestamp())][column] = total / RESOLUTION_S
        throttled = sum(value for key, series in points.items() if key[:2] == ("throttled", table)
                        for _, value in series)
        report["tables"][table] = {
            "per_second": [[minute, *per_minute[minute]] for minute in sorted(per_minute)],
            "throttled_requests": round(throttled)}
    for route in routes:
        by_table = {table: {unit.lower(): distribution("invocation", route, table, unit)
                            for unit in ("RCU", "WCU")}
                    for table in tables if has_data("invocation", route, table)}
        if by_table:
            report["invocations"][route] = by_table
        if has_data("fanout", route):
            report["fanout"][route] = {
                "recipients": distribution("fanout", route, "Recipients"),
                "duration_ms": distribution("fanout", route, "FanoutDuration"),
                **{name: round(whole_window("fanout", route, metric, "Sum") or 0)
                   for name, metric in FANOUT_TOTALS.items()}}
    return report


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
