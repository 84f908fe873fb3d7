"""Headless Chromium for the viewer tests: Debian's chromium, chromium-driver
and python3-selenium.  Without them AVAILABLE is False and the tests that need
a browser are skipped (collected, so pytest still exits 0).

    drv = open_browser(tmp_path)     # downloads land in drv.downloads
    wait_download(drv.downloads, size)
"""
from __future__ import annotations

from waits import WAIT

import shutil
import time
from pathlib import Path

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By  # noqa: F401  (re-exported)
    from selenium.webdriver.support import expected_conditions as EC  # noqa: F401
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False
    By = EC = WebDriverWait = None

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
AVAILABLE = bool(HAVE_SELENIUM and CHROMIUM and CHROMEDRIVER)
MISSING = "needs python3-selenium, chromium and chromium-driver"


def open_browser(tmp_path: Path, javascript: bool = True):
    """A fresh profile under tmp_path; downloads go to tmp_path/downloads
    without a prompt; the console is kept (drv.get_log("browser")).
    javascript=False: a browser with JavaScript off.  The caller quits it."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--disable-extensions", "--disable-default-apps",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1200"):
        opts.add_argument(a)
    prefs = {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    }
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    opts.add_experimental_option("prefs", prefs)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": str(downloads)})
    drv.downloads = downloads
    return drv


def wait_download(d: Path, size: int, timeout: float = WAIT) -> Path:
    """The finished download: Chromium makes a 0-byte placeholder with the final
    name while the .crdownload file fills, so wait for the partial file to go
    and the final one to reach its size."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(d.iterdir())
        partial = [p for p in files if p.name.endswith((".crdownload", ".tmp"))]
        done = [p for p in files if p not in partial and p.stat().st_size == size]
        if done and not partial:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no complete download in {d}: "
                         f"{[(p.name, p.stat().st_size) for p in d.iterdir()]}")
