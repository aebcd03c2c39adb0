"""moto's CloudWatch, for the tests of a run against AWS.

moto 5.2 has no percentile statistics: its GetMetricData answers "p50" with no value and
then fails to serialise the answer. The ``cloudwatch`` fixture teaches it nearest-rank
percentiles over the raw values.
"""

import math

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.models import Statistics


@pytest.fixture
def cloudwatch(monkeypatch):
    moto_statistic = Statistics.get_statistics_for_type

    def with_percentiles(self, stat):
        if not stat.startswith("p"):
            return moto_statistic(self, stat)
        values = sorted(self.metric_single_values_list)
        return values[math.ceil(float(stat[1:]) / 100 * len(values)) - 1]

    monkeypatch.setattr(Statistics, "get_statistics_for_type", with_percentiles)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def put_metric(cloudwatch, namespace, metric, dimensions, values, at):
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": metric, "Value": value, "Timestamp": at,
         "Dimensions": [{"Name": name, "Value": v} for name, v in dimensions.items()]}
        for value in values])
