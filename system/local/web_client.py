"""The browser chat client, as the local stack serves it beside its WebSockets.

The client (``system/local/web/``) is static files, deployable as they are on any
static host. The stack serves them on its WebSocket port: ``/`` is ``index.html``,
``/<name>`` a file of that folder by its name (nothing else: no subfolder, no other
path), plus ``/config.json``, which the stack writes: ``{"websocket_url": ...}``, the
URL the client fills in when it remembers none. A static host without one leaves the
field empty. Any other GET is not the client's: the handshake rules answer it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

INDEX = "index.html"
CONFIG_PATH = "/config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


@dataclass(frozen=True)
class WebFile:
    content_type: str
    body: bytes

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Never sniffed as another type; revalidated, so an edited client is seen."""
        return [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
                ("Connection", "close")]


def file_name(path: str, names: Iterable[str]) -> str | None:
    """The client's file that a request path (query removed) names, among ``names``
    (the folder's files), or None."""
    name = INDEX if path == "/" else path.removeprefix("/")
    return name if name in set(names) and Path(name).suffix in CONTENT_TYPES else None


def client_config(host: str, port: int, stage: str) -> WebFile:
    """config.json: the stack's WebSocket URL, at the address the browser reached."""
    authority = f"[{host}]" if ":" in host else host  # an IPv6 literal
    body = json.dumps({"websocket_url": f"ws://{authority}:{port}/{stage}"})
    return WebFile(CONTENT_TYPES[".json"], body.encode())


def web_file(folder: Path, path: str, stage: str, address: tuple) -> WebFile | None:
    """What a GET of ``path`` gets from the client in ``folder``, for a request that
    reached the stack at ``address`` (the socket's local host and port); None if the
    path is not the client's."""
    if path == CONFIG_PATH:
        return client_config(address[0], address[1], stage)
    name = file_name(path, (entry.name for entry in folder.iterdir() if entry.is_file()))
    if name is None:
        return None
    return WebFile(CONTENT_TYPES[Path(name).suffix], (folder / name).read_bytes())
