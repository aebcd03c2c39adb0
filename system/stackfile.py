"""The stack file: where a chat stack is and how to reach it, local or in AWS.

One JSON format written by the local stack and by ``chat-harness deploy`` (kind
``local`` or ``aws``), read by the contract tests, load runs and reports.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from system.provision import TableNames

REQUIRED = ("websocket_url", "management_endpoint", "region", "tables")
PRIVATE_MODE = 0o600


class StackFileError(ValueError):
    pass


@dataclass(frozen=True)
class StackFile:
    websocket_url: str
    management_endpoint: str
    region: str
    tables: dict[str, str]
    kind: str = "aws"
    dynamodb_endpoint: str | None = None  # None: the region's own endpoint
    stage: str | None = None
    api_id: str | None = None
    arns: dict | None = None  # deployed stacks: tables, functions, roles, @connections
    ca_bundle: str | None = None
    credentials: dict[str, str] | None = None
    dynamodb_backend: str | None = None
    capacity_fidelity: str | None = None
    web_client_url: str | None = None
    logs_dir: str | None = None
    metrics_file: str | None = None
    control_endpoint: str | None = None  # local stacks only: fault injection
    control_token: str | None = None  # the control endpoint's 'Authorization: Bearer' token
    aws_latency: str | None = None  # local stacks: the date of the AWS latency model, if on
    lambda_endpoint: str | None = None  # local stacks: the Lambda Invoke API
    authorizer: str | None = None  # the authorizer on $connect, by its routes-file name
    fanout: str | None = None  # FANOUT_STRATEGY set for every function; None: the routes file's
    extra: dict = field(default_factory=dict)

    @property
    def table_names(self) -> TableNames:
        return TableNames(**self.tables)

    def write(self, path: Path) -> None:
        """Whole or not at all (a temporary file renamed over ``path``), readable by its
        owner only (mode 0600, from its creation on): it holds credentials and the control
        token."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.unlink(missing_ok=True)  # a leftover: its mode, and whoever has it open
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        os.fchmod(descriptor, PRIVATE_MODE)  # exactly, whatever the umask
        with open(descriptor, "w") as stream:
            stream.write(json.dumps({**document, **self.extra}, indent=2) + "\n")
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path) -> StackFile:
        try:
            document = json.loads(Path(path).read_text())
        except OSError as error:
            raise StackFileError(f"cannot read stack file {path}: {error.strerror}") from None
        except ValueError as error:
            raise StackFileError(f"stack file {path} is not JSON: {error}") from None
        missing = [key for key in REQUIRED if key not in document]
        if missing:
            raise StackFileError(f"stack file {path} lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: v for k, v in document.items() if k in known},
                   extra={k: v for k, v in document.items() if k not in known})

    def _session_args(self) -> dict:
        return dict(self.credentials or {}, region_name=self.region)

    def dynamodb_client(self):
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.dynamodb_endpoint,
                            **self._session_args())

    def lambda_client(self, **config):
        """A Lambda client for the stack's functions (local: its Invoke API; AWS: the
        region's, where the stack's functions have the stage's names)."""
        import boto3
        from botocore.config import Config

        return boto3.client("lambda", endpoint_url=self.lambda_endpoint, config=Config(**config),
                            **self._session_args())

    def management_client(self, **config):
        import boto3
        from botocore.config import Config

        return boto3.client("apigatewaymanagementapi", endpoint_url=self.management_endpoint,
                            verify=self.ca_bundle or True, config=Config(**config),
                            **self._session_args())
