"""The route -> function mapping a stack runs, read from a TOML file (system/routes.toml).

A user runs their own handlers on the emulator by writing such a file:

    route_selection_expression = "$request.body.action"
    [functions.MyHandler]
    handler = "my_module.lambda_handler"   # module.function
    code = "path/to/code"                  # optional, added to the import path
    timeout = 3                            # optional, seconds (Lambda's default)
    memory = 128                           # optional, MB
    environment = { KEY = "value" }        # optional
    [routes.sendmessage]
    function = "MyHandler"
    route_response = false                 # optional: return the body to the sender
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from system.local.apigateway.routing import Route, RouteTable, selection_path
from system.local.lambda_runtime.pool import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, FunctionSpec

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent.parent / "routes.toml"


class RouteConfigError(ValueError):
    pass


def load_routes(path: Path = DEFAULT_ROUTES_FILE) -> RouteTable:
    """Read and check a routes file; errors name the file and what to fix."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RouteConfigError(f"cannot read routes file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise RouteConfigError(f"routes file {path} is not valid TOML: {error}") from None
    base = Path(path).resolve().parent
    try:
        path_parts = selection_path(
            document.get("route_selection_expression", "$request.body.action")
        )
        functions = {
            name: FunctionSpec(
                name=name,
                handler=str(spec["handler"]),
                environment={str(k): str(v) for k, v in spec.get("environment", {}).items()},
                timeout_s=float(spec.get("timeout", DEFAULT_TIMEOUT_S)),
                memory_mb=int(spec.get("memory", DEFAULT_MEMORY_MB)),
                code_dir=(base / spec["code"]).resolve() if "code" in spec else None,
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
    return RouteTable(path_parts, routes, functions)
