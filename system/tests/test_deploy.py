"""chat-harness deploy and destroy against moto's AWS control plane (the ``aws`` fixture,
system/tests/moto_aws.py); ``test_stage_requests`` checks with botocore's Stubber the
requests moto cannot take (CreateDeployment, UpdateStage)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from system.aws.deploy import (
    AUTHORIZER_PERMISSION_STATEMENT_ID,
    PERMISSION_STATEMENT_ID,
    RUNTIME,
    Deployment,
    DeployOptions,
    Throttling,
    deploy,
    destroy,
)
from system.aws.deployer_policy import allowed_actions, deployer_policy
from system.aws.errors import AwsError, iam_action
from system.aws.stage import LAMBDA_TRUST_POLICY, ROLE_PATH, TAG_KEY, Stage
from system.provision import Capacity
from system.routes import (
    DEFAULT_ROUTES_FILE,
    RouteConfigError,
    load_routes,
    with_route_response,
    write_routes_variant,
)
from system.tests.moto_aws import ACCOUNT, REGION

# A minute and more of moto's AWS: collected first (see conftest.py).
pytestmark = pytest.mark.long_file


@pytest.fixture
def two_way_routes(tmp_path) -> Path:
    """The chat's routes with sendmessage two-way, so a route response is made."""
    return write_routes_variant(tmp_path / "routes.toml", with_route_response("sendmessage"))


@pytest.fixture
def jwt_secret(monkeypatch) -> str:
    """The chat's JWT authorizer's key, in the environment deploy runs in."""
    monkeypatch.setenv("JWT_SECRET", "test-signing-key")
    return "test-signing-key"


def options(stage: str = "dev", **kwargs) -> DeployOptions:
    return DeployOptions(stage=stage, region=REGION, **kwargs)


def tagged_resources(session, stage: str) -> list[str]:
    """Everything in the account that carries this stage's tag, across the services
    deploy uses."""
    found = []
    dynamodb = session.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
        if {"Key": TAG_KEY, "Value": stage} in dynamodb.list_tags_of_resource(
                ResourceArn=arn).get("Tags", []):
            found.append(f"table {table}")
    lambda_ = session.client("lambda")
    for function in lambda_.list_functions()["Functions"]:
        if lambda_.list_tags(Resource=function["FunctionArn"])["Tags"].get(TAG_KEY) == stage:
            found.append(f"function {function['FunctionName']}")
    iam = session.client("iam")
    for role in iam.list_roles()["Roles"]:
        if {"Key": TAG_KEY, "Value": stage} in iam.list_role_tags(RoleName=role["RoleName"])[
                "Tags"]:
            found.append(f"role {role['RoleName']}")
    logs = session.client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        arn = group["arn"].removesuffix(":*")
        if logs.list_tags_for_resource(resourceArn=arn).get("tags", {}).get(TAG_KEY) == stage:
            found.append(f"log group {group['logGroupName']}")
    for api in session.client("apigatewayv2").get_apis()["Items"]:
        if api.get("Tags", {}).get(TAG_KEY) == stage:
            found.append(f"API {api['Name']}")
    return found


def functions_roles_and_log_groups(session) -> set[str]:
    """Every Lambda function, IAM role and log group in the account, tagged or not."""
    return ({f"function {f['FunctionName']}"
             for f in session.client("lambda").list_functions()["Functions"]}
            | {f"role {r['RoleName']}" for r in session.client("iam").list_roles()["Roles"]}
            | {f"log group {g['logGroupName']}"
               for g in session.client("logs").describe_log_groups()["logGroups"]})


def deleted_with_its_role_and_log_group(function: str) -> list[str]:
    """The change lines of deploy deleting a function the routes file no longer uses."""
    return [f"delete    function        {function}",
            f"delete    role            {function}",
            f"delete    log group       /aws/lambda/{function}"]


def without_the_fanout_function(document: dict) -> None:
    """An edit for ``write_routes_variant``: no function invokes the fan-out function,
    so none uses it (fan-out by threads needs none)."""
    for spec in document["functions"].values():
        spec.pop("invokes", None)


