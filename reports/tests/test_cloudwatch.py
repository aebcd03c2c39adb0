"""run_consumption reads a run's consumption back from CloudWatch, here moto's.

The ``cloudwatch`` fixture (conftest.py) gives moto nearest-rank percentiles, so the
p50/p95 asserted below check that each query's answer lands in the right place, not
CloudWatch's own percentile algorithm. Everything else (Sum, SampleCount, Maximum,
ListMetrics, the time window) is moto's own.
"""

from datetime import UTC, datetime, timedelta

import pytest

from reports.cloudwatch import run_consumption
from reports.tests.conftest import put_metric as put

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
END = START + timedelta(minutes=10)
MINUTE = timedelta(minutes=1)


def put_run(cloudwatch):
    """A run between START and END, with data just outside it that must not count."""
    connections = {"TableName": "Connections"}
    put(cloudwatch, "AWS/DynamoDB", "ConsumedReadCapacityUnits", connections, [30, 30],
        START + timedelta(seconds=5))
    put(cloudwatch, "AWS/DynamoDB", "ConsumedReadCapacityUnits", connections, [120],
        START + 2 * MINUTE)
    put(cloudwatch, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", connections, [6],
        START + timedelta(seconds=10))
    put(cloudwatch, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", connections, [12],
        START + MINUTE + timedelta(seconds=1))
    put(cloudwatch, "AWS/DynamoDB", "ConsumedReadCapacityUnits", connections, [6000],
        END + MINUTE)
    for table, operation, count, at in [("Connections", "PutItem", 2, START + MINUTE),
                                        ("Connections", "Query", 1, START + 3 * MINUTE),
                                        ("Connections", "Scan", 50, START - 5 * MINUTE),
                                        ("MessageHistory", "PutItem", 4, START + MINUTE)]:
        put(cloudwatch, "AWS/DynamoDB", "ThrottledRequests",
            {"TableName": table, "Operation": operation}, [count], at)

    send = {"Route": "sendmessage", "Table": "Connections"}
    put(cloudwatch, "ChatHarness", "ConsumedRCU", send, range(1, 21), START + MINUTE)
    put(cloudwatch, "ChatHarness", "ConsumedWCU", send, [1.0] * 20, START + MINUTE)
    put(cloudwatch, "ChatHarness", "ConsumedRCU", send, [1000], START - MINUTE)
    connect = {"Route": "$connect", "Table": "Connections"}
    put(cloudwatch, "ChatHarness", "ConsumedRCU", connect, [0.0] * 3, START + 4 * MINUTE)
    put(cloudwatch, "ChatHarness", "ConsumedWCU", connect, [1.0] * 3, START + 4 * MINUTE)
    put(cloudwatch, "ChatHarness", "ConsumedWCU", {"Route": "$default", "Table": "Connections"},
        [1.0], END)

    route = {"Route": "sendmessage"}
    at = START + 2 * MINUTE
    put(cloudwatch, "ChatHarness", "Recipients", route, [3, 3, 3, 4], at)
    put(cloudwatch, "ChatHarness", "FanoutDuration", route, [10, 20, 30, 40], at)
    put(cloudwatch, "ChatHarness", "Delivered", route, [3, 3, 2, 4], at)
    put(cloudwatch, "ChatHarness", "Gone", route, [0, 0, 1, 0], at)
    put(cloudwatch, "ChatHarness", "Failed", route, [0, 0, 0, 0], at)


def epoch(at: datetime) -> int:
    return int(at.timestamp())


