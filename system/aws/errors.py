"""What goes wrong talking to AWS, said in one line: no credentials, credentials refused,
a missing permission (naming the IAM action), anything else with its operation and code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                 "UnauthorizedAccess", "AuthorizationError"}
CREDENTIALS_REFUSED = {"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
                       "ExpiredTokenException", "SignatureDoesNotMatch"}
# "User: arn:aws:iam::1:user/x is not authorized to perform: dynamodb:CreateTable on ..."
_DENIED_ACTION = re.compile(r"not authorized to perform: ([\w-]+:[\w*-]+)")
# IAM action prefixes where they differ from boto3's service names; API Gateway's
# management calls are authorised by HTTP method (apigateway:GET, apigateway:POST, ...).
_IAM_PREFIX = {"apigatewayv2": "apigateway", "apigateway": "apigateway"}
POLICY_HINT = "'chat-harness deploy-policy' prints the policy a deploying user needs"


class AwsError(Exception):
    """An AWS failure a user can act on, as one line."""


def iam_action(service: str, operation_model) -> str:
    """The IAM action that authorises a boto3 call, e.g. ('lambda', CreateFunction) ->
    lambda:CreateFunction; ('apigatewayv2', CreateApi) -> apigateway:POST."""
    prefix = _IAM_PREFIX.get(service, service)
    if prefix == "apigateway":
        return f"apigateway:{operation_model.http['method']}"
    return f"{prefix}:{operation_model.name}"


class CallRecorder:
    """Keeps the IAM action of the last call a session made, to name it when AWS's
    AccessDenied message does not."""

    def __init__(self, session) -> None:
        self.last_action: str | None = None
        session.events.register("before-parameter-build", self._record)

    def _record(self, model, **_) -> None:
        self.last_action = iam_action(model.service_model.service_name, model)


@contextmanager
def aws_errors_in_one_line(recorder: CallRecorder) -> Iterator[None]:
    try:
        yield
    except NoCredentialsError:
        raise AwsError("no AWS credentials found: run 'aws configure', or set AWS_PROFILE "
                       "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from None
    except NoRegionError:
        raise AwsError("no AWS region: pass --region or set AWS_DEFAULT_REGION") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in ACCESS_DENIED:
            found = _DENIED_ACTION.search(message)
            action = found[1] if found else recorder.last_action
            raise AwsError(f"missing permission {action}: {POLICY_HINT}") from None
        if code in CREDENTIALS_REFUSED:
            raise AwsError(f"AWS refused the credentials ({code}): renew them or choose "
                           f"another AWS_PROFILE") from None
        raise AwsError(f"{error.operation_name} failed: {code}: {message}") from None
    except BotoCoreError as error:
        raise AwsError(f"AWS call failed: {error}") from None
