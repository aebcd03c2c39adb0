"""An AWS account in-process, for deploy's tests: moto's ``mock_aws`` and a boto3 session
on it (``aws``), with fake credentials and no shared config. A pytest plugin (the root
conftest loads it).

moto's apigatewayv2 has no deployments: CreateDeployment answers 404 "Not yet implemented"
and a stage never shows a DeploymentId. The session answers CreateDeployment itself,
after botocore has checked the request against the API's model, and adds the
DeploymentId AWS would show to GetStage.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's


class MotoGaps:
    """What moto's apigatewayv2 lacks, answered as AWS would."""

    def __init__(self, session) -> None:
        self.deployments: dict[str, dict] = {}  # stage -> the CreateDeployment request
        session.events.register("before-parameter-build.apigatewayv2.CreateDeployment",
                                self._remember)
        session.events.register("before-call.apigatewayv2.CreateDeployment", self._deployed)
        session.events.register("after-call.apigatewayv2.GetStage", self._with_deployment)

    def _remember(self, params, **_) -> None:
        self.deployments[params["StageName"]] = dict(params)

    def _deployed(self, **_):
        return AWSResponse(None, 201, {}, None), {"DeploymentId": "dep1",
                                                  "DeploymentStatus": "DEPLOYED"}

    def _with_deployment(self, parsed, **_) -> None:
        if parsed.get("StageName") in self.deployments:
            parsed["DeploymentId"] = "dep1"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.gaps = MotoGaps(session)
        yield session
