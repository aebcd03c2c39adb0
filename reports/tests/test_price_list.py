"""A region's prices from the AWS Price List API: read from GetProducts' answers (botocore's
Stubber on a real client, answers shaped like AWS's), cached and reused, and the shipped
us-east-1 table with the reason why when the API cannot be used. Nothing here reaches the
network: a request that would leave the machine fails the test."""

import json
from argparse import Namespace
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.endpoint import Endpoint
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from reports.price_list import (
    CACHE_MAX_AGE,
    METERS,
    PriceListError,
    cache_file,
    meter_price,
    paid_unit_price,
    regional_prices,
)
from reports.pricing import PRICES_FILE, PriceTable, ReportPrices
from reports.report import report_prices
from reports.run_data import RunData
from reports.tests.conftest import (
    EU_WEST_1_PRICES,
    EU_WEST_1_QUERIES,
    REGION,
    answer_price_list,
    price_list_entry,
    pricing_client,
)

TODAY = date(2026, 12, 1)
SHIPPED = PriceTable.load()
FALLBACK = "eu-west-1 not priced from the AWS Price List API: {reason}; priced from the " \
           f"shipped price table, us-east-1 list prices as of {SHIPPED.as_of}"
METER = {meter.price_field: meter for meter in METERS}


@pytest.fixture(autouse=True)
def offline(monkeypatch, price_cache):
    """No credentials from this machine, and no request leaves it."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "BOTO_CONFIG"):
        monkeypatch.setenv(name, str(price_cache / "no-such-file"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def no_network(self, request):
        raise AssertionError(f"a test reached the network: {request.method} {request.url}")

    monkeypatch.setattr(Endpoint, "_send", no_network)


# -- what a GetProducts answer says ------------------------------------------------------------

def product(usage_type: str, tiers, attributes=None) -> dict:
    return json.loads(price_list_entry("AmazonDynamoDB", "Database Storage",
                                       {"usagetype": usage_type, **(attributes or {})},
                                       tiers, "GB-Mo"))


def test_the_paid_price_is_the_first_non_zero_tier_in_range_order():
    free_then_paid = product("EU-ReadCapacityUnit-Hrs",
                             [("18600", "Inf", "0.00013"), ("0", "18600", "0.0000000000")])
    assert str(paid_unit_price(free_then_paid)) == "0.00013"
    volume_tiers = product("Lambda-GB-Second", [("6000000000", "Inf", "0.000015"),
                                                ("0", "6000000000", "0.0000166667")])
    assert str(paid_unit_price(volume_tiers)) == "0.0000166667"
    assert paid_unit_price(product("TimedStorage-ByteHrs", [("0", "Inf", "0")])) is None


@pytest.mark.parametrize("price_field, usage_type, is_it", [
    ("dynamodb_usd_per_million_read_request_units", "ReadRequestUnits", True),  # us-east-1
    ("dynamodb_usd_per_million_read_request_units", "EU-ReadRequestUnits", True),
    ("dynamodb_usd_per_million_read_request_units", "EU-ReplWriteRequestUnits", False),
    ("websocket_usd_per_million_messages", "USE1-ApiGatewayMessage", True),
    ("websocket_usd_per_million_messages", "USE1-ApiGatewayMinute", False),
    ("lambda_usd_per_million_requests", "APN2-Request", True),
    ("lambda_usd_per_million_requests", "Request-ARM", False),
    ("lambda_usd_per_million_requests", "Lambda-Edge-Request", False),
    ("lambda_usd_per_gb_second_x86_64", "EU-Lambda-GB-Second-ARM", False),
    ("lambda_usd_per_gb_second_x86_64", "EU-Lambda-Provisioned-GB-Second", False),
    ("dynamodb_storage_usd_per_gb_month", "USE1-TimedPITRStorage-ByteHrs", False),
])
def test_a_meter_takes_its_usage_type_behind_a_region_prefix_only(price_field, usage_type,
                                                                  is_it):
    assert METER[price_field].is_usage_type(usage_type) is is_it


def test_products_of_one_meter_must_agree_on_its_price():
    storage = METER["dynamodb_storage_usd_per_gb_month"]
    tiered = price_list_entry("AmazonDynamoDB", "Database Storage",
                              {"usagetype": "TimedStorage-ByteHrs"},
                              [("0", "25", "0"), ("25", "Inf", "0.25")], "GB-Mo")
    flat = price_list_entry("AmazonDynamoDB", "Database Storage",
                            {"usagetype": "USE1-TimedStorage-ByteHrs"}, [("0", "Inf", "0.25")],
                            "GB-Mo")
    assert meter_price(storage, [tiered, flat], "us-east-1") == 0.25
    dearer = flat.replace('"0.25"', '"0.30"')
    with pytest.raises(PriceListError, match=r"2 prices for DynamoDB storage in us-east-1 "
                                             r"\(0.25, 0.30 USD\)"):
        meter_price(storage, [tiered, dearer], "us-east-1")
    with pytest.raises(PriceListError, match="lists no DynamoDB storage for us-east-1"):
        meter_price(storage, [], "us-east-1")


# -- fetched, cached, reused --------------------------------------------------------------------

def test_a_region_is_priced_per_table_unit_from_every_page_of_its_meters():
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber)
        prices = regional_prices(REGION, pricing, today=TODAY)
        stubber.assert_no_pending_responses()
    assert prices.fallback is None
    table = prices.table
    assert (table.region, table.source, table.as_of) == (REGION, "the AWS Price List API", TODAY)
    assert {field: getattr(table, field) for field in EU_WEST_1_PRICES} == EU_WEST_1_PRICES
    # rules, not prices: the shipped table's
    assert table.websocket_message_metering_kb == SHIPPED.websocket_message_metering_kb == 32
    assert table.dynamodb_storage_free_gb_month == SHIPPED.dynamodb_storage_free_gb_month


def test_the_fetched_table_is_cached_and_reused_for_30_days():
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber)
        fetched = regional_prices(REGION, pricing, today=TODAY).table
        cached = cache_file(REGION)
        assert PriceTable.load(cached) == fetched
        assert 'source = "the AWS Price List API"' in cached.read_text()
        # a day short of 30 days later: the cache, and no request (none is answered)
        later = TODAY + CACHE_MAX_AGE - timedelta(days=1)
        assert regional_prices(REGION, pricing, today=later) == ReportPrices(fetched)
        # 30 days later: fetched again, dated that day
        answer_price_list(stubber)
        refetched = regional_prices(REGION, pricing, today=TODAY + CACHE_MAX_AGE).table
        stubber.assert_no_pending_responses()
    assert refetched.as_of == PriceTable.load(cached).as_of == TODAY + CACHE_MAX_AGE


def test_an_unreadable_cache_is_fetched_again():
    cache_file(REGION).parent.mkdir(parents=True)
    cache_file(REGION).write_text("as_of = \n")
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber)
        assert regional_prices(REGION, pricing, today=TODAY).table.as_of == TODAY
    assert PriceTable.load(cache_file(REGION)).as_of == TODAY


# -- the shipped table, and why ----------------------------------------------------------------

def test_no_credentials_prices_from_the_shipped_table_saying_so():
    prices = regional_prices(REGION, today=TODAY)  # the client it makes finds no credentials
    assert prices.table == SHIPPED
    assert prices.fallback == FALLBACK.format(
        reason="no AWS credentials (Unable to locate credentials)")
    assert not cache_file(REGION).exists()


def test_access_denied_prices_from_the_shipped_table_saying_so():
    denied = ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
              "pricing:GetProducts because no identity-based policy allows the "
              "pricing:GetProducts action")
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        stubber.add_client_error("get_products", "AccessDeniedException", denied)
        prices = regional_prices(REGION, pricing, today=TODAY)
    assert prices == ReportPrices(SHIPPED, FALLBACK.format(
        reason=f"access denied to pricing:GetProducts ({denied})"))


def test_no_network_prices_from_the_shipped_table_saying_so(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    def unreachable(self, request):
        raise EndpointConnectionError(endpoint_url=request.url)

    monkeypatch.setattr(Endpoint, "_send", unreachable)
    pricing = boto3.client("pricing", region_name="us-east-1",
                           config=Config(retries={"total_max_attempts": 1}))
    prices = regional_prices(REGION, pricing, today=TODAY)
    assert prices == ReportPrices(SHIPPED, FALLBACK.format(
        reason='Could not connect to the endpoint URL: "https://api.pricing.us-east-1.'
               'amazonaws.com/"'))


def test_a_meter_the_api_does_not_list_prices_from_the_shipped_table_saying_so():
    *listed, (service_code, filters, _) = EU_WEST_1_QUERIES[:8]  # up to Lambda arm64 duration
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber, [*listed, (service_code, filters, [[]])])
        prices = regional_prices(REGION, pricing, today=TODAY)
        stubber.assert_no_pending_responses()
    assert prices == ReportPrices(SHIPPED, FALLBACK.format(
        reason="the Price List API lists no Lambda duration (arm64) for eu-west-1"))
    assert "\n" not in prices.fallback


def test_a_region_name_is_checked_before_it_names_a_cache_file():
    with pytest.raises(ValueError, match=r"'\.\./x' is not an AWS region name"):
        regional_prices("../x", today=TODAY)


# -- which prices a report uses ----------------------------------------------------------------

def a_run(kind: str, region: str) -> RunData:
    return RunData(Path("run"), {"stack": {"kind": kind, "region": region}}, [], [], [], {})


def test_a_local_run_is_priced_from_the_shipped_table_without_asking_aws():
    pricing = pricing_client()
    with Stubber(pricing):  # nothing answered: a request would fall back, saying so
        prices = report_prices(a_run("local", "us-east-1"), Namespace(region=None, prices=None),
                               pricing)
    assert prices == ReportPrices(SHIPPED)


@pytest.mark.parametrize("run, region", [
    (a_run("aws", REGION), None),  # a run on AWS: its own region
    (a_run("local", "us-east-1"), REGION),  # any run: the region asked for
])
def test_a_region_is_priced_from_the_api(run, region):
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber)
        prices = report_prices(run, Namespace(region=region, prices=None), pricing)
    assert (prices.table.region, prices.table.source, prices.fallback) == (
        REGION, "the AWS Price List API", None)


def test_a_price_file_is_used_as_it_is(tmp_path):
    own = tmp_path / "my-prices.toml"
    own.write_text(PRICES_FILE.read_text().replace('region = "us-east-1"', f'region = "{REGION}"')
                   .replace('source = "the shipped price table"\n', ""))
    pricing = pricing_client()
    with Stubber(pricing):
        prices = report_prices(a_run("aws", "us-east-1"), Namespace(region=None, prices=own),
                               pricing)
    assert (prices.table.region, prices.table.source, prices.fallback) == (REGION, str(own), None)
