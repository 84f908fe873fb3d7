#!/usr/bin/python3
"""screenshots.py LINK PASSWORD OUTBOX_URL OUTDIR - what a link recipient sees,
photographed by headless Chromium (the same setup the browser tests use):
the password form, a wrong password, the opened message, and the sender's
outbox page (OUTBOX_URL: what `sealpost outbox` prints).  Run through `scripts/demo.sh --screenshots` (docs/clients.md)."""
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main() -> None:
    link, password, outbox, outdir = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                  "--window-size=900,1000", "--hide-scrollbars"):
            opts.add_argument(a)
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            wait = WebDriverWait(drv, 20)
            drv.get(link)
            wait.until(EC.presence_of_element_located((By.NAME, "password")))
            drv.save_screenshot(str(outdir / "viewer-password.png"))
            drv.find_element(By.NAME, "password").send_keys("not-the-password")
            drv.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait.until(EC.presence_of_element_located((By.NAME, "password")))
            drv.save_screenshot(str(outdir / "viewer-wrong-password.png"))
            drv.get(link)
            wait.until(EC.presence_of_element_located((By.NAME, "password")))
            drv.find_element(By.NAME, "password").send_keys(password)
            drv.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "pre.body, iframe")))
            drv.save_screenshot(str(outdir / "viewer-message.png"))
            drv.get(outbox)
            wait.until(EC.presence_of_element_located((By.TAG_NAME, "table")))
            drv.save_screenshot(str(outdir / "viewer-outbox.png"))
        finally:
            drv.quit()
    for p in sorted(outdir.glob("viewer-*.png")):
        print(p)


if __name__ == "__main__":
    main()
