"""Render pages of the built docs site to PNGs with headless Chromium, to look at them as a reader would.

    mkdocs build --strict && python scripts/render_docs.py site --out docs-screenshots

Serves the site on a loopback port (the search and theme scripts need http, not file://), takes one
screenshot per page with Debian's ``chromium`` (``apt-get install chromium``) and prints each PNG's path.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

PAGES = {
    "home": "",
    "recipes": "recipes/",
    "api-models": "reference/models/",
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("render_docs.py: error: no chromium found; install it with `apt-get install chromium`")


def screenshot(browser: str, url: str, png: Path, width: int, height: int) -> None:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site folder")
    parser.add_argument("--out", type=Path, default=Path("docs-screenshots"), help="where the PNGs go")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"render_docs.py: error: {args.site} holds no built site (run `mkdocs build` first)")
    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    with serve(args.site) as root:
        for name, page in PAGES.items():
            png = args.out / f"{name}.png"
            screenshot(browser, root + page, png, args.width, args.height)
            print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
