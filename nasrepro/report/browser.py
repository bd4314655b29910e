"""A real browser for checking the report site and the MLflow UI: headless Chromium from
the system packages (`apt-get install chromium`), driven from its command line.

Used by tests/test_site.py (skipped when no Chromium is installed) and docs/screenshots.py
(the screenshots the README shows).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """The Chromium executable on PATH (or $NASREPRO_CHROMIUM), or None."""
    given = os.environ.get("NASREPRO_CHROMIUM")
    if given:
        return given
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium on PATH: `apt-get install chromium`")
    flags = ["--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to sandbox as root
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def screenshot(
    url: str,
    out: Path,
    width: int = 1400,
    height: int = 1000,
    wait_ms: int = 0,
    timeout: float = 120,
) -> Path:
    """A PNG of the first `width` x `height` pixels of `url`; `wait_ms` of virtual time
    lets a JavaScript page (the MLflow UI) load its data first."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [f"--window-size={width},{height}", f"--screenshot={out.resolve()}"]
    if wait_ms:
        args.append(f"--virtual-time-budget={wait_ms}")
    done = _run([*args, url], timeout)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {url}: {done.stderr.strip()[-300:]}")
    return out


def dump_dom(url: str, timeout: float = 120) -> str:
    """The page's DOM after loading, as Chromium serialises it."""
    done = _run(["--dump-dom", url], timeout)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"chromium could not load {url}: {done.stderr.strip()[-300:]}")
    return done.stdout
