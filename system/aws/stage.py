"""One deployed stage: the name of every AWS resource ``chat-harness deploy`` makes for it,
their ARNs, the tag that marks them as its own, and the IAM policies they run with.

All pure: names and documents from the stage name, region and account. Everything is
named ``chat-harness-<stage>-...`` and tagged ``chat-harness:stage = <stage>``;
``destroy`` removes exactly what carries that tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from system.provision import TableNames
from system.routes import FunctionSpec

TAG_KEY = "chat-harness:stage"
ROLE_PATH = "/chat-harness/"
NAME_PREFIX = "chat-harness-"
# Lambda function and IAM role names stop at 64 characters: the prefix, the stage and
# the longest function name of a routes file must fit.
_STAGE_NAME = re.compile(r"^[A-Za-z0-9-]{1,24}$")
POLICY_VERSION = "2012-10-17"
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def check_stage_name(name: str) -> str:
    if not _STAGE_NAME.match(name):
        raise ValueError(f"stage name must be 1-24 letters, digits or '-', not {name!r}")
    return name


@dataclass(frozen=True)
class Stage:
    name: str
    region: str
    account: str

    @property
    def prefix(self) -> str:
        return f"{NAME_PREFIX}{self.name}"

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.name}

    @property
    def tables(self) -> TableNames:
        base = TableNames()
        return TableNames(**{role: f"{self.prefix}-{table}"
                             for role, table in base.as_dict().items()})

    @property
    def api_name(self) -> str:
        return self.prefix

    @property
    def access_log_group(self) -> str:
        return f"/aws/apigateway/{self.prefix}"

    def function_name(self, function: str) -> str:
        name = f"{self.prefix}-{function}"
        if len(name) > 64:
            raise ValueError(f"{name} is longer than Lambda's 64 characters: "
                             f"shorten the stage or the function name")
        return name

    def log_group(self, function: str) -> str:
        """Lambda writes a function's output to /aws/lambda/<function name>."""
        return f"/aws/lambda/{self.function_name(function)}"

    def table_arn(self, table: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{table}"

    def function_arn(self, function: str) -> str:
        return (f"arn:aws:lambda:{self.region}:{self.account}:function:"
                f"{self.function_name(function)}")

    def role_arn(self, function: str) -> str:
        return f"arn:aws:iam::{self.account}:role{ROLE_PATH}{self.function_name(function)}"

    def log_group_arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"

    def connections_arn(self, api_id: str) -> str:
        """Every @connections call (POST, GET, DELETE) on this API's stage:
        arn:aws:execute-api:region:account:api-id/stage/METHOD/@connections/{id}."""
        return (f"arn:aws:execute-api:{self.region}:{self.account}:{api_id}/{self.name}"
                f"/*/@connections/*")

    def invoke_source_arn(self, api_id: str) -> str:
        """What may invoke the functions: any route of this API."""
        return f"arn:aws:execute-api:{self.region}:{self.account}:{api_id}/*"

    def authorizer_source_arn(self, api_id: str, authorizer_id: str) -> str:
        """What may invoke an authorizer's function: that authorizer of this API."""
        return (f"arn:aws:execute-api:{self.region}:{self.account}:{api_id}/authorizers/"
                f"{authorizer_id}")

    def invocation_uri(self, function: str) -> str:
        """How API Gateway names a Lambda function it invokes: an integration's URI and a
        Lambda authorizer's alike."""
        return (f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
                f"{self.function_arn(function)}/invocations")

    def websocket_url(self, api_id: str) -> str:
        return f"wss://{api_id}.execute-api.{self.region}.amazonaws.com/{self.name}"

    def management_endpoint(self, api_id: str) -> str:
        return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{self.name}"

    def function_policy(self, spec: FunctionSpec, api_id: str, *,
                        posts_to_connections: bool) -> dict:
        """Least privilege for one function: the DynamoDB actions its routes-file entry
        names, each on its own table; @connections on this API's stage where it posts to
        connections (every chat route's function and what they invoke; an authorizer's
        only answers API Gateway); invoking exactly the functions its ``invokes`` names;
        writing to its own log group."""
        tables = self.tables.as_dict()
        statements = [
            {"Sid": f"Table{index}", "Effect": "Allow",
             "Action": sorted(f"dynamodb:{action}" for action in actions),
             "Resource": self.table_arn(tables[role])}
            for index, (role, actions) in enumerate(sorted(spec.tables.items()))
        ]
        if posts_to_connections:
            statements.append({"Sid": "Connections", "Effect": "Allow",
                               "Action": "execute-api:ManageConnections",
                               "Resource": self.connections_arn(api_id)})
        if spec.invokes:
            statements.append({"Sid": "Invoke", "Effect": "Allow",
                               "Action": "lambda:InvokeFunction",
                               "Resource": sorted({self.function_arn(called)
                                                   for called in spec.invokes.values()})})
        statements.append({"Sid": "Logs", "Effect": "Allow", "Action": list(LOG_ACTIONS),
                           "Resource": self.log_group_arn(self.log_group(spec.name)) + ":*"})
        return {"Version": POLICY_VERSION, "Statement": statements}


LAMBDA_TRUST_POLICY = {
    "Version": POLICY_VERSION,
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