def test_deploy_builds_each_route_to_its_integration_to_its_function(aws, two_way_routes):
    changes, stack = deploy(aws, options(routes_file=two_way_routes))
    routes = load_routes(two_way_routes).in_use()
    stage = Stage("dev", REGION, ACCOUNT)
    assert {c.action for c in changes} == {"create"}

    dynamodb = aws.client("dynamodb")
    for table in stage.tables.as_dict().values():
        described = dynamodb.describe_table(TableName=table)["Table"]
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stage.tables.active_connections)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"

    apis = aws.client("apigatewayv2")
    [api] = apis.get_apis()["Items"]
    assert (api["ProtocolType"], api["RouteSelectionExpression"]) == (
        "WEBSOCKET", routes.selection_expression)
    integrations = {i["IntegrationId"]: i for i in apis.get_integrations(ApiId=api["ApiId"])["Items"]}
    lambda_ = aws.client("lambda")
    served = {}
    for route in apis.get_routes(ApiId=api["ApiId"])["Items"]:
        integration = integrations[route["Target"].removeprefix("integrations/")]
        assert integration["IntegrationType"] == "AWS_PROXY"
        function_arn = integration["IntegrationUri"].split("/functions/")[1].removesuffix(
            "/invocations")
        served[route["RouteKey"]] = function_arn.rsplit(":", 1)[1]
        two_way = routes.routes[route["RouteKey"]].route_response
        assert (route.get("RouteResponseSelectionExpression") == "$default") is two_way
        assert route["AuthorizationType"] == "NONE"
    assert served == {key: stage.function_name(route.function)
                      for key, route in routes.routes.items()}

    for name, spec in routes.functions.items():
        configuration = lambda_.get_function(FunctionName=stage.function_name(name))[
            "Configuration"]
        assert configuration["Runtime"] == RUNTIME and configuration["Handler"] == spec.handler
        assert configuration["Role"] == stage.role_arn(name)
        assert configuration["Environment"]["Variables"] == {
            **stage.tables.handler_environment(),
            **{variable: stage.function_name(called) for variable, called in spec.invokes.items()}}
        if name not in served.values() and stage.function_name(name) not in served.values():
            continue  # invoked by the other functions only (the fan-out function)
        [permission] = json.loads(lambda_.get_policy(
            FunctionName=stage.function_name(name))["Policy"])["Statement"]
        assert permission["Sid"] == PERMISSION_STATEMENT_ID
        assert permission["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert permission["Condition"]["ArnLike"]["AWS:SourceArn"] == (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api['ApiId']}/*")

    deployed_stage = apis.get_stage(ApiId=api["ApiId"], StageName="dev")
    assert deployed_stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == Throttling().rate
    assert aws.gaps.deployments["dev"]["ApiId"] == api["ApiId"]
    assert stack.kind == "aws" and stack.api_id == api["ApiId"]
    assert stack.websocket_url == f"wss://{api['ApiId']}.execute-api.{REGION}.amazonaws.com/dev"