EXPECTED = {
    "source": "cloudwatch",
    "resolution_s": 60,
    "tables": {
        "Connections": {
            "per_second": [[epoch(START), 1.0, 0.1],
                           [epoch(START + MINUTE), 0.0, 0.2],
                           [epoch(START + 2 * MINUTE), 2.0, 0.0]],
            "throttled_requests": 3},
        "MessageHistory": {"per_second": [], "throttled_requests": 4},
    },
    "invocations": {
        "sendmessage": {"Connections": {
            "rcu": {"count": 20, "p50": 10.0, "p95": 19.0, "max": 20.0},
            "wcu": {"count": 20, "p50": 1.0, "p95": 1.0, "max": 1.0}}},
        "$connect": {"Connections": {
            "rcu": {"count": 3, "p50": 0.0, "p95": 0.0, "max": 0.0},
            "wcu": {"count": 3, "p50": 1.0, "p95": 1.0, "max": 1.0}}},
    },
    "fanout": {
        "sendmessage": {"recipients": {"count": 4, "p50": 3.0, "p95": 4.0, "max": 4.0},
                        "duration_ms": {"count": 4, "p50": 20.0, "p95": 40.0, "max": 40.0},
                        "delivered": 12, "gone": 1, "failed": 0},
    },
}
TABLES = ["Connections", "MessageHistory", "Unused"]
ROUTES = ["$connect", "$disconnect", "$default", "sendmessage"]


def test_a_run_reads_back_per_minute_rates_throttles_and_per_invocation_figures(cloudwatch):
    put_run(cloudwatch)
    report = run_consumption(cloudwatch, tables=TABLES, routes=ROUTES, start=START, end=END)
    assert report == EXPECTED


def test_a_window_inside_minutes_is_widened_to_whole_minutes(cloudwatch):
    put_run(cloudwatch)
    report = run_consumption(cloudwatch, tables=TABLES, routes=ROUTES,
                             start=START + timedelta(seconds=30),
                             end=END - timedelta(seconds=30))
    assert report == EXPECTED


def test_an_empty_window_reports_nothing(cloudwatch):
    put_run(cloudwatch)
    report = run_consumption(cloudwatch, tables=TABLES, routes=ROUTES,
                             start=END + 5 * MINUTE, end=END + 10 * MINUTE)
    assert report == {"source": "cloudwatch", "resolution_s": 60,
                      "tables": {}, "invocations": {}, "fanout": {}}


class PagingCloudWatch:
    """The moto client, but every GetMetricData answer comes in two pages (moto never
    pages), and the number of queries in each first call is recorded."""

    def __init__(self, client):
        self.client = client
        self.queries_per_call = []
        self.second_pages = {}

    def get_metric_data(self, **request):
        if "NextToken" in request:
            return self.second_pages.pop(request["NextToken"])
        self.queries_per_call.append(len(request["MetricDataQueries"]))
        results = self.client.get_metric_data(**request)["MetricDataResults"]
        token = f"page-{len(self.queries_per_call)}"
        self.second_pages[token] = {"MetricDataResults": [
            {**result, "Timestamps": result["Timestamps"][1:], "Values": result["Values"][1:]}
            for result in results]}
        return {"NextToken": token, "MetricDataResults": [
            {**result, "Timestamps": result["Timestamps"][:1], "Values": result["Values"][:1]}
            for result in results]}

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_queries_go_in_calls_of_at_most_500_and_pages_are_joined(cloudwatch):
    put_run(cloudwatch)
    many_routes = ROUTES + [f"route{number}" for number in range(30)]
    paging = PagingCloudWatch(cloudwatch)
    report = run_consumption(paging, tables=TABLES, routes=many_routes, start=START, end=END)
    assert report == EXPECTED
    assert len(paging.queries_per_call) > 1
    assert max(paging.queries_per_call) == 500
    assert not paging.second_pages


@pytest.mark.parametrize("start, end, message", [
    (END, START, "is not after start"),
    (START, START, "is not after start"),
    (END - timedelta(days=15, minutes=1), END, "longer than the 15 days"),
])
def test_a_bad_window_is_a_one_line_value_error(cloudwatch, start, end, message):
    with pytest.raises(ValueError, match=message) as raised:
        run_consumption(cloudwatch, tables=TABLES, routes=ROUTES, start=start, end=end)
    assert "\n" not in str(raised.value)
