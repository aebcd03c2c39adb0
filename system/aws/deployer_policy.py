"""The IAM policy a user needs to run ``chat-harness deploy`` and ``destroy``
(``chat-harness deploy-policy`` prints it).

Each statement is limited to the names deploy gives (``chat-harness-*``, roles under
the ``/chat-harness/`` path); list calls, which IAM cannot narrow to a name, get ``*``.
A test records every call deploy and destroy make against moto and checks that each
one's action is here.
"""

from __future__ import annotations

from system.aws.stage import NAME_PREFIX, POLICY_VERSION, ROLE_PATH


def deployer_policy(region: str = "*", account: str = "*") -> dict:
    names = f"{NAME_PREFIX}*"
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "Tables", "Effect": "Allow",
         "Action": [f"dynamodb:{a}" for a in (
             "CreateTable", "DeleteTable", "DescribeTable", "UpdateTable", "DescribeTimeToLive",
             "UpdateTimeToLive", "ListTagsOfResource", "TagResource")],
         "Resource": f"arn:aws:dynamodb:{region}:{account}:table/{names}"},
        {"Sid": "Functions", "Effect": "Allow",
         "Action": [f"lambda:{a}" for a in (
             "CreateFunction", "DeleteFunction", "GetFunction", "GetFunctionConfiguration",
             "UpdateFunctionCode", "UpdateFunctionConfiguration", "AddPermission",
             "RemovePermission", "GetPolicy", "ListTags", "TagResource",
             "GetFunctionEventInvokeConfig", "PutFunctionEventInvokeConfig")],
         "Resource": f"arn:aws:lambda:{region}:{account}:function:{names}"},
        {"Sid": "Roles", "Effect": "Allow",
         "Action": [f"iam:{a}" for a in (
             "CreateRole", "DeleteRole", "GetRole", "TagRole", "ListRoleTags", "PutRolePolicy",
             "GetRolePolicy", "DeleteRolePolicy", "ListRolePolicies")],
         "Resource": f"arn:aws:iam::{account}:role{ROLE_PATH}{names}"},
        {"Sid": "PassRolesToLambda", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": f"arn:aws:iam::{account}:role{ROLE_PATH}{names}",
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Sid": "LogGroups", "Effect": "Allow",
         "Action": [f"logs:{a}" for a in (
             "CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy", "ListTagsForResource",
             "TagResource")],
         "Resource": [f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{names}",
                      f"arn:aws:logs:{region}:{account}:log-group:/aws/apigateway/{names}"]},
        {"Sid": "WebSocketApi", "Effect": "Allow",
         "Action": [f"apigateway:{m}" for m in ("GET", "POST", "PATCH", "PUT", "DELETE")],
         "Resource": [f"arn:aws:apigateway:{region}::/apis", f"arn:aws:apigateway:{region}::/apis/*",
                      f"arn:aws:apigateway:{region}::/tags/*"]},
        {"Sid": "AccountLoggingRole", "Effect": "Allow", "Action": "apigateway:GET",
         "Resource": f"arn:aws:apigateway:{region}::/account"},
        {"Sid": "Listing", "Effect": "Allow",
         "Action": ["dynamodb:ListTables", "lambda:ListFunctions", "iam:ListRoles",
                    "logs:DescribeLogGroups"],
         "Resource": "*"},
    ]}


def allowed_actions(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"]
            for action in ([statement["Action"]] if isinstance(statement["Action"], str)
                           else statement["Action"])}
