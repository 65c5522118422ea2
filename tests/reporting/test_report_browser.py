"""The report in a real browser: headless Chromium renders it, logs nothing, is not blank.

Chromium (Debian's ``chromium`` package, installed by ``.ci/run``) prints every console
message of the page to stderr as ``INFO:CONSOLE...`` lines when started with
``--enable-logging=stderr``; the report has no scripts, so any such line (an uncaught
error, a blocked or failed load reported by the page) is a failure. A control page with a
deliberate error proves the check can fail with the installed Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium browser found (install Debian's 'chromium' package; .ci/run does)")
CONSOLE = re.compile(r"^.*:CONSOLE(?:\(\d+\))?[:\]].*$|^.*Uncaught .*$", re.M)


def chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local page with logging to stderr (no network use)."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
           "--log-level=0",
           f"--user-data-dir={profile}", *mode, page.resolve().as_uri()]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"Chromium did not finish within 90 s: {' '.join(cmd)}\n{exc.stderr!r}")


def console_lines(stderr: str) -> list[str]:
    """Console messages of the page (Chromium's own dbus/GPU warnings are ignored)."""
    return CONSOLE.findall(stderr)


def screenshot(page: Path, tmp_path: Path) -> tuple[np.ndarray, str]:
    png = tmp_path / "shot.png"
    res = chromium(page, tmp_path / "profile-shot", f"--screenshot={png}",
                   "--window-size=1200,2000", "--hide-scrollbars")
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot:\n{res.stderr[-3000:]}"
    return mpimg.imread(png), res.stderr


def test_control_page_errors_are_detected(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><h1>x</h1>"
                   "<script>console.error('control-error'); notDefined();</script></body></html>")
    res = chromium(bad, tmp_path / "profile", "--dump-dom")
    lines = console_lines(res.stderr)
    assert any("control-error" in line for line in lines), res.stderr[-3000:]
    assert any("notDefined" in line for line in lines), res.stderr[-3000:]


def test_report_renders_without_errors(full_report, tmp_path):
    img, stderr = screenshot(full_report, tmp_path)
    assert console_lines(stderr) == [], "\n".join(console_lines(stderr))
    assert img.shape[:2] == (2000, 1200)
    rgb = img[..., :3]
    assert rgb.std() > 0.05, "screenshot looks blank"
    not_background = (np.abs(rgb - np.median(rgb, axis=(0, 1))).sum(axis=-1) > 0.1).mean()
    assert not_background > 0.03, f"only {not_background:.1%} of the page is drawn"
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1) > 0.25).mean()
    assert coloured > 0.005, "no coloured pixels: the figures did not render"


def test_report_dom_is_complete(full_report, tmp_path):
    res = chromium(full_report, tmp_path / "profile-dom", "--dump-dom")
    assert console_lines(res.stderr) == [], "\n".join(console_lines(res.stderr))
    dom = res.stdout
    assert "<title>Brain-age report: run</title>" in dom, dom[:500]
    for section in ("data", "figures", "metrics", "groups", "longitudinal", "qc", "model-card",
                    "preprocessing"):
        assert f'<section id="{section}">' in dom
    assert dom.count('<img src="data:image/png;base64,') == 5
    assert "Research use only" in dom
