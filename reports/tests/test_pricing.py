"""The price table loads and the cost functions do the arithmetic AWS's pricing pages
describe, checked against hand-computed figures on a table of round test prices."""

import re
from dataclasses import replace
from datetime import date

import pytest

from reports.pricing import (
    PRICES_FILE,
    SECONDS_PER_MONTH,
    PriceTable,
    apigateway_websocket_monthly,
    dynamodb_on_demand_monthly,
    dynamodb_provisioned_monthly,
    dynamodb_storage_growth,
    lambda_monthly,
    websocket_metered_messages,
)

ROUND_PRICES = PriceTable(
    as_of=date(2026, 1, 1),
    region="us-east-1",
    source="round test prices",
    dynamodb_usd_per_million_read_request_units=0.125,
    dynamodb_usd_per_million_write_request_units=0.625,
    dynamodb_usd_per_rcu_hour=0.0001,
    dynamodb_usd_per_wcu_hour=0.0005,
    dynamodb_storage_usd_per_gb_month=0.25,
    dynamodb_storage_free_gb_month=25,
    lambda_usd_per_million_requests=0.20,
    lambda_usd_per_gb_second_x86_64=0.00002,
    lambda_usd_per_gb_second_arm64=0.00001,
    websocket_usd_per_million_messages=1.00,
    websocket_message_metering_kb=32,
    websocket_usd_per_million_connection_minutes=0.25,
)


def test_bundled_table_loads_with_a_date_and_positive_prices():
    prices = PriceTable.load()
    assert isinstance(prices.as_of, date)
    assert PriceTable.load(PRICES_FILE) == prices
    assert prices.websocket_message_metering_kb == 32
    assert all(value > 0 for value in vars(prices).values() if isinstance(value, float))


def test_one_provisioned_rcu_for_a_month_is_730_rcu_hours():
    """A month is 730 hours."""
    bundled = PriceTable.load()
    assert dynamodb_provisioned_monthly(bundled, rcu=1, wcu=0) == pytest.approx(
        730 * bundled.dynamodb_usd_per_rcu_hour)
    # 10 RCU, 5 WCU: 730 h x (10 x 0.0001 + 5 x 0.0005) = 730 x 0.0035 = 2.555
    assert dynamodb_provisioned_monthly(ROUND_PRICES, rcu=10, wcu=5) == pytest.approx(2.555)


def test_on_demand_bills_request_units_per_million():
    # 1 unit/s for 730 h = 2,628,000 units = 2.628 million
    assert dynamodb_on_demand_monthly(ROUND_PRICES, 1, 0) == pytest.approx(2.628 * 0.125)
    assert dynamodb_on_demand_monthly(ROUND_PRICES, 0, 1) == pytest.approx(2.628 * 0.625)
    # 4 RRU/s + 2 WRU/s: 2.628 x (4 x 0.125 + 2 x 0.625) = 2.628 x 1.75 = 4.599
    assert dynamodb_on_demand_monthly(ROUND_PRICES, 4, 2) == pytest.approx(4.599)


def test_storage_gained_every_month_adds_its_price_to_every_month_after():
    # 1 GiB held is 0.25 a month; a table that gains 1 GiB a month costs 12 x 0.25 in its
    # 12th month. One that frees what it takes (negative net) gains nothing.
    gib_per_month_in_bytes_per_s = 1024**3 / SECONDS_PER_MONTH
    growth = dynamodb_storage_growth(ROUND_PRICES, {
        "MessageHistory": gib_per_month_in_bytes_per_s, "ActiveConnections": -5.0})
    assert growth["gb_per_month"] == pytest.approx({"MessageHistory": 1, "ActiveConnections": 0})
    assert growth["usd_added_per_month"] == pytest.approx(0.25)
    assert (growth["months"], growth["gb_after"]) == (12, pytest.approx(12))
    assert growth["monthly_after"] == pytest.approx(3.0)


