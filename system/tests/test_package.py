"""Deployment packages: what the handler imports from its code folder, nothing else, the
same bytes every build, and a clear refusal of imports Lambda cannot meet."""

from __future__ import annotations

import pytest

from system.aws.package import PackagingError, package_function
from system.routes import DEFAULT_ROUTES_FILE, FunctionSpec, load_routes

CHAT = load_routes(DEFAULT_ROUTES_FILE).functions


def test_a_zip_holds_what_its_handler_imports_and_nothing_else():
    assert package_function(CHAT["WhoAmIHandler"]).files == (
        "system/__init__.py", "system/apigateway_quotas.py", "system/dynamodb_capacity.py",
        "system/fanout_strategies.py", "system/handlers/__init__.py", "system/handlers/chat.py", "system/handlers/frames.py",
        "system/handlers/whoami.py")


def test_the_same_code_gives_the_same_zip():
    first, second = (package_function(CHAT["SendMessageHandler"]) for _ in range(2))
    assert first.zip_bytes == second.zip_bytes and first.code_sha256 == second.code_sha256


def test_an_import_the_lambda_runtime_lacks_is_refused(tmp_path):
    (tmp_path / "handler.py").write_text("import boto3\nimport json\nimport requests\n"
                                         "def lambda_handler(event, context):\n    pass\n")
    spec = FunctionSpec(name="Needy", handler="handler.lambda_handler", code_dir=tmp_path)
    with pytest.raises(PackagingError, match="^Needy imports requests, which the Lambda "
                                             "runtime lacks: copy it into the code folder"):
        package_function(spec)


def test_a_handler_missing_from_its_code_folder_is_refused(tmp_path):
    spec = FunctionSpec(name="Lost", handler="nowhere.lambda_handler", code_dir=tmp_path)
    with pytest.raises(PackagingError, match="handler module 'nowhere' is not in"):
        package_function(spec)
