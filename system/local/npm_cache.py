"""Node packages installed with the machine's npm into this project's cache, on first use.

Each package lives at a pinned version in a directory of its own under the cache
(``~/.cache/chat-harness/<name>-<version>``, or under ``XDG_CACHE_HOME``). npm installs
into a staging directory renamed into place once it succeeded, so a failed or
interrupted install leaves nothing that a later run would take for an installed one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

# npm retries a registry it cannot reach for about a minute before it gives up.
NPM_INSTALL_TIMEOUT_S = 300


class NpmInstallError(RuntimeError):
    """An install that failed, in one line that says what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chat-harness"


def npm_error_reason(stderr: str) -> str:
    """The line of a failed ``npm install``'s output that says why, without npm's prefix.

    npm ends with where its log is, after the error's code, errno and syscall lines;
    the reason is the first other line (a FetchError, a 404, ...)."""
    lines = [re.sub(r"^npm (ERR!|error)\s?", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if not re.match(r"(code|errno|syscall)\b", line):
            return line
    return lines[-1] if lines else "no output"


def npm_install(package: str, version: str, home: Path, *, install_npm: str, otherwise: str = "",
                environment: Mapping[str, str] | None = None,
                timeout_s: float = NPM_INSTALL_TIMEOUT_S) -> None:
    """``npm install package@version`` into ``home`` (its ``node_modules``).

    ``install_npm`` says what to do when no npm is on PATH; ``otherwise`` (", or ...")
    ends the other errors' advice with the caller's alternative. ``environment`` is
    added to npm's (e.g. to skip a download an install script would make)."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmInstallError(f"installing {package} needs npm, and no npm is on PATH: "
                              f"{install_npm}")
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{package}-", dir=home.parent))
    except OSError as error:
        raise NpmInstallError(
            f"cannot install {package} into {home.parent} ({error.strerror or error}); "
            f"set XDG_CACHE_HOME to a writable directory{otherwise}"
        ) from None
    spec = f"{package}@{version}"
    advice = f"check npm's network access{otherwise}"
    try:
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(staging), spec],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            timeout=timeout_s, env={**os.environ, **(environment or {})},
        )
    except BaseException as error:  # Ctrl-C too: no half install left behind
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, subprocess.TimeoutExpired):
            reason = f"no answer in {timeout_s:g} s"
        elif isinstance(error, OSError):
            reason = str(error)
        else:
            raise
        raise NpmInstallError(f"npm install {spec} failed ({reason}); {advice}") from None
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise NpmInstallError(f"npm install {spec} failed ({npm_error_reason(result.stderr)}); "
                              f"{advice}")
    try:
        staging.rename(home)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