def test_lambda_bills_requests_and_gb_seconds_rounded_up_to_the_millisecond():
    # 10/s = 26,280,000 invocations: requests 26.28 x 0.20 = 5.256;
    # 12.3 ms bills as 13 ms at 128 MB = 0.125 GB: 26,280,000 x 0.013 x 0.125 = 42,705 GB-s,
    # x 0.00002 = 0.8541
    assert lambda_monthly(ROUND_PRICES, 10, 12.3) == pytest.approx(5.256 + 0.8541)
    assert lambda_monthly(ROUND_PRICES, 10, 13.0) == lambda_monthly(ROUND_PRICES, 10, 12.3)
    # 1024 MB on arm64: 26,280,000 x 0.013 x 1 GB x 0.00001 = 3.4164
    assert lambda_monthly(ROUND_PRICES, 10, 12.3, memory_mb=1024, architecture="arm64") == \
        pytest.approx(5.256 + 3.4164)
    with pytest.raises(ValueError, match="architecture"):
        lambda_monthly(ROUND_PRICES, 1, 1, architecture="mips")


@pytest.mark.parametrize("message_bytes, metered", [
    (0, 1), (1, 1), (32 * 1024, 1), (32 * 1024 + 1, 2), (33 * 1024, 2), (64 * 1024, 2),
    (128 * 1024, 4),
])
def test_websocket_messages_are_metered_in_32_kb_increments(message_bytes, metered):
    assert websocket_metered_messages(ROUND_PRICES, message_bytes) == metered


def test_websocket_bills_metered_messages_and_connection_minutes():
    # 1 message/s = 2.628 million messages; at 33 KB each counts twice
    assert apigateway_websocket_monthly(ROUND_PRICES, 1, 0, message_bytes=33 * 1024) == \
        pytest.approx(2 * 2.628 * 1.00)
    # 100 connections x 43,800 minutes = 4.38 million connection minutes x 0.25 = 1.095
    assert apigateway_websocket_monthly(ROUND_PRICES, 0, 100) == pytest.approx(1.095)


def bundled_with(line_pattern: str, replacement: str) -> str:
    """The bundled prices.toml with its one line matching ``line_pattern`` replaced."""
    text, count = re.subn(f"^{line_pattern}$", replacement, PRICES_FILE.read_text(),
                          flags=re.MULTILINE)
    assert count == 1
    return text


@pytest.mark.parametrize("text, message", [
    (bundled_with(r"usd_per_wcu_hour = .*", ""),
     "missing key dynamodb_provisioned.usd_per_wcu_hour"),
    (bundled_with(r"\[lambda\]", "[lambda_functions]"),
     "missing key lambda.usd_per_million_requests"),
    (bundled_with(r"as_of = .*", ""), "missing key as_of"),
    (bundled_with(r"region = .*", ""), "missing key region"),
    (bundled_with(r"region = .*", "region = 1"), "region is 1, not an AWS region name"),
    (bundled_with(r"as_of = .*", 'as_of = "last week"'), "is not a YYYY-MM-DD date"),
    (bundled_with(r"usd_per_million_messages = .*", 'usd_per_million_messages = "1"'),
     "apigateway_websocket.usd_per_million_messages is '1', not a number"),
    ("as_of = \n", "not valid TOML"),
])
def test_a_broken_file_is_a_one_line_value_error_naming_file_and_key(tmp_path, text, message):
    broken = tmp_path / "broken-prices.toml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="broken-prices.toml") as raised:
        PriceTable.load(broken)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no-such-prices.toml"):
        PriceTable.load(tmp_path / "no-such-prices.toml")


def test_a_table_written_as_toml_reads_back_equal(tmp_path):
    quoted = replace(ROUND_PRICES, source='a "quoted" \\ source, café')
    for table in (PriceTable.load(), quoted):
        written = tmp_path / "written.toml"
        written.write_text(table.to_toml(), encoding="utf-8")
        assert PriceTable.load(written) == table
