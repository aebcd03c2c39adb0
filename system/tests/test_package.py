"""Deployment packages: what the handler imports from its code folder and the pure-Python
distributions it requires, nothing else, the same bytes every build, and a clear refusal
of imports Lambda cannot meet."""

from __future__ import annotations

import importlib.metadata
from dataclasses import replace
from pathlib import Path

import pytest

from system.aws.package import PackagingError, package_function
from system.routes import DEFAULT_ROUTES_FILE, FunctionSpec, load_routes

CHAT = load_routes(DEFAULT_ROUTES_FILE).functions


def test_a_zip_holds_what_its_handler_imports_and_nothing_else():
    assert package_function(CHAT["WhoAmIHandler"]).files == (
        "system/__init__.py", "system/apigateway_quotas.py", "system/dynamodb_capacity.py",
        "system/fanout_strategies.py", "system/handlers/__init__.py", "system/handlers/chat.py", "system/handlers/frames.py",
        "system/handlers/whoami.py")


def test_a_required_distribution_goes_in_as_installed_without_its_optional_imports():
    files = package_function(CHAT["JwtAuthorizer"]).files
    pyjwt = importlib.metadata.distribution("PyJWT")
    installed = {path.as_posix() for path in pyjwt.files
                 if "__pycache__" not in path.parts and ".." not in path.parts}
    assert set(files) == installed | {"system/__init__.py", "system/handlers/__init__.py",
                                      "system/handlers/authorizer.py"}
    assert "jwt/__init__.py" in files and any(f.endswith(".dist-info/METADATA") for f in files)
    assert not any(f.startswith("cryptography/") for f in files)  # PyJWT's optional import


@pytest.mark.parametrize("function", ["SendMessageHandler", "JwtAuthorizer"])
def test_the_same_code_gives_the_same_zip(function):
    first, second = (package_function(CHAT[function]) for _ in range(2))
    assert first.zip_bytes == second.zip_bytes and first.code_sha256 == second.code_sha256


def test_an_import_the_lambda_runtime_lacks_is_refused(tmp_path):
    (tmp_path / "handler.py").write_text("import boto3\nimport json\nimport requests\n"
                                         "def lambda_handler(event, context):\n    pass\n")
    spec = FunctionSpec(name="Needy", handler="handler.lambda_handler", code_dir=tmp_path)
    with pytest.raises(PackagingError, match="^Needy imports requests, which the Lambda "
                                             "runtime lacks: name its distribution in the "
                                             "function's requirements, or copy it into the "
                                             "code folder"):
        package_function(spec)


def install(site: Path, distribution: str, files: dict[str, str],
            requires: tuple[str, ...] = ()) -> None:
    """A distribution as pip leaves it in ``site``: its files and a dist-info whose METADATA
    lists what it requires and whose RECORD lists them."""
    info = f"{distribution}-1.0.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n"
                + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires))
    for name, text in {**files, f"{info}/METADATA": metadata}.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    (site / info / "RECORD").write_text("".join(f"{name},,\n" for name in
                                                [*files, f"{info}/METADATA", f"{info}/RECORD"]))


def handler_importing(code: Path, module: str) -> None:
    code.mkdir()
    (code / "handler.py").write_text(f"import {module}\n"
                                     f"def lambda_handler(event, context):\n    pass\n")


def test_a_required_distribution_satisfies_the_import_it_provides(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": "try:\n    import "
                                            "nowhere_installed\nexcept ImportError:\n    pass\n"})
    monkeypatch.syspath_prepend(tmp_path / "site")
    handler_importing(tmp_path / "code", "tinyparse")
    spec = FunctionSpec(name="Parser", handler="handler.lambda_handler",
                        code_dir=tmp_path / "code", requirements=("tinyparse",))
    assert package_function(spec).files == (
        "handler.py", "tinyparse-1.0.dist-info/METADATA", "tinyparse-1.0.dist-info/RECORD",
        "tinyparse/__init__.py")


def test_a_compiled_distribution_is_refused(tmp_path, monkeypatch):
    install(tmp_path / "site", "fastparse", {
        "fastparse/__init__.py": "", "fastparse/_speedups.cpython-313-x86_64-linux-gnu.so": ""})
    monkeypatch.syspath_prepend(tmp_path / "site")
    handler_importing(tmp_path / "code", "fastparse")
    spec = FunctionSpec(name="Fast", handler="handler.lambda_handler",
                        code_dir=tmp_path / "code", requirements=("fastparse",))
    with pytest.raises(PackagingError, match=r"^Fast requires fastparse, which is not pure "
                                             r"Python \(fastparse/_speedups\.cpython-313"):
        package_function(spec)


def test_a_required_distribution_not_installed_is_refused(tmp_path):
    handler_importing(tmp_path / "code", "json")
    spec = FunctionSpec(name="Hopeful", handler="handler.lambda_handler",
                        code_dir=tmp_path / "code", requirements=("no-such-distribution",))
    with pytest.raises(PackagingError, match="^Hopeful requires no-such-distribution, which is "
                                             "not installed where chat-harness runs: pip "
                                             "install no-such-distribution$"):
        package_function(spec)


def parser(tmp_path: Path, monkeypatch, *requirements: str) -> FunctionSpec:
    """A handler importing tinyparse, the distributions in ``tmp_path / "site"`` on the
    import path, and the function requiring ``requirements`` (tinyparse by default)."""
    monkeypatch.syspath_prepend(tmp_path / "site")
    handler_importing(tmp_path / "code", "tinyparse")
    return FunctionSpec(name="Parser", handler="handler.lambda_handler",
                        code_dir=tmp_path / "code", requirements=requirements or ("tinyparse",))


