"""The leaderboard in a real browser: Debian's chromium driven by playwright-core (npm).

``make test`` installs both (``make browser-deps``). The test starts ``vad-eval leaderboard``
on 127.0.0.1 with a sample-world run and a submission whose method name holds HTML and a
script, then ``tests/browser/leaderboard.mjs`` loads the page, shows the sample-split runs by
clicking the sidebar checkbox, opens the Tables tab, checks the table text, checks that the
submitted markup is shown literally and stays inert, and saves a screenshot
(``build/leaderboard-screenshot.png``). Without chromium or node_modules the test skips, except
under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HTML_NAME = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def _need(ok: bool, what: str) -> None:
    if not ok:
        msg = f"{what} (install with `make browser-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the leaderboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the leaderboard did not answer on {url} in {timeout_s} s")


def test_leaderboard_in_chromium(tmp_path: Path) -> None:
    _need(Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}")
    _need((BROWSER_DIR / "node_modules" / "playwright-core").is_dir(),
          "playwright-core is not installed in tests/browser")
    _need(shutil.which("node") is not None, "no node on PATH")
    runs = tmp_path / "runs"
    assert cli(["--method", "frame_diff", "--task", "ucf_crime", "--split", "sample", "--out",
                str(runs), "--no-progress", "--no-cache"]) == 0
    sub = tmp_path / "sub.json"
    sub.write_text(json.dumps({
        "schema_version": 1, "task": "ucf_crime", "split": "test",
        "method": {"name": HTML_NAME, "backbone": "Qwen2-VL-7B", "parameters_b": 7},
        "metrics": {"roc_auc": 0.8111, "pr_auc": 0.3}}))
    assert cli(["submit", str(sub), "--runs", str(runs)]) == 0
    metrics = json.loads(next(runs.glob("ucf_crime-frame_diff-*/metrics.json")).read_text())

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "leaderboard", "--runs",
                             str(runs), "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    shot = ROOT / "build" / "leaderboard-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    try:
        _wait_healthy(url, proc)
        expect = ["ucf_crime", "frame_diff", HTML_NAME, "0.8111",
                  f"{metrics['metrics']['roc_auc']:.4f}"]
        res = subprocess.run(
            ["node", "leaderboard.mjs", f"{url}/?sources=measured,submitted", str(shot), *expect],
            cwd=BROWSER_DIR, capture_output=True, text=True, timeout=240,
            env=os.environ | {"CHROMIUM": CHROMIUM})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and anything it started
        try:
            log = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log = proc.communicate()[0]
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n--- leaderboard log ---\n{log}"
    assert "inert:" in res.stdout
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
