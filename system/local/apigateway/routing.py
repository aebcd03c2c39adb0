"""Routes: the route table of an API, and route selection on a message body.

AWS rules: the expression (``$request.body.<path>``) is evaluated on JSON
bodies only; the selected value is stringified and must equal a route key
exactly; no match, a missing value or a body that cannot be evaluated (not JSON, or
JSON nested deeper than the parser goes) selects ``$default``; with no ``$default``
route the client is told "Forbidden".
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from system.routes import AuthorizerSpec, FunctionSpec, Route, RoutesFile, selection_path

DEFAULT_ROUTE = "$default"
CONNECT_ROUTE = "$connect"
DISCONNECT_ROUTE = "$disconnect"


def selected_value(body: str, path: tuple[str, ...]) -> str | None:
    """The stringified value at ``path`` in a JSON body, or None where there is none or the
    body cannot be evaluated: hostile nesting selects ``$default`` as garbage does."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def route_for(body: str, route_keys: Collection[str], path: tuple[str, ...]) -> str | None:
    """The route key a message body selects; None means no route (Forbidden)."""
    value = selected_value(body, path)
    if value is not None and value in route_keys and not value.startswith("$"):
        return value
    return DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None


@dataclass(frozen=True)
class RouteTable:
    """An API's routes, the function behind each, and how a message selects one."""

    selection_path: tuple[str, ...]
    routes: dict[str, Route]
    functions: dict[str, FunctionSpec]
    authorizer: AuthorizerSpec | None = None  # on $connect

    @classmethod
    def of(cls, routes_file: RoutesFile) -> RouteTable:
        return cls(selection_path(routes_file.selection_expression), routes_file.routes,
                   routes_file.functions, routes_file.connect_authorizer())

    def function_for(self, route_key: str) -> str | None:
        route = self.routes.get(route_key)
        return route.function if route else None
