"""Deploy the chat to AWS with boto3, converging; and destroy exactly what deploy made.

``deploy`` reads each resource the routes file and options call for, compares it with
what should be, and creates, updates or leaves it: a second run with nothing changed
changes nothing, a changed handler updates that function's code only. With
``apply=False`` it only reads, and the changes say what a deploy would do (``--plan``).

Order: the tables, the WebSocket API (its id goes into every role's @connections ARN),
per function its log group, role, function and invoke permission, then the API's
authorizer (before ``$connect`` names it), integrations, routes, route responses, the
authorizers no route names any more (deleted once ``$connect`` has let go of them), its
stage, and a deployment when anything under the API changed. Only the functions in use
are built (``RoutesFile.in_use``): the authorizer's function only with ``--authorizer``.
Last, the stage's functions no longer in use are deleted with their roles and log groups
(once the new deployment no longer reaches them): an authorizer's after a deploy without
``--authorizer``.
A function's ``secrets`` go from the environment deploy runs in into the function's
environment; one unset stops the deploy before it changes anything. Every resource is
named after the stage and tagged with it (system/aws/stage.py); a name that exists
without the tag stops the deploy before it changes anything.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from system.apigateway_quotas import INTEGRATION_TIMEOUT_SECONDS
from system.aws.errors import AwsError, CallRecorder, aws_errors_in_one_line
from system.aws.package import RUNTIME, FunctionPackage, package_function
from system.aws.stage import LAMBDA_TRUST_POLICY, ROLE_PATH, TAG_KEY, Stage
from system.provision import Capacity, enable_ttl, table_definition
from system.routes import (
    DEFAULT_ASYNC_RETRIES,
    DEFAULT_ROUTES_FILE,
    RoutesFile,
    load_routes,
    with_authorizer,
    with_fanout_strategy,
    with_secrets,
)
from system.stackfile import StackFile

ROLE_POLICY_NAME = "chat-harness"
PERMISSION_STATEMENT_ID = "chat-harness-apigateway"
AUTHORIZER_PERMISSION_STATEMENT_ID = "chat-harness-authorizer"
# Stand-ins for ids AWS gives on creation, in a plan that would create the resource.
NEW_API_ID = "NEW-API-ID"
NEW_AUTHORIZER_ID = "NEW-AUTHORIZER-ID"
DEFAULT_PROVISIONED = Capacity(5, 5)
LOG_RETENTION_DAYS = 14
TWO_WAY = "$default"  # the route response key (and selection expression) of a two-way route
# A new role takes seconds to reach Lambda ("The role defined for the function cannot be
# assumed by Lambda"): CreateFunction is retried for this long.
ROLE_PROPAGATION_S = 60
# API Gateway's access log line, in its $context variables:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime", "eventType": "$context.eventType",
    "routeKey": "$context.routeKey", "status": "$context.status",
    "connectionId": "$context.connectionId",
    "integrationLatency": "$context.integrationLatency",
})


@dataclass(frozen=True)
class Throttling:
    """The stage's default route throttling (API Gateway's account defaults)."""

    rate: float = 10_000.0
    burst: int = 5_000


@dataclass(frozen=True)
class DeployOptions:
    stage: str
    region: str
    routes_file: Path = DEFAULT_ROUTES_FILE
    provisioned: bool = False
    capacity: dict[str, Capacity] = field(default_factory=dict)  # table role -> RCU/WCU
    throttling: Throttling = Throttling()
    fanout: str | None = None  # FANOUT_STRATEGY for every function; None: the routes file's
    authorizer: str | None = None  # a declared authorizer put on $connect; None: the file's


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # create, update, unchanged or delete
    detail: str = ""

    def line(self) -> str:
        return f"{self.action:<9} {self.kind:<15} {self.name}" + (
            f"  ({self.detail})" if self.detail else "")


class Deployment:
    """One run of deploy (``apply``) or of its plan."""

    def __init__(self, session, options: DeployOptions, *, apply: bool) -> None:
        self.options = options
        self.apply = apply
        self.changes: list[Change] = []
        self.recorder = CallRecorder(session)
        routes = load_routes(options.routes_file)
        if options.fanout:
            routes = with_fanout_strategy(routes, options.fanout)
        if options.authorizer:
            routes = with_authorizer(routes, options.authorizer)
        self.routes: RoutesFile = with_secrets(routes.in_use(), os.environ)
        with aws_errors_in_one_line(self.recorder):
            def client(name: str):
                return session.client(name, region_name=options.region)
            self.dynamodb, self.iam, self.lambda_ = (client(n) for n in
                                                      ("dynamodb", "iam", "lambda"))
            self.logs, self.apis, self.apigateway = (client(n) for n in
                                                     ("logs", "apigatewayv2", "apigateway"))
            account = client("sts").get_caller_identity()["Account"]
        self.stage = Stage(options.stage, options.region, account)
        self.packages: dict[str, FunctionPackage] = {
            name: package_function(spec) for name, spec in self.routes.functions.items()}

    # -- bookkeeping -----------------------------------------------------------------------

    def record(self, kind: str, name: str, action: str, detail: str = "") -> bool:
        """Note a change; True where it is to be made now."""
        self.changes.append(Change(kind, name, action, detail))
        return self.apply and action != "unchanged"

    def run(self) -> StackFile | None:
        with aws_errors_in_one_line(self.recorder):
            self.check_ownership()
            self.converge_tables()
            api_id = self.converge_api()
            for name in self.routes.functions:
                self.converge_log_group(self.stage.log_group(name))
                self.converge_role(name, api_id)
                self.converge_function(name)
                self.converge_async_retries(name)
                if name in self.routed_functions():
                    self.converge_permission(name, PERMISSION_STATEMENT_ID,
                                             self.stage.invoke_source_arn(api_id or NEW_API_ID),
                                             "apigateway invoke")
            authorizers = self.current_authorizers(api_id)
            authorizer_id, authorizer_changed = self.converge_authorizer(api_id, authorizers)
            routes_changed = self.converge_integrations_and_routes(api_id, authorizer_id)
            unused_deleted = self.delete_unused_authorizers(api_id, authorizers)
            self.converge_stage(api_id, authorizer_changed or routes_changed or unused_deleted)
            self.delete_unused_functions()
            if not self.apply:
                return None
            return self.stack_file(api_id)

    def routed_functions(self) -> list[str]:
        return sorted({route.function for route in self.routes.routes.values()})

    def posts_to_connections(self, function: str) -> bool:
        """A route's function, or one a route's function invokes, answers clients through
        @connections; an authorizer's function only answers API Gateway."""
        routed = self.routed_functions()
        return function in routed or any(function in self.routes.functions[name].invokes.values()
                                         for name in routed)

    # -- ownership -------------------------------------------------------------------------

    def check_ownership(self) -> None:
        """Every resource deploy would make that exists already must carry this stage's
        tag: a stage of that name made some other way is left alone."""
        stage, foreign = self.stage, []
        for table in stage.tables.as_dict().values():
            current = self.describe_table(table)
            if current and not self.tagged(self.dynamodb.list_tags_of_resource(
                    ResourceArn=current["TableArn"]).get("Tags", []), key="Key"):
                foreign.append(f"table {table}")
        api = self.find_api()
        if api and api.get("Tags", {}).get(TAG_KEY) != stage.name:
            foreign.append(f"API {stage.api_name}")
        for name in self.routes.functions:
            role = self.get_or_none(self.iam.get_role, self.iam.exceptions.NoSuchEntityException,
                                    RoleName=stage.function_name(name))
            if role and not self.tagged(role["Role"].get("Tags", []), key="Key"):
                foreign.append(f"role {stage.function_name(name)}")
            function = self.get_function(name)
            if function and function.get("Tags", {}).get(TAG_KEY) != stage.name:
                foreign.append(f"function {stage.function_name(name)}")
        if foreign:
            raise AwsError(f"stage {stage.name} exists but was not made by chat-harness deploy "
                           f"({', '.join(foreign)} has no {TAG_KEY}={stage.name} tag): "
                           f"choose another --stage")

    def tagged(self, tags: list[dict], *, key: str) -> bool:
        return any(t[key] == TAG_KEY and t["Value"] == self.stage.name for t in tags)

    @staticmethod
    def get_or_none(call, missing: type[Exception], **kwargs) -> dict | None:
        try:
            return call(**kwargs)
        except missing:
            return None

    # -- DynamoDB --------------------------------------------------------------------------

    def describe_table(self, table: str) -> dict | None:
        found = self.get_or_none(self.dynamodb.describe_table,
                                 self.dynamodb.exceptions.ResourceNotFoundException,
                                 TableName=table)
        return found["Table"] if found else None

    def table_capacity(self, role: str) -> Capacity | None:
        if not self.options.provisioned:
            return None
        return self.options.capacity.get(role, DEFAULT_PROVISIONED)

    def converge_tables(self) -> None:
        names = self.stage.tables
        keys = names.key_attributes()
        for role, table in names.as_dict().items():
            wanted = table_definition(table, keys[table], self.table_capacity(role))
            billing = wanted["BillingMode"].lower().replace("pay_per_request", "on-demand")
            throughput = wanted.get("ProvisionedThroughput")
            if throughput:
                billing += f" {throughput['ReadCapacityUnits']}/{throughput['WriteCapacityUnits']}"
            current = self.describe_table(table)
            if current is None:
                if self.record("table", table, "create", billing):
                    self.dynamodb.create_table(
                        **wanted, Tags=[{"Key": k, "Value": v} for k, v in self.stage.tags.items()])
                continue
            current_billing = current.get("BillingModeSummary", {}).get("BillingMode",
                                                                        "PROVISIONED")
            current_throughput = {k: current["ProvisionedThroughput"][k]
                                  for k in ("ReadCapacityUnits", "WriteCapacityUnits")}
            if current_billing == wanted["BillingMode"] and (
                    throughput is None or throughput == current_throughput):
                self.record("table", table, "unchanged", billing)
            elif self.record("table", table, "update", billing):
                self.dynamodb.update_table(TableName=table, BillingMode=wanted["BillingMode"],
                                           **({"ProvisionedThroughput": throughput}
                                              if throughput else {}))
        if self.apply:
            waiter = self.dynamodb.get_waiter("table_exists")
            for table in names.as_dict().values():
                waiter.wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
        ttl_table = names.active_connections
        status = "DISABLED"
        if self.describe_table(ttl_table) is not None:
            status = self.dynamodb.describe_time_to_live(TableName=ttl_table)[
                "TimeToLiveDescription"]["TimeToLiveStatus"]
        action = "unchanged" if status in ("ENABLED", "ENABLING") else "create"
        if self.record("table TTL", ttl_table, action):
            enable_ttl(self.dynamodb, ttl_table)

    # -- the WebSocket API -----------------------------------------------------------------

    def find_api(self) -> dict | None:
        return next((api for page in _pages(self.apis.get_apis) for api in page.get("Items", [])
                     if api["Name"] == self.stage.api_name
                     and api["ProtocolType"] == "WEBSOCKET"), None)

    def converge_api(self) -> str | None:
        """The API's id; None in a plan where it does not exist yet."""
        expression = self.routes.selection_expression
        api = self.find_api()
        if api is None:
            if self.record("API", self.stage.api_name, "create"):
                return self.apis.create_api(Name=self.stage.api_name, ProtocolType="WEBSOCKET",
                                            RouteSelectionExpression=expression,
                                            Tags=self.stage.tags)["ApiId"]
            return None
        if api["RouteSelectionExpression"] == expression:
            self.record("API", self.stage.api_name, "unchanged", api["ApiId"])
        elif self.record("API", self.stage.api_name, "update", "route selection expression"):
            self.apis.update_api(ApiId=api["ApiId"], RouteSelectionExpression=expression)
        return api["ApiId"]

    # -- per function ----------------------------------------------------------------------

    def converge_log_group(self, group: str) -> None:
        found = [g for g in self.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
                 if g["logGroupName"] == group]
        if not found:
            if self.record("log group", group, "create", f"{LOG_RETENTION_DAYS} days"):
                self.logs.create_log_group(logGroupName=group, tags=self.stage.tags)
                self.logs.put_retention_policy(logGroupName=group,
                                               retentionInDays=LOG_RETENTION_DAYS)
        elif found[0].get("retentionInDays") == LOG_RETENTION_DAYS:
            self.record("log group", group, "unchanged")
        elif self.record("log group", group, "update", f"{LOG_RETENTION_DAYS} days"):
            self.logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)

    def converge_role(self, function: str, api_id: str | None) -> None:
        name = self.stage.function_name(function)
        policy = self.stage.function_policy(self.routes.functions[function],
                                            api_id or NEW_API_ID,
                                            posts_to_connections=self.posts_to_connections(function))
        exists = self.get_or_none(self.iam.get_role, self.iam.exceptions.NoSuchEntityException,
                                  RoleName=name)
        if exists is None:
            if self.record("role", name, "create"):
                self.iam.create_role(
                    RoleName=name, Path=ROLE_PATH,
                    AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
                    Description=f"chat-harness {self.stage.name}: {function}",
                    Tags=[{"Key": k, "Value": v} for k, v in self.stage.tags.items()])
                self.iam.put_role_policy(RoleName=name, PolicyName=ROLE_POLICY_NAME,
                                         PolicyDocument=json.dumps(policy))
            return
        current = self.get_or_none(self.iam.get_role_policy,
                                   self.iam.exceptions.NoSuchEntityException,
                                   RoleName=name, PolicyName=ROLE_POLICY_NAME)
        if current is not None and current["PolicyDocument"] == policy:
            self.record("role", name, "unchanged")
        elif self.record("role", name, "update", "policy"):
            self.iam.put_role_policy(RoleName=name, PolicyName=ROLE_POLICY_NAME,
                                     PolicyDocument=json.dumps(policy))

    def get_function(self, function: str) -> dict | None:
        return self.get_or_none(self.lambda_.get_function,
                                self.lambda_.exceptions.ResourceNotFoundException,
                                FunctionName=self.stage.function_name(function))

    def function_settings(self, function: str) -> dict:
        spec = self.routes.functions[function]
        return {
            "Handler": spec.handler, "Runtime": RUNTIME, "Role": self.stage.role_arn(function),
            "Timeout": math.ceil(spec.timeout_s), "MemorySize": spec.memory_mb,
            "Environment": {"Variables": {
                **self.stage.tables.handler_environment(), **spec.environment,
                **{variable: self.stage.function_name(called)
                   for variable, called in spec.invokes.items()}}},
        }

    def converge_function(self, function: str) -> None:
        name = self.stage.function_name(function)
        package = self.packages[function]
        settings = self.function_settings(function)
        current = self.get_function(function)
        if current is None:
            if self.record("function", name, "create", f"{len(package.files)} files"):
                self.create_function(name, package, settings)
            return
        configuration = current["Configuration"]
        configuration.setdefault("Environment", {"Variables": {}})
        new_code = configuration["CodeSha256"] != package.code_sha256
        changed = [key for key, value in settings.items() if configuration.get(key) != value]
        detail = ", ".join((["code"] if new_code else []) + changed)
        if not detail:
            self.record("function", name, "unchanged")
            return
        if not self.record("function", name, "update", detail):
            return
        updated = self.lambda_.get_waiter("function_updated_v2")
        if new_code:
            self.lambda_.update_function_code(FunctionName=name, ZipFile=package.zip_bytes)
            updated.wait(FunctionName=name)
        if changed:
            self.lambda_.update_function_configuration(FunctionName=name, **settings)
            updated.wait(FunctionName=name)

    def create_function(self, name: str, package: FunctionPackage, settings: dict) -> None:
        deadline = time.monotonic() + ROLE_PROPAGATION_S
        while True:
            try:
                self.lambda_.create_function(
                    FunctionName=name, Code={"ZipFile": package.zip_bytes},
                    Description=f"chat-harness {self.stage.name}", Tags=self.stage.tags,
                    **settings)
                break
            except self.lambda_.exceptions.InvalidParameterValueException as error:
                if "cannot be assumed" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(2)  # AWS's own propagation: nothing to await but time
        self.lambda_.get_waiter("function_active_v2").wait(FunctionName=name)

    def converge_async_retries(self, function: str) -> None:
        """Lambda retries a failed asynchronous invocation twice unless the function's
        event invoke config says otherwise: set where the routes file's ``async_retries``
        differs (the fan-out function's 0)."""
        name = self.stage.function_name(function)
        wanted = self.routes.functions[function].async_retries
        current = self.get_or_none(self.lambda_.get_function_event_invoke_config,
                                   self.lambda_.exceptions.ResourceNotFoundException,
                                   FunctionName=name)
        retries = current.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES) if current else (
            DEFAULT_ASYNC_RETRIES)
        if retries == wanted:
            if current is not None:
                self.record("async retries", name, "unchanged", str(wanted))
            return
        if self.record("async retries", name, "create" if current is None else "update",
                       str(wanted)):
            self.lambda_.put_function_event_invoke_config(FunctionName=name,
                                                          MaximumRetryAttempts=wanted)

    def converge_permission(self, function: str, statement_id: str, source: str,
                            detail: str) -> None:
        """API Gateway may invoke the function from ``source`` (any route of this API, or
        its authorizer): the statement ``statement_id`` of the function's policy."""
        name = self.stage.function_name(function)
        policy = self.get_or_none(self.lambda_.get_policy,
                                  self.lambda_.exceptions.ResourceNotFoundException,
                                  FunctionName=name)
        statements = json.loads(policy["Policy"])["Statement"] if policy else []
        current = next((s for s in statements if s.get("Sid") == statement_id), None)
        if current is None:
            action = "create"
        elif current.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == source:
            action = "unchanged"
        else:
            action = "update"
        if not self.record("permission", name, action, detail):
            return
        if current is not None:
            self.lambda_.remove_permission(FunctionName=name, StatementId=statement_id)
        self.lambda_.add_permission(FunctionName=name, StatementId=statement_id,
                                    Action="lambda:InvokeFunction",
                                    Principal="apigateway.amazonaws.com", SourceArn=source)

    # -- under the API ---------------------------------------------------------------------

    def current_authorizers(self, api_id: str | None) -> dict[str, dict]:
        """The API's authorizers by name (none before the API exists)."""
        if api_id is None:
            return {}
        return {authorizer["Name"]: authorizer
                for page in _pages(self.apis.get_authorizers, ApiId=api_id)
                for authorizer in page.get("Items", [])}

    def converge_authorizer(self, api_id: str | None, current: dict[str, dict]
                            ) -> tuple[str | None, bool]:
        """The authorizer on ``$connect``, as API Gateway v2 models a Lambda REQUEST
        authorizer (its function's invocation URI, where the identity is read), and the
        permission for API Gateway to invoke its function from it. Its id (None where
        ``$connect`` has none) and whether it changed."""
        spec = self.routes.connect_authorizer()
        if spec is None:
            return None, False
        wanted = {"AuthorizerType": "REQUEST",
                  "AuthorizerUri": self.stage.invocation_uri(spec.function),
                  "IdentitySource": list(spec.identity_sources)}
        detail = f"{spec.function}, identity {', '.join(spec.identity_sources)}"
        found = current.get(spec.name)
        changed = True
        if found is None:
            authorizer_id = NEW_AUTHORIZER_ID
            if self.record("authorizer", spec.name, "create", detail):
                authorizer_id = self.apis.create_authorizer(ApiId=api_id, Name=spec.name,
                                                            **wanted)["AuthorizerId"]
        else:
            authorizer_id = found["AuthorizerId"]
            if all(found.get(key) == value for key, value in wanted.items()):
                changed = False
                self.record("authorizer", spec.name, "unchanged", detail)
            elif self.record("authorizer", spec.name, "update", detail):
                self.apis.update_authorizer(ApiId=api_id, AuthorizerId=authorizer_id, **wanted)
        self.converge_permission(
            spec.function, AUTHORIZER_PERMISSION_STATEMENT_ID,
            self.stage.authorizer_source_arn(api_id or NEW_API_ID, authorizer_id),
            f"apigateway invoke as authorizer {spec.name}")
        return authorizer_id, changed

    def delete_unused_authorizers(self, api_id: str | None, current: dict[str, dict]) -> bool:
        """Delete the API's authorizers ``$connect`` no longer names (API Gateway refuses to
        delete one a route still names, so after the routes); True if any was."""
        spec = self.routes.connect_authorizer()
        unused = {name: authorizer for name, authorizer in current.items()
                  if spec is None or name != spec.name}
        for name, authorizer in sorted(unused.items()):
            if self.record("authorizer", name, "delete"):
                self.apis.delete_authorizer(ApiId=api_id, AuthorizerId=authorizer["AuthorizerId"])
        return bool(unused)

    def converge_integrations_and_routes(self, api_id: str | None,
                                         authorizer_id: str | None) -> bool:
        """Integrations (one per routed function), routes (``$connect`` with the authorizer
        ``authorizer_id`` where it has one, every other route open), route responses; True
        if anything changed, so that the stage needs a new deployment."""
        current_integrations = (
            {i["IntegrationUri"]: i for i in self.apis.get_integrations(ApiId=api_id)["Items"]}
            if api_id else {})
        current_routes = ({r["RouteKey"]: r for r in self.apis.get_routes(ApiId=api_id)["Items"]}
                          if api_id else {})
        changed = False
        integration_ids: dict[str, str] = {}
        for function in self.routed_functions():
            uri = self.stage.invocation_uri(function)
            timeout_ms = min(INTEGRATION_TIMEOUT_SECONDS * 1000,
                             math.ceil(self.routes.functions[function].timeout_s * 1000))
            current = current_integrations.get(uri)
            name = self.stage.function_name(function)
            if current is None:
                changed = True
                if self.record("integration", name, "create"):
                    integration_ids[function] = self.apis.create_integration(
                        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
                        IntegrationUri=uri, TimeoutInMillis=timeout_ms)["IntegrationId"]
                continue
            integration_ids[function] = current["IntegrationId"]
            if current.get("TimeoutInMillis") == timeout_ms:
                self.record("integration", name, "unchanged")
            else:
                changed = True
                if self.record("integration", name, "update", f"timeout {timeout_ms} ms"):
                    self.apis.update_integration(ApiId=api_id,
                                                 IntegrationId=current["IntegrationId"],
                                                 TimeoutInMillis=timeout_ms)
        for key, route in sorted(self.routes.routes.items()):
            target = f"integrations/{integration_ids.get(route.function, 'NEW')}"
            selection = TWO_WAY if route.route_response else None
            authorization = ({"AuthorizationType": "CUSTOM", "AuthorizerId": authorizer_id}
                             if route.authorizer else {"AuthorizationType": "NONE"})
            guard = f"authorizer {route.authorizer}" if route.authorizer else "no authorizer"
            current = current_routes.get(key)
            if current is not None and current.get("RouteResponseSelectionExpression") != selection:
                changed = True
                if self.record("route", key, "update", "two-way" if selection else "one-way"):
                    self.apis.delete_route(ApiId=api_id, RouteId=current["RouteId"])
                    self.create_route(api_id, key, target, selection, authorization)
            elif current is None:
                changed = True
                detail = ", ".join(kind for kind, present in (("two-way", selection),
                                                              (guard, route.authorizer))
                                   if present)
                if self.record("route", key, "create", detail):
                    self.create_route(api_id, key, target, selection, authorization)
            elif differences := [*([target] if current.get("Target") != target else []),
                                 *([guard] if route_authorization(current) != authorization
                                   else [])]:
                changed = True
                if self.record("route", key, "update", ", ".join(differences)):
                    self.apis.update_route(ApiId=api_id, RouteId=current["RouteId"],
                                           Target=target, **authorization)
            else:
                self.record("route", key, "unchanged")
        for key, current in current_routes.items():
            if key not in self.routes.routes:
                changed = True
                if self.record("route", key, "delete"):
                    self.apis.delete_route(ApiId=api_id, RouteId=current["RouteId"])
        wanted = {self.stage.invocation_uri(f) for f in self.routed_functions()}
        for uri, current in current_integrations.items():
            if uri not in wanted:
                changed = True
                if self.record("integration", uri.split(":")[-1].split("/")[0], "delete"):
                    self.apis.delete_integration(ApiId=api_id,
                                                 IntegrationId=current["IntegrationId"])
        return changed

    def create_route(self, api_id: str, key: str, target: str, selection: str | None,
                     authorization: dict[str, str | None]) -> None:
        """A two-way route has the ``$default`` route response selection expression and a
        ``$default`` route response: the Lambda's body then reaches the client."""
        route_id = self.apis.create_route(
            ApiId=api_id, RouteKey=key, Target=target, **authorization,
            **({"RouteResponseSelectionExpression": selection} if selection else {}))["RouteId"]
        if selection:
            self.apis.create_route_response(ApiId=api_id, RouteId=route_id,
                                            RouteResponseKey=TWO_WAY)

    def access_logs(self) -> dict | None:
        """Access logs need the account's CloudWatch role for API Gateway; without one they
        stay off (the change says so) rather than failing the stage."""
        account = self.apigateway.get_account()
        if not account.get("cloudwatchRoleArn"):
            return None
        return {"DestinationArn": self.stage.log_group_arn(self.stage.access_log_group),
                "Format": ACCESS_LOG_FORMAT}

    def converge_stage(self, api_id: str | None, routes_changed: bool) -> None:
        self.converge_log_group(self.stage.access_log_group)
        throttling = {"ThrottlingRateLimit": self.options.throttling.rate,
                      "ThrottlingBurstLimit": self.options.throttling.burst}
        access = self.access_logs()
        detail = (f"throttling {self.options.throttling.rate:g}/s burst "
                  f"{self.options.throttling.burst}, access logs "
                  + ("on" if access else "off: the account has no CloudWatch role for "
                                         "API Gateway"))
        current = (self.get_or_none(self.apis.get_stage, self.apis.exceptions.NotFoundException,
                                    ApiId=api_id, StageName=self.stage.name)
                   if api_id else None)
        if current is None:
            if self.record("stage", self.stage.name, "create", detail):
                self.apis.create_stage(ApiId=api_id, StageName=self.stage.name,
                                       DefaultRouteSettings=throttling,
                                       **({"AccessLogSettings": access} if access else {}),
                                       Tags=self.stage.tags)
        else:
            settings = current.get("DefaultRouteSettings", {})
            same = (all(settings.get(k) == v for k, v in throttling.items())
                    and current.get("AccessLogSettings") == access)
            if same:
                self.record("stage", self.stage.name, "unchanged", detail)
            elif self.record("stage", self.stage.name, "update", detail):
                self.apis.update_stage(ApiId=api_id, StageName=self.stage.name,
                                       DefaultRouteSettings=throttling,
                                       **({"AccessLogSettings": access} if access else {}))
        if routes_changed or current is None or not current.get("DeploymentId"):
            if self.record("deployment", self.stage.name, "create"):
                self.apis.create_deployment(ApiId=api_id, StageName=self.stage.name,
                                            Description="chat-harness deploy")
        else:
            self.record("deployment", self.stage.name, "unchanged")

    # -- what the routes file no longer uses -----------------------------------------------

    def delete_unused_functions(self) -> None:
        """Delete the stage's functions the routes file no longer uses (``RoutesFile.in_use``:
        an authorizer's taken off ``$connect``, one no route reaches or invokes), each with
        its role and log group. After the stage's new deployment: until then the live
        deployment still reaches them."""
        in_use = {self.stage.function_name(name) for name in self.routes.functions}
        for name in stage_functions(self.lambda_, self.stage):
            if name not in in_use and self.record("function", name, "delete"):
                self.lambda_.delete_function(FunctionName=name)
        for name in stage_roles(self.iam, self.stage):
            if name not in in_use and self.record("role", name, "delete"):
                delete_role(self.iam, name)
        groups_in_use = {self.stage.log_group(name) for name in self.routes.functions}
        for group in stage_log_groups(self.logs, self.stage,
                                      function_log_group_prefix(self.stage)):
            if group not in groups_in_use and self.record("log group", group, "delete"):
                self.logs.delete_log_group(logGroupName=group)

    # -- the stack file --------------------------------------------------------------------

    def stack_file(self, api_id: str) -> StackFile:
        stage = self.stage
        functions = list(self.routes.functions)
        authorizer = self.routes.connect_authorizer()
        return StackFile(
            kind="aws",
            websocket_url=stage.websocket_url(api_id),
            management_endpoint=stage.management_endpoint(api_id),
            region=stage.region,
            tables=stage.tables.as_dict(),
            api_id=api_id,
            stage=stage.name,
            authorizer=authorizer.name if authorizer else None,
            fanout=self.options.fanout,
            arns={
                "tables": {t: stage.table_arn(t) for t in stage.tables.as_dict().values()},
                "functions": {f: stage.function_arn(f) for f in functions},
                "roles": {f: stage.role_arn(f) for f in functions},
                "connections": stage.connections_arn(api_id),
            },
        )