def distributions_in(files: tuple[str, ...]) -> set[str]:
    return {name.split("-")[0] for name in files if ".dist-info/" in name}


def test_what_a_required_distribution_requires_goes_in_too(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""},
            requires=("tokens>=1.0",))
    install(tmp_path / "site", "tokens", {"tokens/__init__.py": "", "tokens/lex.py": ""},
            requires=("Char_Classes",))
    install(tmp_path / "site", "char_classes", {"char_classes.py": ""})
    files = package_function(parser(tmp_path, monkeypatch)).files
    assert files == (
        "char_classes-1.0.dist-info/METADATA", "char_classes-1.0.dist-info/RECORD",
        "char_classes.py", "handler.py", "tinyparse-1.0.dist-info/METADATA",
        "tinyparse-1.0.dist-info/RECORD", "tinyparse/__init__.py",
        "tokens-1.0.dist-info/METADATA", "tokens-1.0.dist-info/RECORD", "tokens/__init__.py",
        "tokens/lex.py")


def test_a_requirement_goes_in_when_its_marker_holds_on_lambda(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""}, requires=(
        'winparse; sys_platform == "win32"', 'oldparse; python_version < "3.8"',
        'armparse; platform_machine == "aarch64"', 'pypyparse; implementation_name == "pypy"',
        'newparse; python_version >= "3.13" and sys_platform == "linux"',
        'lambdaparse; platform_machine == "x86_64" and platform_system == "Linux"'))
    install(tmp_path / "site", "newparse", {"newparse/__init__.py": ""})
    install(tmp_path / "site", "lambdaparse", {"lambdaparse/__init__.py": ""})
    files = package_function(parser(tmp_path, monkeypatch)).files
    assert distributions_in(files) == {"tinyparse", "newparse", "lambdaparse"}


def test_an_extra_brings_what_it_requires_and_only_when_asked(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""}, requires=(
        'speedparse[native]; extra == "speed"', 'docparse; extra == "docs"'))
    install(tmp_path / "site", "speedparse", {"speedparse/__init__.py": ""}, requires=(
        'nativeparse; extra == "native"',))
    install(tmp_path / "site", "nativeparse", {"nativeparse/__init__.py": ""})
    spec = parser(tmp_path, monkeypatch)
    plain = package_function(spec).files
    fast = package_function(replace(spec, requirements=("tinyparse[Speed]",))).files
    assert distributions_in(plain) == {"tinyparse"}
    assert distributions_in(fast) == {"tinyparse", "speedparse", "nativeparse"}


def test_what_the_lambda_runtime_ships_is_not_packed_as_a_requirement(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""}, requires=(
        "botocore>=1.0", "tokens"))
    install(tmp_path / "site", "tokens", {"tokens/__init__.py": ""}, requires=(
        "python-dateutil", "Six", "boto3[crt]"))
    files = package_function(parser(tmp_path, monkeypatch)).files
    assert distributions_in(files) == {"tinyparse", "tokens"}
    assert not any(f.startswith(("boto", "dateutil", "six")) for f in files)


def test_distributions_requiring_each_other_go_in_once(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""},
            requires=("tokens",))
    install(tmp_path / "site", "tokens", {"tokens/__init__.py": ""},
            requires=("TinyParse>=1", "tokens"))
    files = package_function(parser(tmp_path, monkeypatch)).files
    assert files == (
        "handler.py", "tinyparse-1.0.dist-info/METADATA", "tinyparse-1.0.dist-info/RECORD",
        "tinyparse/__init__.py", "tokens-1.0.dist-info/METADATA",
        "tokens-1.0.dist-info/RECORD", "tokens/__init__.py")


def test_a_requirement_not_installed_is_refused_by_its_chain(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""},
            requires=("tokens",))
    install(tmp_path / "site", "tokens", {"tokens/__init__.py": ""},
            requires=('no-such-distribution>=2; python_version >= "3"',))
    with pytest.raises(PackagingError, match="^Parser requires tinyparse, which requires "
                                             "tokens, which requires no-such-distribution, "
                                             "which is not installed where chat-harness "
                                             "runs: pip install no-such-distribution$"):
        package_function(parser(tmp_path, monkeypatch))


def test_a_compiled_requirement_is_refused_by_its_chain(tmp_path, monkeypatch):
    install(tmp_path / "site", "tinyparse", {"tinyparse/__init__.py": ""},
            requires=("fastparse",))
    install(tmp_path / "site", "fastparse", {
        "fastparse/__init__.py": "", "fastparse/_speedups.cpython-313-x86_64-linux-gnu.so": ""})
    with pytest.raises(PackagingError, match=r"^Parser requires tinyparse, which requires "
                                             r"fastparse, which is not pure Python "
                                             r"\(fastparse/_speedups\.cpython-313[^\n]*$"):
        package_function(parser(tmp_path, monkeypatch))


def test_a_handler_missing_from_its_code_folder_is_refused(tmp_path):
    spec = FunctionSpec(name="Lost", handler="nowhere.lambda_handler", code_dir=tmp_path)
    with pytest.raises(PackagingError, match="handler module 'nowhere' is not in"):
        package_function(spec)
