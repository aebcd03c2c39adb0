"""A region's list prices from the AWS Price List Query API, cached, with the shipped table as
the fallback.

GetProducts answers, for a service code and attribute filters, one JSON document per product:
its attributes and its OnDemand terms, each term a list of price dimensions (tiers) with a
USD price per unit (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html).
Each price the cost functions use is a meter below: the products that carry it, at their
first paid tier, the one the cost functions price at. The fetched table is
written as TOML into the cache directory and reused for ``CACHE_MAX_AGE``: prices change
rarely, and the API needs credentials and a network the report should not need every time.
No credentials, access denied, no network or a meter the API does not list: the report
uses the shipped us-east-1 table, and says so.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from reports.pricing import PriceTable, ReportPrices
from system.local.dynamodb import cache_dir

# The Query API answers at us-east-1 and ap-south-1 only
# (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html).
PRICE_LIST_ENDPOINT_REGION = "us-east-1"
SOURCE = "the AWS Price List API"
CACHE_MAX_AGE = timedelta(days=30)
MILLION = 1_000_000
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")  # us-east-1, us-gov-west-1, ap-southeast-5

logger = logging.getLogger(__name__)


class PriceListError(Exception):
    """The Price List API answered, but not with one price for a meter."""


@dataclass(frozen=True)
class Meter:
    """Where one PriceTable price is in the Price List: the products of ``service_code``,
    ``product_family`` and ``attributes`` in the region, whose usage type is ``usage_type``
    behind an optional region prefix. Usage types carry the prefix outside us-east-1
    ("EU-ReadRequestUnits", "APN2-Request") and sometimes in it ("USE1-ApiGatewayMessage"),
    so they are matched here, not by the API
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-understanding-billing.html).
    ``per`` is the table's unit in price-list units: a million for prices per million."""

    price_field: str  # of PriceTable
    name: str
    service_code: str
    product_family: str
    usage_type: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    per: int = 1

    def filters(self, region: str) -> list[dict]:
        terms = {"regionCode": region, "productFamily": self.product_family, **self.attributes}
        return [{"Type": "TERM_MATCH", "Field": name, "Value": value}
                for name, value in terms.items()]

    def is_usage_type(self, usage_type: str) -> bool:
        return re.fullmatch(rf"(?:[A-Z0-9]+-)?{re.escape(self.usage_type)}", usage_type) is not None


# The meters of https://aws.amazon.com/dynamodb/pricing/, https://aws.amazon.com/lambda/pricing/
# and https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs). DynamoDB: the standard
# table class only; its groups and volume type leave out Standard-IA's ("DDB-ReadUnitsIA",
# "... - IA"), whose usage types ("IA-ReadRequestUnits") would otherwise pass for prefixed
# ones. Lambda: its groups leave out Lambda@Edge, provisioned concurrency and ephemeral storage.
METERS = (
    Meter("dynamodb_usd_per_million_read_request_units", "DynamoDB on-demand read request units",
          "AmazonDynamoDB", "Amazon DynamoDB PayPerRequest Throughput", "ReadRequestUnits",
          {"group": "DDB-ReadUnits"}, per=MILLION),
    Meter("dynamodb_usd_per_million_write_request_units",
          "DynamoDB on-demand write request units", "AmazonDynamoDB",
          "Amazon DynamoDB PayPerRequest Throughput", "WriteRequestUnits",
          {"group": "DDB-WriteUnits"}, per=MILLION),
    Meter("dynamodb_usd_per_rcu_hour", "DynamoDB provisioned read capacity unit-hours",
          "AmazonDynamoDB", "Provisioned IOPS", "ReadCapacityUnit-Hrs", {"group": "DDB-ReadUnits"}),
    Meter("dynamodb_usd_per_wcu_hour", "DynamoDB provisioned write capacity unit-hours",
          "AmazonDynamoDB", "Provisioned IOPS", "WriteCapacityUnit-Hrs",
          {"group": "DDB-WriteUnits"}),
    Meter("dynamodb_storage_usd_per_gb_month", "DynamoDB storage", "AmazonDynamoDB",
          "Database Storage", "TimedStorage-ByteHrs",
          {"volumeType": "Amazon DynamoDB - Indexed DataStore"}),
    Meter("lambda_usd_per_million_requests", "Lambda requests", "AWSLambda", "Serverless",
          "Request", {"group": "AWS-Lambda-Requests"}, per=MILLION),
    Meter("lambda_usd_per_gb_second_x86_64", "Lambda duration (x86_64)", "AWSLambda",
          "Serverless", "Lambda-GB-Second", {"group": "AWS-Lambda-Duration"}),
    Meter("lambda_usd_per_gb_second_arm64", "Lambda duration (arm64)", "AWSLambda", "Serverless",
          "Lambda-GB-Second-ARM", {"group": "AWS-Lambda-Duration-ARM"}),
    Meter("websocket_usd_per_million_messages", "API Gateway WebSocket messages",
          "AmazonApiGateway", "WebSocket", "ApiGatewayMessage", per=MILLION),
    Meter("websocket_usd_per_million_connection_minutes",
          "API Gateway WebSocket connection minutes", "AmazonApiGateway", "WebSocket",
          "ApiGatewayMinute", per=MILLION),
)


