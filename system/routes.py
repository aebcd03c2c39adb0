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
    requirements = ["PyJWT"]               # optional: pure-Python distributions it imports
    secrets = ["JWT_SECRET"]               # optional: variables from chat-harness's environment
    [routes.sendmessage]
    function = "MyHandler"
    route_response = false                 # optional: return the body to the sender
    [authorizers.token]                    # optional: a Lambda REQUEST authorizer
    function = "MyAuthorizer"
    identity_sources = ["route.request.querystring.Authorization"]
    [routes."$connect"]
    function = "MyConnectHandler"
    authorizer = "token"                   # optional, $connect only (as in AWS)

``tables`` names the chat's tables by role (``active_connections``, ``session_history``,
``message_history``) and the DynamoDB actions the function calls on each: in AWS each
function's role allows exactly these, on exactly those tables. ``invokes`` names the
functions it calls through Lambda's Invoke API, each by the environment variable that
holds the called function's name where it runs (locally its name here, in AWS the
stage's name for it); in AWS its role may invoke exactly those. ``requirements`` are the
distributions (beyond what Lambda's runtime ships) its code imports: deploy packs them
from the environment chat-harness runs in. ``secrets`` are environment variables the
function gets from the environment chat-harness runs in, never written in this file.

An authorizer runs before ``$connect`` as API Gateway runs a Lambda REQUEST authorizer
(AWS allows them on ``$connect`` only); each identity source is
``route.request.header.NAME`` or ``route.request.querystring.NAME``, and a request
missing one is refused without invoking it. A declared authorizer guards nothing until
``$connect`` names it (or ``--authorizer NAME`` attaches it).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
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
CONNECT_ROUTE = "$connect"
IDENTITY_SOURCE_PREFIXES = ("route.request.header.", "route.request.querystring.")
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
    requirements: tuple[str, ...] = ()  # distributions packed with it
    secrets: tuple[str, ...] = ()  # environment variables taken from chat-harness's own


@dataclass(frozen=True)
class Route:
    key: str
    function: str
    route_response: bool = False
    authorizer: str | None = None


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda REQUEST authorizer: its function and where the identity is read."""

    name: str
    function: str
    identity_sources: tuple[str, ...]


@dataclass(frozen=True)
class RoutesFile:
    path: Path
    selection_expression: str
    routes: dict[str, Route]
    functions: dict[str, FunctionSpec]
    authorizers: dict[str, AuthorizerSpec] = field(default_factory=dict)

    def connect_authorizer(self) -> AuthorizerSpec | None:
        route = self.routes.get(CONNECT_ROUTE)
        return self.authorizers[route.authorizer] if route and route.authorizer else None

    def in_use(self) -> RoutesFile:
        """Only the functions something runs: a route's, an attached authorizer's, and
        those they invoke; only the attached authorizer. What the local stack starts and
        deploy builds."""
        authorizer = self.connect_authorizer()
        names = {route.function for route in self.routes.values()}
        if authorizer is not None:
            names.add(authorizer.function)
        names |= {called for name in names for called in self.functions[name].invokes.values()}
        return replace(self, functions={n: s for n, s in self.functions.items() if n in names},
                       authorizers={authorizer.name: authorizer} if authorizer else {})


def identity_source_name(source: str) -> tuple[str, str]:
    """'route.request.header.Auth' -> ('header', 'Auth'); 'route.request.querystring.t' ->
    ('querystring', 't'); anything else is a configuration error."""
    for prefix in IDENTITY_SOURCE_PREFIXES:
        if source.startswith(prefix) and len(source) > len(prefix):
            return prefix.split(".")[2], source[len(prefix):]
    raise ValueError(f"identity source {source!r} must be route.request.header.NAME or "
                     f"route.request.querystring.NAME")


def selection_path(expression: str) -> tuple[str, ...]:
    """'$request.body.action' -> ('action',); anything else is a configuration error."""
    if not expression.startswith(BODY_PREFIX) or expression == BODY_PREFIX:
        raise ValueError(
            f"route selection expression must look like $request.body.action, not {expression!r}"
        )
    return tuple(expression[len(BODY_PREFIX):].split("."))


@functools.cache
def dynamodb_operations() -> frozenset[str]:
    """DynamoDB's operation names, from botocore's service model (read once: 50 ms)."""
    import botocore.session

    return frozenset(botocore.session.get_session().get_service_model("dynamodb").operation_names)


def _table_actions(name: str, spec: dict) -> dict[str, tuple[str, ...]]:
    """The ``tables`` of a function, checked against the chat's table roles and DynamoDB's
    own operation names, so a typo fails here, not in AWS."""
    operations = dynamodb_operations()
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


def with_authorizer(routes: RoutesFile, name: str) -> RoutesFile:
    """``routes`` with the declared authorizer ``name`` on ``$connect`` (the local stack's,
    load's and deploy's ``--authorizer``)."""
    if name not in routes.authorizers:
        declared = ", ".join(sorted(routes.authorizers)) or "none"
        raise RouteConfigError(f"routes file {routes.path} declares no authorizer {name!r} "
                               f"(declared: {declared})")
    if CONNECT_ROUTE not in routes.routes:
        raise RouteConfigError(f"routes file {routes.path} has no $connect route to authorize")
    return replace(routes, routes={**routes.routes, CONNECT_ROUTE: replace(
        routes.routes[CONNECT_ROUTE], authorizer=name)})


def with_secrets(routes: RoutesFile, environ: Mapping[str, str]) -> RoutesFile:
    """``routes`` with each function's ``secrets`` in its environment, from ``environ``;
    one unset is an error naming it."""
    functions = {}
    for name, spec in routes.functions.items():
        missing = [variable for variable in spec.secrets if not environ.get(variable)]
        if missing:
            raise RouteConfigError(f"{name} needs {', '.join(missing)} set in the environment "
                                   f"chat-harness runs in (a secret, never in the routes file)")
        functions[name] = replace(spec, environment={
            **spec.environment, **{variable: environ[variable] for variable in spec.secrets}})
    return replace(routes, functions=functions)


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
                requirements=tuple(str(r) for r in spec.get("requirements", ())),
                secrets=tuple(str(v) for v in spec.get("secrets", ())),
            )
            for name, spec in document.get("functions", {}).items()
        }
        routes = {
            key: Route(key, str(spec["function"]), bool(spec.get("route_response", False)),
                       str(spec["authorizer"]) if "authorizer" in spec else None)
            for key, spec in document.get("routes", {}).items()
        }
        authorizers = {
            name: AuthorizerSpec(name, str(spec["function"]),
                                 tuple(str(s) for s in spec.get("identity_sources", ())))
            for name, spec in document.get("authorizers", {}).items()
        }
        for authorizer in authorizers.values():
            for source in authorizer.identity_sources:
                identity_source_name(source)
    except KeyError as missing:
        raise RouteConfigError(f"routes file {path}: missing key {missing}") from None
    except ValueError as error:
        raise RouteConfigError(f"routes file {path}: {error}") from None
    for route in routes.values():
        if route.function not in functions:
            raise RouteConfigError(
                f"routes file {path}: route {route.key!r} names unknown function {route.function!r}"
            )
        if route.authorizer is not None and route.key != CONNECT_ROUTE:
            raise RouteConfigError(f"routes file {path}: route {route.key!r} has an authorizer; "
                                   f"API Gateway runs authorizers on $connect only")
        if route.authorizer is not None and route.authorizer not in authorizers:
            raise RouteConfigError(f"routes file {path}: route {route.key!r} names unknown "
                                   f"authorizer {route.authorizer!r}")
    for authorizer in authorizers.values():
        if authorizer.function not in functions:
            raise RouteConfigError(f"routes file {path}: authorizer {authorizer.name!r} names "
                                   f"unknown function {authorizer.function!r}")
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
    return RoutesFile(Path(path), expression, routes, functions, authorizers)
