"""``python -m reports.snapshot RUN_DIR``: render report.html to report.png in headless Chromium,
to look at the report as a person would (or attach it where HTML does not go)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1200, 4400)
TIMEOUT_S = 120


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def snapshot(html: Path, png: Path, browser: str | None = None) -> Path:
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (looked for {', '.join(BROWSERS)}); "
                                f"on Debian: apt-get install chromium")
    if not html.exists():
        raise FileNotFoundError(f"{html} does not exist: run 'chat-harness report RUN_DIR' first")
    with tempfile.TemporaryDirectory(prefix="chat-harness-chromium-") as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", f"--user-data-dir={profile}",
             f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={png.resolve()}",
             html.resolve().as_uri()],
            capture_output=True, timeout=TIMEOUT_S, check=True)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.snapshot", description=__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    try:
        png = snapshot(args.run_dir / "report.html", args.run_dir / "report.png")
    except (OSError, subprocess.SubprocessError) as error:
        print(f"reports.snapshot: {error}", file=sys.stderr)
        return 2
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
