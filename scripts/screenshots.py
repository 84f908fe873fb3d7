#!/usr/bin/python3
"""screenshots.py LINK PASSWORD [OUTBOX_URL OUTDIR] - a link recipient opens a
v2 link in headless Chromium (the same setup the browser tests use): the page
derives the key from the password in the browser, decrypts the message there
and shows it.  Prints the message's subject and text as the page shows them.

With OUTBOX_URL and OUTDIR it also photographs what the recipient sees: the
password form, a wrong password, the opened message, and the sender's outbox
page (OUTBOX_URL: what `sealpost outbox` prints).  Run through
`scripts/demo.sh` (and `scripts/demo.sh --screenshots`, docs/clients.md)."""
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

# Seconds to wait for the page: one Argon2id run in WebAssembly on a slow machine.
WAIT = 60


def main() -> None:
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__.split("\n")[0])
    link, password = sys.argv[1], sys.argv[2]
    outbox, outdir = (sys.argv[3], Path(sys.argv[4])) if len(sys.argv) == 5 else (None, None)
    if outdir:
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
            wait = WebDriverWait(drv, WAIT)
            drv.get(link)
            wait.until(EC.visibility_of_element_located((By.ID, "pw")))
            if outdir:
                drv.save_screenshot(str(outdir / "viewer-password.png"))
                drv.find_element(By.ID, "pw").send_keys("not-the-password\n")
                wait.until(EC.visibility_of_element_located((By.ID, "error")))
                wait.until(lambda d: d.find_element(By.ID, "pw").is_enabled())
                drv.save_screenshot(str(outdir / "viewer-wrong-password.png"))
                drv.find_element(By.ID, "pw").clear()
            drv.find_element(By.ID, "pw").send_keys(password + "\n")
            wait.until(EC.visibility_of_element_located((By.ID, "message")))
            print("Subject:", drv.find_element(By.ID, "subject").text)
            print(drv.find_element(By.ID, "text").get_attribute("textContent"))
            if outdir:
                drv.save_screenshot(str(outdir / "viewer-message.png"))
                drv.get(outbox)
                wait.until(EC.presence_of_element_located((By.TAG_NAME, "table")))
                drv.save_screenshot(str(outdir / "viewer-outbox.png"))
        finally:
            drv.quit()
    if outdir:
        for p in sorted(outdir.glob("viewer-*.png")):
            print(p)


if __name__ == "__main__":
    main()
