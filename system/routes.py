"""The routes file: the chat's routes and the Lambda function behind each (system/routes.toml).

One source for the local stack (which runs it) and ``chat-harness deploy`` (which builds
it in AWS). A user runs their own handlers by writing such a file:

    route_selection_expression = "$request.body.action"
    [functions.MyHandler]
    handler = "my_module.lambda_handler"   # module.function
    code = "path/to/code"                  # optional: the folder the handler imports from
    timeout = 3                            # optional, seconds (Lambda's default)
    memory = 128                           # optional, MB
    environment = { KEY = "value" }        # optional
    tables = { message_history = ["PutItem"] }  # optional: the DynamoDB actions it may call
    invokes = { FANOUT_FUNCTION = "OtherHandler" }  # optional: functions it may invoke
    async_retries = 2                      # optional: Lambda's retries of a failed async call
    [routes.sendmessage]
    function = "MyHandler"
    route_response = false                 # optional: return the body to the sender

``tables`` names the chat's tables by role (``active_connections``, ``session_history``,
``message_history``) and the DynamoDB actions the function calls on each: in AWS each
function's role allows exactly these, on exactly those tables. ``invokes`` names the
functions it calls through Lambda's Invoke API, each by the environment variable that
holds the called function's name where it runs (locally its name here, in AWS the
stage's name for it); in AWS its role may invoke exactly those.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import tomli_w

from system.provision import TableNames

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent / "routes.toml"
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 128
# Lambda's MaximumRetryAttempts for asynchronous invocations: 2 unless configured (0 to 2).
DEFAULT_ASYNC_RETRIES = 2
BODY_PREFIX = "$request.body."
TABLE_ROLES = tuple(f.name for f in fields(TableNames))


class RouteConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FunctionSpec:
    """A function as a user configures it: its handler and what it runs with."""

    name: str
    handler: str
    environment: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    code_dir: Path | None = None  # None: importable where the harness runs
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> DynamoDB actions
    invokes: dict[str, str] = field(default_factory=dict)  # environment variable -> function
    async_retries: int = DEFAULT_ASYNC_RETRIES


@dataclass(frozen=True)
class Route:
    key: str
    function: str
    route_response: bool = False


@dataclass(frozen=True)
class RoutesFile:
    path: Path
    selection_expression: str
    routes: dict[str, Route]
    functions: dict[str, FunctionSpec]


def selection_path(expression: str) -> tuple[str, ...]:
    """'$request.body.action' -> ('action',); anything else is a configuration error."""
    if not expression.startswith(BODY_PREFIX) or expression == BODY_PREFIX:
        raise ValueError(
            f"route selection expression must look like $request.body.action, not {expression!r}"
        )
    return tuple(expression[len(BODY_PREFIX):].split("."))


def _table_actions(name: str, spec: dict) -> dict[str, tuple[str, ...]]:
    """The ``tables`` of a function, checked against the chat's table roles and DynamoDB's
    own operation names (botocore's service model), so a typo fails here, not in AWS."""
    import botocore.session

    operations = set(botocore.session.get_session().get_service_model("dynamodb").operation_names)
    tables = {str(role): tuple(str(a) for a in actions)
              for role, actions in spec.get("tables", {}).items()}
    for role, actions in tables.items():
        if role not in TABLE_ROLES:
            raise ValueError(f"{name} names table {role!r}; the tables are "
                             f"{', '.join(TABLE_ROLES)}")
        unknown = sorted(set(actions) - operations)
        if unknown:
            raise ValueError(f"{name}: {', '.join(unknown)} is not a DynamoDB action")
    return tables


def write_routes_variant(path: Path, edit: Callable[[dict], None],
                         source: Path = DEFAULT_ROUTES_FILE) -> Path:
    """Write to ``path`` a copy of the routes file ``source`` whose TOML document ``edit``
    changed in place: how tests and benchmarks run the chat with another setting (an
    environment variable, a route response, other code). Code folders stay where they
    were (made absolute)."""
    document = tomllib.loads(Path(source).read_text(encoding="utf-8"))
    base = Path(source).resolve().parent
    for spec in document.get("functions", {}).values():
        if "code" in spec:
            spec["code"] = str((base / spec["code"]).resolve())
    edit(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def with_environment(**variables: str) -> Callable[[dict], None]:
    """An edit for ``write_routes_variant``: these variables in every function's
    environment (e.g. ``PRESENCE_NOTICES="off"``)."""
    def edit(document: dict) -> None:
        for spec in document.get("functions", {}).values():
            spec["environment"] = {**spec.get("environment", {}), **variables}
    return edit


def with_fanout_strategy(routes: RoutesFile, strategy: str) -> RoutesFile:
    """``routes`` with FANOUT_STRATEGY set in every function's environment (the local
    stack's and deploy's ``--fanout``)."""
    return replace(routes, functions={
        name: replace(spec, environment={**spec.environment, "FANOUT_STRATEGY": strategy})
        for name, spec in routes.functions.items()})


def with_route_response(route_key: str) -> Callable[[dict], None]:
    """An edit for ``write_routes_variant``: the route two-way (its function's body goes
    back to the sender, e.g. sendmessage's answer with the message id)."""
    def edit(document: dict) -> None:
        document["routes"][route_key]["route_response"] = True
    return edit


def load_routes(path: Path = DEFAULT_ROUTES_FILE) -> RoutesFile:
    """Read and check a routes file; errors name the file and what to fix."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RouteConfigError(f"cannot read routes file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise RouteConfigError(f"routes file {path} is not valid TOML: {error}") from None
    base = Path(path).resolve().parent
    try:
        expression = str(document.get("route_selection_expression", "$request.body.action"))
        selection_path(expression)
        functions = {
            name: FunctionSpec(
                name=name,
                handler=str(spec["handler"]),
                environment={str(k): str(v) for k, v in spec.get("environment", {}).items()},
                timeout_s=float(spec.get("timeout", DEFAULT_TIMEOUT_S)),
                memory_mb=int(spec.get("memory", DEFAULT_MEMORY_MB)),
                code_dir=(base / spec["code"]).resolve() if "code" in spec else None,
                tables=_table_actions(name, spec),
                invokes={str(k): str(v) for k, v in spec.get("invokes", {}).items()},
                async_retries=int(spec.get("async_retries", DEFAULT_ASYNC_RETRIES)),
            )
            for name, spec in document.get("functions", {}).items()
        }
        routes = {
            key: Route(key, str(spec["function"]), bool(spec.get("route_response", False)))
            for key, spec in document.get("routes", {}).items()
        }
    except KeyError as missing:
        raise RouteConfigError(f"routes file {path}: missing key {missing}") from None
    except ValueError as error:
        raise RouteConfigError(f"routes file {path}: {error}") from None
    for route in routes.values():
        if route.function not in functions:
            raise RouteConfigError(
                f"routes file {path}: route {route.key!r} names unknown function {route.function!r}"
            )
    for spec in functions.values():
        if spec.timeout_s <= 0:
            raise RouteConfigError(f"routes file {path}: {spec.name} timeout must be positive")
        if not 0 <= spec.async_retries <= DEFAULT_ASYNC_RETRIES:
            raise RouteConfigError(f"routes file {path}: {spec.name} async_retries must be 0, "
                                   f"1 or 2 (Lambda's MaximumRetryAttempts)")
        for variable, called in spec.invokes.items():
            if called not in functions:
                raise RouteConfigError(f"routes file {path}: {spec.name} invokes unknown "
                                       f"function {called!r} (as {variable})")
    return RoutesFile(Path(path), expression, routes, functions)