def deploy(session, options: DeployOptions, *, apply: bool = True
           ) -> tuple[list[Change], StackFile | None]:
    deployment = Deployment(session, options, apply=apply)
    stack = deployment.run()
    return deployment.changes, stack


def destroy(session, stage_name: str, region: str) -> list[Change]:
    """Delete every resource tagged with this stage, and wait until the tables are gone."""
    recorder = CallRecorder(session)
    changes: list[Change] = []
    with aws_errors_in_one_line(recorder):
        def client(name: str):
            return session.client(name, region_name=region)
        dynamodb, iam, lambda_, logs, apis = (client(n) for n in (
            "dynamodb", "iam", "lambda", "logs", "apigatewayv2"))
        account = client("sts").get_caller_identity()["Account"]
        stage = Stage(stage_name, region, account)

        def deleted(kind: str, name: str) -> None:
            changes.append(Change(kind, name, "delete"))

        for page in _pages(apis.get_apis):
            for api in page.get("Items", []):
                if owned_by(stage, api.get("Tags", {})):
                    apis.delete_api(ApiId=api["ApiId"])
                    deleted("API", f"{api['Name']} ({api['ApiId']})")
        for name in stage_functions(lambda_, stage):
            lambda_.delete_function(FunctionName=name)
            deleted("function", name)
        for group_prefix in (function_log_group_prefix(stage), stage.access_log_group):
            for group in stage_log_groups(logs, stage, group_prefix):
                logs.delete_log_group(logGroupName=group)
                deleted("log group", group)
        for name in stage_roles(iam, stage):
            delete_role(iam, name)
            deleted("role", name)
        tables = []
        for page in dynamodb.get_paginator("list_tables").paginate():
            for table in page["TableNames"]:
                if not table.startswith(resource_prefix(stage)):
                    continue
                arn = stage.table_arn(table)
                tags = dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
                if owned_by(stage, {t["Key"]: t["Value"] for t in tags}):
                    dynamodb.delete_table(TableName=table)
                    deleted("table", table)
                    tables.append(table)
        waiter = dynamodb.get_waiter("table_not_exists")
        for table in tables:
            waiter.wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    return changes


