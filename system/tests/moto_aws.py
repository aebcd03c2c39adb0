"""An AWS account in-process, for deploy's tests: moto's ``mock_aws`` and a boto3 session
on it (``aws``), with fake credentials and no shared config. A pytest plugin (the root
conftest loads it).

moto's apigatewayv2 has no deployments: CreateDeployment answers 404 "Not yet implemented"
and a stage never shows a DeploymentId. The session answers CreateDeployment itself,
after botocore has checked the request against the API's model, and adds the
DeploymentId AWS would show to GetStage. Nor can it list an API's authorizers
(GetAuthorizers is "not implemented", though it creates, updates and deletes them): the
session answers it from moto's own authorizers, read through botocore's parser as AWS's
answer would be.
"""

from __future__ import annotations

import json

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser
from moto import mock_aws
from moto.apigatewayv2.models import apigatewayv2_backends

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
# Every test's session reads the AWS API models through this one loader, which keeps what
# it has read: a session of its own would parse each model's JSON again (a second per test).
MODELS = botocore.loaders.create_loader()


class MotoGaps:
    """What moto's apigatewayv2 lacks, answered as AWS would."""

    def __init__(self, session) -> None:
        self.deployments: dict[str, dict] = {}  # stage -> the CreateDeployment request
        session.events.register("before-parameter-build.apigatewayv2.CreateDeployment",
                                self._remember)
        session.events.register("before-call.apigatewayv2.CreateDeployment", self._deployed)
        session.events.register("after-call.apigatewayv2.GetStage", self._with_deployment)
        session.events.register("before-parameter-build.apigatewayv2.GetAuthorizers",
                                self._listing_api)
        session.events.register("before-call.apigatewayv2.GetAuthorizers", self._authorizers)

    def _remember(self, params, **_) -> None:
        self.deployments[params["StageName"]] = dict(params)

    def _deployed(self, **_):
        return AWSResponse(None, 201, {}, None), {"DeploymentId": "dep1",
                                                  "DeploymentStatus": "DEPLOYED"}

    def _with_deployment(self, parsed, **_) -> None:
        if parsed.get("StageName") in self.deployments:
            parsed["DeploymentId"] = "dep1"

    @staticmethod
    def _listing_api(params, context, **_) -> None:
        context["api_id"] = params["ApiId"]  # the call's context reaches before-call

    @staticmethod
    def _authorizers(model, context, **_):
        api = apigatewayv2_backends[ACCOUNT][REGION].get_api(context["api_id"])
        body = json.dumps({"items": [a.to_json() for a in api.authorizers.values()]})
        parsed = create_parser("rest-json").parse(
            {"status_code": 200, "headers": {}, "body": body.encode()}, model.output_shape)
        return AWSResponse(None, 200, {}, None), parsed


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        core = botocore.session.get_session()
        core.register_component("data_loader", MODELS)
        session = boto3.Session(botocore_session=core, region_name=REGION)
        session.gaps = MotoGaps(session)
        yield session
