"""Pages opened in headless Chromium with no network, as an auditor on an intranet opens them.

The browser runs with every address on the network refused (a proxy on a closed port, no
background requests), so a page that still needs a CDN shows up as one that does not work. The
DOM is read after the page's scripts have run (`--dump-dom` with a virtual time budget): rows
that bootstrap-table builds from the page's data are in it only if its script was loaded.
`make test` installs Chromium where it is missing (Makefile, `browser`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",  # nothing listens there: no request leaves
    "--proxy-bypass-list=<-loopback>",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is needed for the offline page tests: `make test` installs it")
    return found


def dom_offline(page: Path, *, budget_ms: int = 5000) -> str:
    """The page's DOM once its scripts have run, opened from disk with no network."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium(),
                *OFFLINE_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, f"Chromium failed on {page.name}: {done.stderr[-500:]}"
    return done.stdout
