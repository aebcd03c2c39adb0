"""The whole local stack, started and stopped as one: DynamoDB, tables, Lambda workers,
the WebSocket data plane and the @connections API.

On ``--host`` it serves what API Gateway serves to the internet, the WebSocket and
@connections ports, and nothing else: DynamoDB, the proxy in front of it and the control
API stay on loopback. Each start keeps its logs apart from the runs before it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import shutil
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

import boto3

from system.local.apigateway.events import Api
from system.local.apigateway.ids import new_api_id
from system.local.apigateway.limits import ApiLimits
from system.local.apigateway.management_server import ManagementServer
from system.local.apigateway.routing import RouteTable
from system.local.apigateway.websocket_server import WebSocketApi
from system.local.aws_latency import AwsLatency, LatencyTable
from system.local.capacity import DYNAMODB_BURST_SECONDS, CapacityGovernor
from system.local.dynamodb import DynamoDB
from system.local.dynamodb_proxy import DynamoDBProxy
from system.local.faults import Faults
from system.local.lambda_api import LambdaApi
from system.local.lambda_runtime.logs import OPERATIONS_LOG, FunctionLogs
from system.local.lambda_runtime.pool import LambdaRuntime
from system.local.processes import LOOPBACK, free_port, port_is_free
from system.local.tls import local_tls
from system.provision import Capacity, TableNames, create_tables
from system.routes import (
    DEFAULT_ROUTES_FILE,
    load_routes,
    with_authorizer,
    with_fanout_strategy,
    with_secrets,
)
from system.stackfile import StackFile

log = logging.getLogger("chat_harness.stack")

# Each start moves the logs of the runs before it aside (logs.1 is the last run's) and
# keeps this many runs' logs, its own included.
LOG_RUNS_KEPT = 5


def new_credentials() -> dict[str, str]:
    """Credentials made for one stack, as boto3 takes them: its Lambda workers sign
    @connections calls with them, and @connections accepts no other signature. The key
    id looks like AWS's (uppercase letters and digits), the secret is as long as AWS's."""
    alphabet = string.ascii_uppercase + string.digits
    return {"aws_access_key_id": "LOCAL" + "".join(secrets.choice(alphabet) for _ in range(16)),
            "aws_secret_access_key": secrets.token_urlsafe(30)}


@dataclass
class LocalStackOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    management_port: int = 8766
    stage: str = "local"
    region: str = "us-east-1"
    dynamodb: str = "dynalite"
    routes_file: Path = DEFAULT_ROUTES_FILE
    state_dir: Path = Path(".chat-harness")
    stack_file: Path | None = None
    concurrency: int = 8
    queue_limit: int | None = None  # invocations waiting per function; None: the runtime's
    lambda_timeout_s: float | None = None
    limits: ApiLimits = field(default_factory=ApiLimits)
    tables: TableNames = field(default_factory=TableNames)
    provisioned: dict[str, Capacity] = field(default_factory=dict)
    burst_s: float = DYNAMODB_BURST_SECONDS
    fanout: str | None = None  # FANOUT_STRATEGY for every function; None: the routes file's
    authorizer: str | None = None  # a declared authorizer put on $connect; None: the file's
    aws_latency: LatencyTable | None = None  # None: local speed

    @property
    def stack_path(self) -> Path:
        return self.stack_file or self.state_dir / "stack.json"


def is_loopback(host: str) -> bool:
    """Whether only this machine reaches ``host``: ``localhost`` or a loopback address
    (a name counts as reachable from the network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The line a person who serves the stack on a network address must read: unlike
    API Gateway's endpoints it has neither IAM on the WebSocket nor a public CA."""
    if is_loopback(host):
        return None
    return (f"warning: --host {host} is not loopback: anyone on that network can connect to "
            f"the chat's WebSocket and @connections ports (DynamoDB and the control API stay "
            f"on {LOOPBACK})")


def management_hosts(host: str) -> tuple[str, ...]:
    """Where @connections listens: on ``host``, where handlers reach it as
    ``https://{domainName}/{stage}``, and on loopback, where the control API's clients
    are, unless binding ``host`` covers loopback already."""
    return (host,) if host in (LOOPBACK, "localhost", "0.0.0.0") else (host, LOOPBACK)


def start_run_logs(logs: Path, runs_kept: int = LOG_RUNS_KEPT) -> Path:
    """An empty ``logs`` directory for this run: the runs before it move aside (``logs``
    to ``logs.1``, ``logs.1`` to ``logs.2``, ...), and of all runs, this one included, only
    the last ``runs_kept`` stay."""
    def run(age: int) -> Path:
        return logs if age == 0 else logs.with_name(f"{logs.name}.{age}")

    shutil.rmtree(run(runs_kept - 1), ignore_errors=True)
    for age in range(runs_kept - 2, -1, -1):
        if run(age).exists():
            run(age).rename(run(age + 1))
    logs.mkdir(parents=True)
    return logs


class LocalStack:
    """``async with LocalStack(options) as stack:`` runs everything; ``stack.file`` says where."""

    def __init__(self, options: LocalStackOptions) -> None:
        self.options = options
        routes = load_routes(options.routes_file)
        if options.fanout is not None:
            routes = with_fanout_strategy(routes, options.fanout)
        if options.authorizer is not None:
            routes = with_authorizer(routes, options.authorizer)
        self.routes = RouteTable.of(with_secrets(routes.in_use(), os.environ))
        self.latency = AwsLatency(options.aws_latency)
        self.dynamodb = DynamoDB(options.dynamodb)
        self.faults = Faults()
        self.credentials = new_credentials()
        self.control_token = secrets.token_urlsafe(32)  # for the control API (fault injection)
        self.file: StackFile | None = None
        self._proxy: DynamoDBProxy | None = None
        self._runtime: LambdaRuntime | None = None
        self._lambda_api: LambdaApi | None = None
        self._websocket: WebSocketApi | None = None
        self._management: ManagementServer | None = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        o = self.options
        try:
            free_port(o.host)
        except OSError as error:
            raise OSError(f"cannot listen on --host {o.host} ({error.strerror or error}); "
                          f"give an address or name of this machine") from None
        listeners = [(o.host, o.port, "--port")] + [
            (host, o.management_port, "--management-port") for host in management_hosts(o.host)]
        for host, port, flag in listeners:
            if port and not port_is_free(host, port):
                raise OSError(f"port {port} on {host} is in use (another stack running?); "
                              f"choose another with {flag}, or 0 for any free port")
        unknown = set(o.provisioned) - set(o.tables.key_attributes())
        if unknown:
            raise ValueError(f"--provisioned names no table of this stack: {sorted(unknown)}; "
                             f"its tables: {sorted(o.tables.key_attributes())}")
        logs_dir = start_run_logs(o.state_dir / "logs")
        metrics_file = logs_dir / "metrics.jsonl"
        tls = local_tls(o.state_dir / "tls", o.host)
        backend = await self.dynamodb.start()
        await asyncio.to_thread(self._create_tables, backend.endpoint_url)
        governor = CapacityGovernor(o.provisioned, o.burst_s) if o.provisioned else None
        self._proxy = DynamoDBProxy(backend.endpoint_url, self.faults,
                                    key_attributes=o.tables.key_attributes(), governor=governor,
                                    operations_log=logs_dir / OPERATIONS_LOG,
                                    latency=self.latency)
        workers_dynamodb = await self._proxy.start()

        ws_port = o.port or free_port(o.host)
        management_port = o.management_port or free_port(o.host)
        domain_name = f"{o.host}:{management_port}"
        stack_environment = {
            "AWS_ENDPOINT_URL_DYNAMODB": workers_dynamodb,
            "AWS_CA_BUNDLE": str(tls.ca_bundle.resolve()),
            "AWS_ACCESS_KEY_ID": self.credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["aws_secret_access_key"],
            "AWS_ENDPOINT_URL_LAMBDA": f"http://{LOOPBACK}:{free_port(LOOPBACK)}",
            **o.tables.handler_environment(),
        }
        self.routes = replace(self.routes, functions={
            name: replace(spec, timeout_s=o.lambda_timeout_s or spec.timeout_s,
                          environment={**spec.environment, **spec.invokes})
            for name, spec in self.routes.functions.items()
        })  # a function's invokes: environment variable -> the called function's name here
        logs = FunctionLogs(logs_dir, metrics_file)
        self._runtime = LambdaRuntime(self.routes.functions, o.region, stack_environment,
                                      o.concurrency, logs, queue_limit=o.queue_limit,
                                      latency=self.latency)
        self._lambda_api = LambdaApi(self._runtime, self.secret_keys, o.region, self.latency)
        await self._lambda_api.start(stack_environment["AWS_ENDPOINT_URL_LAMBDA"])

        api = Api(api_id=new_api_id(), stage=o.stage, domain_name=domain_name, region=o.region)
        self._websocket = WebSocketApi(api, self.routes, self._runtime, o.limits, self.faults)
        self._management = ManagementServer(
            self._websocket, tls.server_context, self.secret_keys, self.control_token,
            latency=self.latency)
        await self._management.start(management_hosts(o.host), management_port)
        await self._websocket.start(o.host, ws_port)

        self.file = StackFile(
            kind="local",
            websocket_url=f"ws://{o.host}:{ws_port}/{o.stage}",
            management_endpoint=f"https://{domain_name}/{o.stage}",
            region=o.region,
            dynamodb_endpoint=backend.endpoint_url,
            tables=o.tables.as_dict(),
            stage=o.stage,
            api_id=api.api_id,
            ca_bundle=str(tls.ca_bundle.resolve()),
            credentials=self.credentials,
            dynamodb_backend=backend.kind,
            capacity_fidelity=backend.capacity_fidelity,
            web_client_url=f"http://{o.host}:{ws_port}/",
            logs_dir=str(logs_dir.resolve()),
            metrics_file=str(metrics_file.resolve()),
            control_endpoint=f"https://{LOOPBACK}:{management_port}/@harness",
            control_token=self.control_token,
            aws_latency=o.aws_latency.date if o.aws_latency else None,
            lambda_endpoint=stack_environment["AWS_ENDPOINT_URL_LAMBDA"],
            authorizer=self.routes.authorizer.name if self.routes.authorizer else None,
            fanout=o.fanout,
        )
        self.file.write(o.stack_path)

    @property
    def secret_keys(self) -> dict[str, str]:
        """The one key pair @connections and the Invoke API accept signatures of."""
        return {self.credentials["aws_access_key_id"]: self.credentials["aws_secret_access_key"]}

    def _create_tables(self, endpoint_url: str) -> None:
        client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=self.options.region,
                              **self.credentials)
        create_tables(client, self.options.tables, self.options.provisioned)

    async def stop(self) -> None:
        """Stop in reverse order; every child process ends here."""
        if self._websocket is not None:
            await self._websocket.stop()
        if self._management is not None:
            await self._management.stop()
        if self._lambda_api is not None:
            await self._lambda_api.stop()
        if self._runtime is not None:
            await self._runtime.stop()
        if self._proxy is not None:
            await self._proxy.stop()
        await self.dynamodb.stop()
        if self.file is not None:
            self.options.stack_path.unlink(missing_ok=True)
            self.file = None
