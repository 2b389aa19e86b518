"""A PNG of the report page from headless Chromium (Debian's ``chromium``), for tests and the bench script."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from reid_repro.errors import ReidReproError

# no background networking: this machine's network is closed and Chromium would retry many connections
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def screenshot(page: str | Path, out: str | Path, width: int = 1400, height: int = 2000) -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise ReidReproError("chromium not found; install Debian's chromium package (apt-get install chromium)")
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                               f"--screenshot={out}", Path(page).resolve().as_uri()],
                              capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not out.is_file():
        raise ReidReproError(f"chromium could not render {page}: {proc.stderr[-500:]}")
    return out