def paid_unit_price(product: dict) -> Decimal | None:
    """The first non-zero USD price of the product's OnDemand tiers, in ``beginRange`` order.
    A $0 first tier is a free allowance (DynamoDB's 25 provisioned RCU and 25 GB), which the
    cost functions ignore; the tiers after the first paid one are volume discounts they
    ignore too."""
    tiers = [dimension for term in product.get("terms", {}).get("OnDemand", {}).values()
             for dimension in term["priceDimensions"].values()]
    tiers.sort(key=lambda dimension: Decimal(dimension.get("beginRange", "0")))
    usd = (Decimal(dimension["pricePerUnit"]["USD"]) for dimension in tiers
           if "USD" in dimension["pricePerUnit"])
    return next((price for price in usd if price > 0), None)


def meter_price(meter: Meter, price_list: Iterable[str], region: str) -> float:
    """The table price of ``meter`` from GetProducts' PriceList (one JSON string per product).
    Every matching product must agree on it: two products may carry one meter (copies of the
    us-east-1 list show storage as "TimedStorage-ByteHrs" and "USE1-TimedStorage-ByteHrs"),
    but a meter with two prices is not priced from a guess."""
    prices = set()
    for entry in price_list:
        product = json.loads(entry)
        if meter.is_usage_type(product["product"]["attributes"].get("usagetype", "")):
            price = paid_unit_price(product)
            if price is not None:
                prices.add(price)
    if not prices:
        raise PriceListError(f"the Price List API lists no {meter.name} for {region}")
    if len(prices) > 1:
        listed = ", ".join(str(price) for price in sorted(prices))
        raise PriceListError(f"the Price List API lists {len(prices)} prices for {meter.name} "
                             f"in {region} ({listed} USD)")
    return float(prices.pop() * meter.per)


def fetch_price_table(pricing, region: str, today: date) -> PriceTable:
    """``region``'s prices, one GetProducts query per meter, every page of it. What is not a
    price (the 32 KB message metering, the 25 GB of free storage) stays the shipped table's."""
    paginator = pricing.get_paginator("get_products")
    prices = {}
    for meter in METERS:
        pages = paginator.paginate(ServiceCode=meter.service_code, Filters=meter.filters(region))
        prices[meter.price_field] = meter_price(
            meter, (entry for page in pages for entry in page["PriceList"]), region)
    return replace(PriceTable.load(), as_of=today, region=region, source=SOURCE, **prices)


def cache_file(region: str) -> Path:
    return cache_dir() / f"prices-{region}.toml"


def cached_table(region: str, today: date) -> PriceTable | None:
    """The cached table of ``region`` if it is younger than ``CACHE_MAX_AGE``. A missing or
    unreadable one is fetched again (and overwritten)."""
    try:
        table = PriceTable.load(cache_file(region))
    except ValueError:
        return None
    return table if today - table.as_of < CACHE_MAX_AGE else None


def write_cache(table: PriceTable) -> None:
    """Cache the table; a cache that cannot be written costs a fetch next time, nothing else."""
    path = cache_file(table.region)
    temporary = path.with_suffix(".toml.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(table.to_toml(), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("cannot cache the %s prices in %s: %s", table.region, path,
                       error.strerror)


def price_list_client():
    import boto3
    from botocore.config import Config

    return boto3.client("pricing", region_name=PRICE_LIST_ENDPOINT_REGION,
                        config=Config(connect_timeout=5, read_timeout=20,
                                      retries={"mode": "standard", "max_attempts": 3}))


def why_not_fetched(error: Exception) -> str:
    """One line: what kept the prices from the Price List API."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        reason = f"no AWS credentials ({error})"
    elif isinstance(error, ClientError):
        code = error.response["Error"].get("Code", "")
        message = error.response["Error"].get("Message", "")
        reason = (f"access denied to pricing:GetProducts ({message})"
                  if code == "AccessDeniedException" else f"{code}: {message}")
    else:
        reason = str(error)
    return " ".join(reason.split())


def regional_prices(region: str, pricing=None, today: date | None = None) -> ReportPrices:
    """``region``'s list prices: cached, else fetched with ``pricing`` (a boto3 "pricing"
    client; default: one with the usual credentials) and cached; else the shipped table,
    with the one line that says which region was wanted and why it was not priced."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not AWS_REGION.fullmatch(region):
        raise ValueError(f"{region!r} is not an AWS region name (like eu-west-1)")
    today = today or date.today()
    cached = cached_table(region, today)
    if cached is not None:
        return ReportPrices(cached)
    try:
        table = fetch_price_table(pricing or price_list_client(), region, today)
    except (BotoCoreError, ClientError, PriceListError) as error:
        shipped = PriceTable.load()
        return ReportPrices(shipped, fallback=(
            f"{region} not priced from {SOURCE}: {why_not_fetched(error)}; priced from "
            f"{shipped.source}, {shipped.region} list prices as of {shipped.as_of}"))
    write_cache(table)
    return ReportPrices(table)