def test_each_role_may_touch_only_its_own_tables_and_this_apis_connections(aws):
    _, stack = deploy(aws, options())
    routes = load_routes(DEFAULT_ROUTES_FILE).in_use()
    stage = Stage("dev", REGION, ACCOUNT)
    iam = aws.client("iam")
    for name, spec in routes.functions.items():
        role = stage.function_name(name)
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        granted: dict[str, set[str]] = {}
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and "*" != statement["Resource"]
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    granted.setdefault(resource, set()).add(action)
        tables = stage.tables.as_dict()
        assert granted == {
            **{stage.table_arn(tables[role_name]): {f"dynamodb:{a}" for a in actions}
               for role_name, actions in spec.tables.items()},
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{stack.api_id}/dev/*/@connections/*":
                {"execute-api:ManageConnections"},
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{role}:*":
                {"logs:CreateLogStream", "logs:PutLogEvents"},
            **{stage.function_arn(called): {"lambda:InvokeFunction"}
               for called in spec.invokes.values()},
        }


def test_batched_fanout_deploys_its_fanout_function_never_retried_and_the_right_to_invoke_it(
        aws):
    _, stack = deploy(aws, options(fanout="batched"))
    assert stack.fanout == "batched"  # a run records it, and verify replays with it
    stage = Stage("dev", REGION, ACCOUNT)
    lambda_, iam = aws.client("lambda"), aws.client("iam")
    fanout = stage.function_name("FanoutHandler")
    assert lambda_.get_function_event_invoke_config(FunctionName=fanout)[
        "MaximumRetryAttempts"] == 0
    for name in ("SendMessageHandler", "ConnectHandler", "DisconnectHandler"):
        variables = lambda_.get_function(FunctionName=stage.function_name(name))[
            "Configuration"]["Environment"]["Variables"]
        assert variables["FANOUT_STRATEGY"] == "batched"
        assert variables["FANOUT_FUNCTION"] == fanout
        role = stage.function_name(name)
        [policy] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        statements = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"][
            "Statement"]
        assert [s["Resource"] for s in statements if s["Action"] == "lambda:InvokeFunction"] == [
            [stage.function_arn("FanoutHandler")]]
    changes, _ = deploy(aws, options(fanout="batched"))
    assert [c.line() for c in changes if c.action != "unchanged"] == []


def test_an_attached_authorizer_guards_connect_alone_and_runs_with_its_secret(aws, jwt_secret):
    changes, stack = deploy(aws, options(authorizer="jwt"))
    stage = Stage("dev", REGION, ACCOUNT)
    authorizer_function = stage.function_name("JwtAuthorizer")
    apis, lambda_, iam = (aws.client(n) for n in ("apigatewayv2", "lambda", "iam"))

    [authorizer] = apis.get_authorizers(ApiId=stack.api_id)["Items"]
    assert (authorizer["Name"], authorizer["AuthorizerType"], authorizer["IdentitySource"]) == (
        "jwt", "REQUEST", ["route.request.querystring.Authorization"])
    assert authorizer["AuthorizerUri"] == (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{authorizer_function}/invocations")
    guarded = {route["RouteKey"]: (route["AuthorizationType"], route.get("AuthorizerId"))
               for route in apis.get_routes(ApiId=stack.api_id)["Items"]}
    assert guarded.pop("$connect") == ("CUSTOM", authorizer["AuthorizerId"])
    assert {kind for kind, _ in guarded.values()} == {"NONE"}

    [permission] = json.loads(lambda_.get_policy(FunctionName=authorizer_function)["Policy"])[
        "Statement"]
    assert permission["Sid"] == AUTHORIZER_PERMISSION_STATEMENT_ID
    assert permission["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert permission["Condition"]["ArnLike"]["AWS:SourceArn"] == (
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{stack.api_id}/authorizers/"
        f"{authorizer['AuthorizerId']}")
    configuration = lambda_.get_function(FunctionName=authorizer_function)["Configuration"]
    assert configuration["Environment"]["Variables"]["JWT_SECRET"] == jwt_secret
    [policy] = iam.list_role_policies(RoleName=authorizer_function)["PolicyNames"]
    statements = iam.get_role_policy(RoleName=authorizer_function, PolicyName=policy)[
        "PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["Logs"]  # no tables, no @connections
    assert ("create", f"/aws/lambda/{authorizer_function}") in {
        (c.action, c.name) for c in changes if c.kind == "log group"}
    assert stack.authorizer == "jwt"

    again, _ = deploy(aws, options(authorizer="jwt"))
    assert [c.line() for c in again if c.action != "unchanged"] == []
    assert {"authorizer", "permission"} <= {c.kind for c in again}
    destroy(aws, "dev", REGION)
    assert tagged_resources(aws, "dev") == []


def test_without_the_authorizer_option_nothing_of_it_is_built_and_an_attached_one_goes(
        aws, jwt_secret):
    _, stack = deploy(aws, options())
    apis, lambda_ = aws.client("apigatewayv2"), aws.client("lambda")
    assert apis.get_authorizers(ApiId=stack.api_id)["Items"] == []
    assert "chat-harness-dev-JwtAuthorizer" not in {
        f["FunctionName"] for f in lambda_.list_functions()["Functions"]}

    deploy(aws, options(authorizer="jwt"))
    changes, _ = deploy(aws, options())

    assert [c.line() for c in changes if c.action != "unchanged"] == [
        "update    route           $connect  (no authorizer)",
        "delete    authorizer      jwt",
        "create    deployment      dev",
        *deleted_with_its_role_and_log_group("chat-harness-dev-JwtAuthorizer")]
    assert apis.get_authorizers(ApiId=stack.api_id)["Items"] == []
    assert {r["AuthorizationType"] for r in apis.get_routes(ApiId=stack.api_id)["Items"]} == {
        "NONE"}
    assert not {"function chat-harness-dev-JwtAuthorizer", "role chat-harness-dev-JwtAuthorizer",
                "log group /aws/lambda/chat-harness-dev-JwtAuthorizer"
                } & functions_roles_and_log_groups(aws)
    again, _ = deploy(aws, options())
    assert [c.line() for c in again if c.action != "unchanged"] == []


def test_plan_lists_the_unused_authorizer_function_and_deletes_nothing(aws, jwt_secret):
    _, stack = deploy(aws, options(authorizer="jwt"))
    before = functions_roles_and_log_groups(aws)

    plan, _ = deploy(aws, options(), apply=False)

    assert [c.line() for c in plan if c.action == "delete"] == [
        "delete    authorizer      jwt",
        *deleted_with_its_role_and_log_group("chat-harness-dev-JwtAuthorizer")]
    assert functions_roles_and_log_groups(aws) == before
    [authorizer] = aws.client("apigatewayv2").get_authorizers(ApiId=stack.api_id)["Items"]
    assert authorizer["Name"] == "jwt"


def test_a_function_no_longer_invoked_goes_with_its_role_and_log_group(aws, tmp_path):
    deploy(aws, options(fanout="batched"))
    fanout = "chat-harness-dev-FanoutHandler"
    assert {f"function {fanout}", f"role {fanout}", f"log group /aws/lambda/{fanout}"
            } <= functions_roles_and_log_groups(aws)
    threads = options(fanout="threads", routes_file=write_routes_variant(
        tmp_path / "routes.toml", without_the_fanout_function))

    changes, _ = deploy(aws, threads)

    assert [c.line() for c in changes if c.action == "delete"] == (
        deleted_with_its_role_and_log_group(fanout))
    assert not {f"function {fanout}", f"role {fanout}", f"log group /aws/lambda/{fanout}"
                } & functions_roles_and_log_groups(aws)
    again, _ = deploy(aws, threads)
    assert [c.line() for c in again if c.action != "unchanged"] == []


def test_an_unused_function_not_tagged_with_the_stage_is_left_alone(aws, jwt_secret):
    deploy(aws, options(authorizer="jwt"))
    foreign = "chat-harness-dev-Foreign"  # dev's prefix without dev's tag: made otherwise
    iam, lambda_, logs = aws.client("iam"), aws.client("lambda"), aws.client("logs")
    role = iam.create_role(RoleName=foreign, Path=ROLE_PATH,
                           AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    lambda_.create_function(FunctionName=foreign, Runtime=RUNTIME, Role=role["Role"]["Arn"],
                            Handler="index.handler", Code={"ZipFile": b"not run"},
                            Tags={TAG_KEY: "dev-2"})
    logs.create_log_group(logGroupName=f"/aws/lambda/{foreign}")

    changes, _ = deploy(aws, options())

    assert [c.line() for c in changes if c.action == "delete"] == [
        "delete    authorizer      jwt",
        *deleted_with_its_role_and_log_group("chat-harness-dev-JwtAuthorizer")]
    assert {f"function {foreign}", f"role {foreign}", f"log group /aws/lambda/{foreign}"
            } <= functions_roles_and_log_groups(aws)


def test_a_missing_secret_stops_the_deploy_before_anything_changes(aws, monkeypatch):
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(RouteConfigError, match="^JwtAuthorizer needs JWT_SECRET set in the "
                                               "environment chat-harness runs in"):
        deploy(aws, options(authorizer="jwt"))
    assert tagged_resources(aws, "dev") == []
    assert aws.client("dynamodb").list_tables()["TableNames"] == []


def test_a_second_deploy_changes_nothing(aws):
    deploy(aws, options())
    changes, _ = deploy(aws, options())
    assert [c.line() for c in changes if c.action != "unchanged"] == []
    assert {c.kind for c in changes} >= {"table", "API", "role", "function", "permission",
                                         "integration", "route", "stage", "deployment"}


def test_a_code_change_updates_only_that_function(aws, tmp_path):
    code = tmp_path / "code"
    shutil.copytree(Path(DEFAULT_ROUTES_FILE).parent, code / "system",
                    ignore=shutil.ignore_patterns("tests", "local", "__pycache__"))
    routes_file = code / "routes.toml"
    routes_file.write_text((code / "system" / "routes.toml").read_text().replace(
        'handler = "', 'code = "."\nhandler = "'))
    deploy(aws, options(routes_file=routes_file))
    whoami = code / "system" / "handlers" / "whoami.py"
    whoami.write_text(whoami.read_text() + "\n# changed\n")

    plan, _ = deploy(aws, options(routes_file=routes_file), apply=False)
    changes, _ = deploy(aws, options(routes_file=routes_file))

    for run in (plan, changes):
        assert [c.line() for c in run if c.action != "unchanged"] == [
            "update    function        chat-harness-dev-WhoAmIHandler  (code)"]


def test_plan_changes_nothing(aws):
    changes, stack = deploy(aws, options(), apply=False)
    assert stack is None
    assert {c.action for c in changes} == {"create"}
    assert tagged_resources(aws, "dev") == []
    assert aws.client("dynamodb").list_tables()["TableNames"] == []


def test_destroy_removes_every_tagged_resource_and_nothing_else(aws):
    deploy(aws, options("dev"))
    deploy(aws, options("dev-2"))  # its names start like dev's
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(TableName="chat-harness-dev-Other", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    others = tagged_resources(aws, "dev-2")

    changes = destroy(aws, "dev", REGION)

    assert tagged_resources(aws, "dev") == []
    assert {c.action for c in changes} == {"delete"}
    assert len(changes) == len(others)  # the same set of resources, one stage each
    assert tagged_resources(aws, "dev-2") == others
    assert "chat-harness-dev-Other" in dynamodb.list_tables()["TableNames"]


def test_a_stage_made_otherwise_is_refused_before_anything_changes(aws):
    aws.client("dynamodb").create_table(
        TableName="chat-harness-dev-MessageHistory", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "message_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}])
    with pytest.raises(AwsError, match="stage dev exists but was not made by chat-harness "
                                       "deploy .table chat-harness-dev-MessageHistory"):
        deploy(aws, options())
    assert aws.client("apigatewayv2").get_apis()["Items"] == []


def test_provisioned_billing_and_a_capacity_change_update_the_table(aws):
    deploy(aws, options())
    changes, _ = deploy(aws, options(provisioned=True,
                                     capacity={"message_history": Capacity(25, 10)}))
    updated = {c.name: c.detail for c in changes if c.action == "update"}
    assert updated == {"chat-harness-dev-ActiveConnections": "provisioned 5/5",
                       "chat-harness-dev-SessionHistory": "provisioned 5/5",
                       "chat-harness-dev-MessageHistory": "provisioned 25/10"}
    table = aws.client("dynamodb").describe_table(TableName="chat-harness-dev-MessageHistory")
    assert table["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 25


def test_the_deployer_policy_allows_every_call_deploy_and_destroy_make(aws, jwt_secret):
    called: set[str] = set()
    aws.events.register("before-call", lambda model, **_: called.add(
        iam_action(model.service_model.service_name, model)))
    deploy(aws, options(provisioned=True, authorizer="jwt"))
    deploy(aws, options())
    destroy(aws, "dev", REGION)
    called.discard("sts:GetCallerIdentity")  # needs no permission
    assert called - allowed_actions(deployer_policy()) == set()
    assert {"iam:PassRole", "lambda:TagResource", "dynamodb:TagResource"} <= allowed_actions(
        deployer_policy())  # implied by CreateFunction, Tags= on create


def test_a_missing_permission_is_named_in_one_line(aws):
    def denied(**_):
        return AWSResponse(None, 400, {}, None), {"Error": {
            "Code": "AccessDeniedException",
            "Message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                       "lambda:CreateFunction on resource: arn:aws:lambda:us-east-1:"
                       "123456789012:function:chat-harness-dev-ConnectHandler"}}

    aws.events.register("before-call.lambda.CreateFunction", denied)
    with pytest.raises(AwsError) as raised:
        deploy(aws, options())
    assert str(raised.value) == ("missing permission lambda:CreateFunction: 'chat-harness "
                                 "deploy-policy' prints the policy a deploying user needs")


def test_a_denial_without_the_action_in_its_message_names_the_call(aws):
    aws.events.register("before-call.apigatewayv2.CreateApi", lambda **_: (
        AWSResponse(None, 403, {}, None),
        {"Error": {"Code": "AccessDeniedException", "Message": "Forbidden"}}))
    with pytest.raises(AwsError, match="^missing permission apigateway:POST: "):
        deploy(aws, options())


def test_stage_requests(aws):
    """UpdateStage and CreateDeployment, which moto cannot take, as deploy sends them."""
    _, stack = deploy(aws, options())
    deployment = Deployment(aws, options(throttling=Throttling(rate=100, burst=50)), apply=True)
    with Stubber(deployment.apis) as stub:
        stub.add_response("get_stage", {"StageName": "dev", "DeploymentId": "dep1",
                                        "DefaultRouteSettings": {"ThrottlingRateLimit": 10000.0,
                                                                 "ThrottlingBurstLimit": 5000}},
                          {"ApiId": stack.api_id, "StageName": "dev"})
        stub.add_response("update_stage", {}, {
            "ApiId": stack.api_id, "StageName": "dev",
            "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 50}})
        stub.add_response("create_deployment", {"DeploymentId": "dep2"}, {
            "ApiId": stack.api_id, "StageName": "dev", "Description": "chat-harness deploy"})
        deployment.converge_stage(stack.api_id, routes_changed=True)
        stub.assert_no_pending_responses()
    assert [c.action for c in deployment.changes if c.kind in ("stage", "deployment")] == [
        "update", "create"]
