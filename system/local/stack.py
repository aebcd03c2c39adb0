"""The whole local stack, started and stopped as one: DynamoDB, tables, Lambda workers,
the WebSocket data plane and the @connections API."""

from __future__ import annotations

import asyncio
import logging
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
from system.local.capacity import DYNAMODB_BURST_SECONDS, CapacityGovernor
from system.local.dynamodb import DynamoDB
from system.local.dynamodb_proxy import DynamoDBProxy
from system.local.faults import Faults
from system.local.lambda_runtime.logs import OPERATIONS_LOG, FunctionLogs
from system.local.lambda_runtime.pool import LambdaRuntime
from system.local.processes import free_port, port_is_free
from system.local.tls import local_tls
from system.provision import Capacity, TableNames, create_tables
from system.routes import DEFAULT_ROUTES_FILE, load_routes
from system.stackfile import StackFile

log = logging.getLogger("chat_harness.stack")

# The local stack has no IAM: any well-formed signature is accepted, so these
# fixed credentials only have to exist.
LOCAL_CREDENTIALS = {"aws_access_key_id": "chatharnesslocal", "aws_secret_access_key": "local"}


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
    lambda_timeout_s: float | None = None
    limits: ApiLimits = field(default_factory=ApiLimits)
    tables: TableNames = field(default_factory=TableNames)
    provisioned: dict[str, Capacity] = field(default_factory=dict)
    burst_s: float = DYNAMODB_BURST_SECONDS

    @property
    def stack_path(self) -> Path:
        return self.stack_file or self.state_dir / "stack.json"


class LocalStack:
    """``async with LocalStack(options) as stack:`` runs everything; ``stack.file`` says where."""

    def __init__(self, options: LocalStackOptions) -> None:
        self.options = options
        self.routes = RouteTable.of(load_routes(options.routes_file))
        self.dynamodb = DynamoDB(options.dynamodb)
        self.faults = Faults()
        self.file: StackFile | None = None
        self._proxy: DynamoDBProxy | None = None
        self._runtime: LambdaRuntime | None = None
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
        for port, flag in ((o.port, "--port"), (o.management_port, "--management-port")):
            if port and not port_is_free(o.host, port):
                raise OSError(f"port {port} on {o.host} is in use (another stack running?); "
                              f"choose another with {flag}, or 0 for any free port")
        unknown = set(o.provisioned) - set(o.tables.key_attributes())
        if unknown:
            raise ValueError(f"--provisioned names no table of this stack: {sorted(unknown)}; "
                             f"its tables: {sorted(o.tables.key_attributes())}")
        o.state_dir.mkdir(parents=True, exist_ok=True)
        (o.state_dir / "logs").mkdir(exist_ok=True)
        tls = local_tls(o.state_dir / "tls")
        backend = await self.dynamodb.start(o.host)
        await asyncio.to_thread(self._create_tables, backend.endpoint_url)
        governor = CapacityGovernor(o.provisioned, o.burst_s) if o.provisioned else None
        self._proxy = DynamoDBProxy(backend.endpoint_url, self.faults,
                                    key_attributes=o.tables.key_attributes(), governor=governor,
                                    operations_log=o.state_dir / "logs" / OPERATIONS_LOG)
        workers_dynamodb = await self._proxy.start(o.host)

        ws_port = o.port or free_port(o.host)
        management_port = o.management_port or free_port(o.host)
        domain_name = f"{o.host}:{management_port}"
        stack_environment = {
            "AWS_ENDPOINT_URL_DYNAMODB": workers_dynamodb,
            "AWS_CA_BUNDLE": str(tls.ca_bundle.resolve()),
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            **o.tables.handler_environment(),
        }
        if o.lambda_timeout_s is not None:
            self.routes = replace(self.routes, functions={
                name: replace(spec, timeout_s=o.lambda_timeout_s)
                for name, spec in self.routes.functions.items()
            })
        logs = FunctionLogs(o.state_dir / "logs", o.state_dir / "metrics.jsonl")
        self._runtime = LambdaRuntime(self.routes.functions, o.region, stack_environment,
                                      o.concurrency, logs)
        await self._runtime.warm()

        api = Api(api_id=new_api_id(), stage=o.stage, domain_name=domain_name)
        self._websocket = WebSocketApi(api, self.routes, self._runtime, o.limits, self.faults)
        self._management = ManagementServer(self._websocket, tls.server_context)
        await self._management.start(o.host, management_port)
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
            credentials=LOCAL_CREDENTIALS,
            dynamodb_backend=backend.kind,
            capacity_fidelity=backend.capacity_fidelity,
            web_client_url=f"http://{o.host}:{ws_port}/",
            logs_dir=str((o.state_dir / "logs").resolve()),
            metrics_file=str((o.state_dir / "metrics.jsonl").resolve()),
            control_endpoint=f"https://{domain_name}/@harness",
        )
        self.file.write(o.stack_path)

    def _create_tables(self, endpoint_url: str) -> None:
        client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=self.options.region,
                              **LOCAL_CREDENTIALS)
        create_tables(client, self.options.tables, self.options.provisioned)

    async def stop(self) -> None:
        """Stop in reverse order; every child process ends here."""
        if self._websocket is not None:
            await self._websocket.stop()
        if self._management is not None:
            await self._management.stop()
        if self._runtime is not None:
            await self._runtime.stop()
        if self._proxy is not None:
            await self._proxy.stop()
        await self.dynamodb.stop()
        if self.file is not None:
            self.options.stack_path.unlink(missing_ok=True)
            self.file = None