# -- what a stage owns, for deploy and destroy alike: named with its prefix AND tagged
# with it (stage dev-2's names start with dev's prefix too) -----------------------------

def resource_prefix(stage: Stage) -> str:
    """What the names of the stage's functions, roles and tables start with."""
    return stage.prefix + "-"


def function_log_group_prefix(stage: Stage) -> str:
    """Where Lambda writes the stage's functions' output (/aws/lambda/<function name>)."""
    return f"/aws/lambda/{resource_prefix(stage)}"


def owned_by(stage: Stage, tags: dict[str, str]) -> bool:
    return tags.get(TAG_KEY) == stage.name


def stage_functions(lambda_, stage: Stage) -> list[str]:
    """The names of the stage's Lambda functions."""
    return [function["FunctionName"]
            for page in lambda_.get_paginator("list_functions").paginate()
            for function in page["Functions"]
            if function["FunctionName"].startswith(resource_prefix(stage))
            and owned_by(stage, lambda_.list_tags(Resource=function["FunctionArn"])["Tags"])]


def stage_roles(iam, stage: Stage) -> list[str]:
    """The names of the stage's IAM roles (all under ROLE_PATH)."""
    return [role["RoleName"]
            for page in iam.get_paginator("list_roles").paginate(PathPrefix=ROLE_PATH)
            for role in page["Roles"]
            if role["RoleName"].startswith(resource_prefix(stage))
            and owned_by(stage, {tag["Key"]: tag["Value"] for tag in
                                 iam.list_role_tags(RoleName=role["RoleName"])["Tags"]})]


def stage_log_groups(logs, stage: Stage, group_prefix: str) -> list[str]:
    """The names of the stage's log groups whose names start with ``group_prefix``."""
    return [group["logGroupName"]
            for page in logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix=group_prefix)
            for group in page["logGroups"]
            if owned_by(stage, logs.list_tags_for_resource(
                resourceArn=group["arn"].removesuffix(":*")).get("tags", {}))]


def delete_role(iam, name: str) -> None:
    """IAM deletes a role only once its inline policies are gone (DeleteConflict)."""
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


def route_authorization(route: dict) -> dict[str, str | None]:
    """A route's authorization as CreateRoute and UpdateRoute take it. An AuthorizerId
    counts with CUSTOM only: UpdateRoute to NONE detaches the authorizer whether or not
    the id still shows."""
    kind = route.get("AuthorizationType", "NONE")
    return ({"AuthorizationType": kind, "AuthorizerId": route.get("AuthorizerId")}
            if kind == "CUSTOM" else {"AuthorizationType": kind})


def _pages(call, **kwargs):
    """Pages of an API Gateway v2 list call, which has no boto3 paginator."""
    token = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield page
        token = page.get("NextToken")
        if not token:
            return
