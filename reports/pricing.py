"""Monthly USD cost of the chat's AWS pieces, priced from a dated list-price table.

A table names its region, its source and the day its figures were read. The shipped one is
``prices.toml`` beside this module: us-east-1 public list prices, the first tier of each
meter, each section naming the page it was read from; ``reports.price_list`` writes tables
of the same format for a run's own region from the AWS Price List API. Every cost
function prices a steady rate held for a month of ``HOURS_PER_MONTH`` hours, the month AWS
uses in its pricing examples. Free tiers are ignored (the DynamoDB 25 GB of storage, the
Lambda 1M requests and 400,000 GB-s, the API Gateway 12-month allowance): every unit is
charged, so a small run's real bill can be lower.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60
PRICES_FILE = Path(__file__).with_name("prices.toml")
BYTES_PER_GB = 1024**3  # as Lambda's GB-seconds count memory (MB / 1024)
STORAGE_HORIZON_MONTHS = 12

# PriceTable field -> (section, key) in prices.toml.
_TOML_KEYS = {
    "dynamodb_usd_per_million_read_request_units":
        ("dynamodb_on_demand", "usd_per_million_read_request_units"),
    "dynamodb_usd_per_million_write_request_units":
        ("dynamodb_on_demand", "usd_per_million_write_request_units"),
    "dynamodb_usd_per_rcu_hour": ("dynamodb_provisioned", "usd_per_rcu_hour"),
    "dynamodb_usd_per_wcu_hour": ("dynamodb_provisioned", "usd_per_wcu_hour"),
    "dynamodb_storage_usd_per_gb_month": ("dynamodb_storage", "usd_per_gb_month"),
    "dynamodb_storage_free_gb_month": ("dynamodb_storage", "free_gb_month"),
    "lambda_usd_per_million_requests": ("lambda", "usd_per_million_requests"),
    "lambda_usd_per_gb_second_x86_64": ("lambda", "usd_per_gb_second_x86_64"),
    "lambda_usd_per_gb_second_arm64": ("lambda", "usd_per_gb_second_arm64"),
    "websocket_usd_per_million_messages": ("apigateway_websocket", "usd_per_million_messages"),
    "websocket_message_metering_kb": ("apigateway_websocket", "message_metering_kb"),
    "websocket_usd_per_million_connection_minutes":
        ("apigateway_websocket", "usd_per_million_connection_minutes"),
}


@dataclass(frozen=True)
class PriceTable:
    """List prices in USD for ``region``, read from ``source`` on ``as_of``."""

    as_of: date
    region: str
    source: str
    dynamodb_usd_per_million_read_request_units: float
    dynamodb_usd_per_million_write_request_units: float
    dynamodb_usd_per_rcu_hour: float
    dynamodb_usd_per_wcu_hour: float
    dynamodb_storage_usd_per_gb_month: float
    dynamodb_storage_free_gb_month: float
    lambda_usd_per_million_requests: float
    lambda_usd_per_gb_second_x86_64: float
    lambda_usd_per_gb_second_arm64: float
    websocket_usd_per_million_messages: float
    websocket_message_metering_kb: float
    websocket_usd_per_million_connection_minutes: float

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Read a price table (default: the bundled ``prices.toml``). Its ``source`` is the
        file's own ``source`` key, or the file itself when it has none.

        A missing or unreadable file, invalid TOML, a missing key or a value of the wrong
        type raises ValueError with a one-line message naming the file and the key.
        """
        path = PRICES_FILE if path is None else Path(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"{path}: cannot read price table: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
        if "as_of" not in document:
            raise ValueError(f"{path}: missing key as_of")
        try:
            as_of = date.fromisoformat(str(document["as_of"]))
        except ValueError:
            message = f"{path}: as_of {document['as_of']!r} is not a YYYY-MM-DD date"
            raise ValueError(message) from None
        region = document.get("region")
        if not isinstance(region, str):
            message = (f"{path}: missing key region" if region is None
                       else f"{path}: region is {region!r}, not an AWS region name")
            raise ValueError(message)  # noqa: TRY004 - a malformed file, like a missing key
        prices = {}
        for field, (section, key) in _TOML_KEYS.items():
            table = document.get(section)
            value = table.get(key) if isinstance(table, dict) else None
            if value is None:
                raise ValueError(f"{path}: missing key {section}.{key}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                message = f"{path}: {section}.{key} is {value!r}, not a number"
                raise ValueError(message)  # noqa: TRY004 - a malformed file, like a missing key
            prices[field] = float(value)
        return cls(as_of=as_of, region=region, source=str(document.get("source", path)),
                   **prices)

    def to_toml(self) -> str:
        """This table in the format ``load`` reads (floats as ``repr``: they read back equal)."""
        lines = [f'as_of = "{self.as_of.isoformat()}"', f"region = {json.dumps(self.region)}",
                 f"source = {json.dumps(self.source)}"]
        for section in dict.fromkeys(section for section, _ in _TOML_KEYS.values()):
            lines += ["", f"[{section}]"]
            lines += [f"{key} = {getattr(self, field)!r}"
                      for field, (in_section, key) in _TOML_KEYS.items() if in_section == section]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReportPrices:
    """The price table a report uses and, when it is not the wanted region's own, why: one
    line naming the region that was wanted and the reason it could not be priced."""

    table: PriceTable
    fallback: str | None = None


def dynamodb_on_demand_monthly(prices: PriceTable, read_units_per_s: float,
                               write_units_per_s: float) -> float:
    """On-demand tables: read and write request units are billed per million consumed
    (https://aws.amazon.com/dynamodb/pricing/on-demand/)."""
    return SECONDS_PER_MONTH / 1e6 * (
        read_units_per_s * prices.dynamodb_usd_per_million_read_request_units
        + write_units_per_s * prices.dynamodb_usd_per_million_write_request_units)


def dynamodb_provisioned_monthly(prices: PriceTable, rcu: float, wcu: float) -> float:
    """Provisioned tables: each RCU and WCU is billed per hour it is provisioned, used or
    not (https://aws.amazon.com/dynamodb/pricing/provisioned/)."""
    return HOURS_PER_MONTH * (rcu * prices.dynamodb_usd_per_rcu_hour
                              + wcu * prices.dynamodb_usd_per_wcu_hour)


def dynamodb_storage_growth(prices: PriceTable, bytes_per_s: dict[str, float],
                            months: int = STORAGE_HORIZON_MONTHS) -> dict:
    """Storage is billed per GB-month held (https://aws.amazon.com/dynamodb/pricing/): a
    table that keeps what it is given (the chat's histories) gains the same GB every month,
    and its bill grows by their price every month. Per table, the GB it gains a month (one
    that frees what it takes, such as ActiveConnections, gains none: its size follows the
    connections open, not time); the bill in the ``months``-th month, holding that many
    months' gain."""
    gb_per_month = {table: max(0.0, rate) * SECONDS_PER_MONTH / BYTES_PER_GB
                    for table, rate in bytes_per_s.items()}
    gained = sum(gb_per_month.values())
    return {"gb_per_month": gb_per_month,
            "usd_added_per_month": gained * prices.dynamodb_storage_usd_per_gb_month,
            "months": months, "gb_after": gained * months,
            "monthly_after": gained * months * prices.dynamodb_storage_usd_per_gb_month}


def lambda_monthly(prices: PriceTable, invocations_per_s: float, mean_duration_ms: float,
                   memory_mb: int = 128, architecture: str = "x86_64") -> float:
    """Requests plus duration. Duration is "rounded up to the nearest 1 ms" and charged per
    GB-second of configured memory, MB / 1024 GB (https://aws.amazon.com/lambda/pricing/).
    The mean duration is rounded up, not each invocation: under 1 ms off per invocation.
    """
    usd_per_gb_second = {"x86_64": prices.lambda_usd_per_gb_second_x86_64,
                         "arm64": prices.lambda_usd_per_gb_second_arm64}.get(architecture)
    if usd_per_gb_second is None:
        raise ValueError(f"unknown Lambda architecture {architecture!r} (x86_64 or arm64)")
    invocations = invocations_per_s * SECONDS_PER_MONTH
    gb_seconds = invocations * math.ceil(mean_duration_ms) / 1000 * memory_mb / 1024
    return (invocations / 1e6 * prices.lambda_usd_per_million_requests
            + gb_seconds * usd_per_gb_second)


def websocket_metered_messages(prices: PriceTable, message_bytes: int) -> int:
    """How many messages API Gateway bills for one message of ``message_bytes``: "Messages
    are metered in 32 KB increments. So, a 33 KB message is metered as two messages"
    (https://aws.amazon.com/api-gateway/pricing/). An empty message still counts as one."""
    increment_bytes = prices.websocket_message_metering_kb * 1024
    return max(1, math.ceil(message_bytes / increment_bytes))


def apigateway_websocket_monthly(prices: PriceTable, messages_per_s: float,
                                 connections: float, message_bytes: int = 0) -> float:
    """WebSocket APIs: messages sent and received, each metered in 32 KB increments, plus
    connection minutes, ``connections`` held open all month
    (https://aws.amazon.com/api-gateway/pricing/). First message tier only."""
    metered_messages = (messages_per_s * SECONDS_PER_MONTH
                        * websocket_metered_messages(prices, message_bytes))
    connection_minutes = connections * MINUTES_PER_MONTH
    return (metered_messages / 1e6 * prices.websocket_usd_per_million_messages
            + connection_minutes / 1e6 * prices.websocket_usd_per_million_connection_minutes)
