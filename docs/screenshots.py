"""The screenshots the README shows, taken in a real browser (headless Chromium).

    .venv/bin/python docs/screenshots.py [--store sqlite:///mlflow.db] [--out docs/screenshots]

1. Builds the static site of the committed report (the suites and `reports/records/`) in a
   temporary folder and photographs the index and the first screen of rf_darts's page.
2. With `--store` (the MLflow store the README's main job wrote): starts `mlflow ui` on
   127.0.0.1 only, photographs rf_darts's `rf_darts · verdicts` run and its
   `art-darts-v2 · claims` run, and stops the server it started.

Needs Chromium from the system packages (`apt-get install chromium`). The images are
quantised to 256 colours to keep the repository small.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasrepro.report import build_report  # noqa: E402
from nasrepro.report.browser import chromium, screenshot  # noqa: E402

PAGE = "rf_darts"


def _save(shot: Path, out: Path) -> Path:
    from PIL import Image

    with Image.open(shot) as img:
        img.convert("RGB").quantize(256).save(out, optimize=True)
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return out


def report_shots(out: Path, tmp: Path) -> None:
    suites = sorted((ROOT / "suites").glob("*.yaml"))
    build_report(suites, ROOT / "reports" / "records", tmp / "pages", tmp / "site")
    for name, height in (("index", 560), (PAGE, 1000)):
        page = (tmp / "site" / f"{name}.html").as_uri()
        shot = screenshot(page, tmp / f"{name}.png", 1400, height)
        _save(shot, out / f"report-{name}.png")


async def _devtools_port(proc: asyncio.subprocess.Process) -> str:
    """The port Chromium's DevTools listen on, from the line it prints at start."""
    assert proc.stderr is not None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 120)).decode()
        if not line:
            raise RuntimeError("chromium ended before its DevTools started")
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            return found.group(1)


async def _capture(port: str, url: str, expect: str, settle_s: float, timeout_s: float) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        targets = await (await http.get(f"http://127.0.0.1:{port}/json")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            sent = 0

            async def call(method: str, **params: object) -> dict:
                nonlocal sent
                sent += 1
                await ws.send_str(json.dumps({"id": sent, "method": method, "params": params}))
                async for msg in ws:
                    data = json.loads(msg.data)
                    if data.get("id") == sent:
                        return dict(data.get("result") or {})
                raise RuntimeError("DevTools connection closed")

            await call("Page.enable")
            await call("Page.navigate", url=url)
            probe = f"document.body.innerText.includes({json.dumps(expect)})"
            for _ in range(int(timeout_s)):  # until the app shows what it fetched
                found = await call("Runtime.evaluate", expression=probe, returnByValue=True)
                if (found.get("result") or {}).get("value") is True:
                    break
                await asyncio.sleep(1)
            else:
                raise RuntimeError(f"{url}: {expect!r} did not appear in {timeout_s:.0f} s")
            await asyncio.sleep(settle_s)  # let the remaining panels render
            return base64.b64decode((await call("Page.captureScreenshot", format="png"))["data"])


def app_screenshot(
    url: str,
    out: Path,
    size: tuple[int, int],
    expect: str,
    settle_s: float = 5.0,
    timeout_s: float = 300.0,
) -> Path:
    """A screenshot of a JavaScript application (the MLflow UI) once it has fetched its
    data: through Chromium's DevTools protocol, when the page's text holds `expect`, then
    `settle_s` seconds more. (`--screenshot` fires at the load event, before the app's
    requests.)"""
    width, height = size

    async def shoot() -> bytes:
        exe = chromium()
        assert exe is not None
        with tempfile.TemporaryDirectory() as profile:
            args = ["--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
            args += [f"--window-size={width},{height}", f"--user-data-dir={profile}"]
            args += ["--remote-debugging-port=0", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
            proc = await asyncio.create_subprocess_exec(
                exe, *args, "about:blank", stderr=asyncio.subprocess.PIPE
            )
            try:
                port = await _devtools_port(proc)
                assert proc.stderr is not None
                drain = asyncio.ensure_future(proc.stderr.read())  # its logs must not block it
                return await _capture(port, url, expect, settle_s, timeout_s)
            finally:
                proc.terminate()
                await proc.wait()
                if "drain" in locals():
                    await drain

    out.write_bytes(asyncio.run(shoot()))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_shots(store: str, out: Path, tmp: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    exp = client.get_experiment_by_name(f"nasrepro/{PAGE}")
    if exp is None:
        raise SystemExit(f"{store}: no experiment nasrepro/{PAGE}: run the README's main job first")

    def run_id(name: str) -> str:
        found = client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'")
        if not found:
            raise SystemExit(f"{store}: no run {name!r} in nasrepro/{PAGE}")
        return str(found[0].info.run_id)

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped as one below
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit("mlflow ui did not start within 3 minutes")
        mode = "?workflowType=machine_learning"  # the runs view, not MLflow 3's GenAI overview
        runs = {"mlflow-verdicts": f"{PAGE} · verdicts", "mlflow-claims": "art-darts-v2 · claims"}
        for name, run in runs.items():
            route = f"#/experiments/{exp.experiment_id}/runs/{run_id(run)}{mode}"
            url = f"{base}/{route}"
            shot = app_screenshot(url, tmp / f"{name}.png", (1500, 1400), "Metrics (")
            _save(shot, out / f"{name}.png")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="MLflow store of the main job, e.g. sqlite:///mlflow.db")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    if chromium() is None:
        raise SystemExit("no Chromium on PATH: apt-get install chromium")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        report_shots(out, Path(tmp))
        if args.store:
            mlflow_shots(args.store, out, Path(tmp))


if __name__ == "__main__":
    main()
