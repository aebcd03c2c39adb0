"""The artifact is what was tested: the zips ``chat-harness deploy`` uploads, unpacked, run
the chat on the local stack, ask DynamoDB only for what their roles allow, and import
where only what the Lambda runtime holds (boto3) is installed: the JWT authorizer's with
the PyJWT its zip brings."""

from __future__ import annotations

import importlib.metadata
import io
import json
import shutil
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

from system.aws.package import RUNTIME_PACKAGES, package_function
from system.local.stack_fixtures import stack_fixture
from system.routes import DEFAULT_ROUTES_FILE, load_routes, write_routes_variant

CHAT = load_routes(DEFAULT_ROUTES_FILE)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """Each function's zip unpacked into a folder of its own, and a routes file (the chat's
    own, but for the code folders) pointing into them."""
    root = tmp_path_factory.mktemp("artifact")
    for name, spec in CHAT.functions.items():
        with zipfile.ZipFile(io.BytesIO(package_function(spec).zip_bytes)) as archive:
            archive.extractall(root / name)

    def code_in_the_zips(document: dict) -> None:
        for name, function in document["functions"].items():
            function["code"] = str(root / name)

    write_routes_variant(root / "routes.toml", code_in_the_zips)
    return root


artifact_stack = stack_fixture(
    lambda request: ["--routes", str(request.getfixturevalue("unpacked") / "routes.toml")],
    scope="module", doc="The chat run from its unpacked deployment zips.")


async def test_the_unpacked_zips_run_the_chat(artifact_stack, clients, unpacked):
    url = artifact_stack.file.websocket_url
    a = await clients(url)
    b = await clients(url)
    a_id, b_id = await a.whoami(), await b.whoami()
    await a.send({"action": "sendmessage", "message": "from the zip"})
    for client in (a, b):
        await client.frame_where(lambda f: f.get("type") == "chat"
                                 and f.get("text") == "from the zip" and f["sender"] == a_id)
    await b.close()
    await a.frame_where(lambda f: f.get("type") == "leave" and f["connection_id"] == b_id)

    # Every DynamoDB call the handlers made is one their routes-file entry declares, so
    # their roles in AWS allow it.
    roles = {table: role for role, table in artifact_stack.file.tables.items()}
    log = Path(artifact_stack.file.logs_dir) / "dynamodb.jsonl"
    used: dict[str, set[tuple[str, str]]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("route"):
            function = CHAT.routes[entry["route"]].function
            used.setdefault(function, set()).update((roles[t], entry["op"])
                                                    for t in entry["tables"])
    assert {"ConnectHandler", "SendMessageHandler", "DisconnectHandler"} <= set(used)
    for function, calls in used.items():
        declared = {(role, action) for role, actions in CHAT.functions[function].tables.items()
                    for action in actions}
        assert calls <= declared, f"{function} called {sorted(calls - declared)}"


def runtime_only_venv(path: Path) -> Path:
    """A virtual environment holding only what the Lambda Python runtime ships: the
    distributions of RUNTIME_PACKAGES, copied from this environment."""
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", where], capture_output=True, text=True,
                               check=True).stdout.strip())
    distributions = importlib.metadata.packages_distributions()
    for package in RUNTIME_PACKAGES:
        for name in distributions.get(package, []):
            for file in importlib.metadata.distribution(name).files or []:
                if ".." in file.parts:
                    continue  # scripts outside site-packages
                target = site / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file.locate(), target)
    return python


def test_each_zip_imports_where_only_boto3_is_installed(unpacked, tmp_path):
    python = runtime_only_venv(tmp_path / "venv")
    environment = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    for absent in ("websockets", "jwt"):  # nothing else is there: a zip brings its own
        outside = subprocess.run([python, "-c", f"import boto3, {absent}"], capture_output=True,
                                 text=True, env=environment, check=False)
        assert f"No module named '{absent}'" in outside.stderr
    for name, spec in CHAT.functions.items():
        module, _, handler = spec.handler.rpartition(".")
        result = subprocess.run(
            [python, "-c", f"import {module}; assert callable({module}.{handler})"],
            capture_output=True, text=True, check=False,
            env={**environment, "PYTHONPATH": str(unpacked / name)})  # as LAMBDA_TASK_ROOT
        assert result.returncode == 0, f"{name}: {result.stderr}"
