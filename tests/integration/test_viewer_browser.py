"""The link viewer in a real browser: headless Chromium driven by selenium.

Opens the link, types the password, sees the message, downloads the
attachment (byte-identical), and shows that the remote loads in the HTML part
(image, stylesheet, CSS background, script, iframe) cause no request at all:
a tracking server on another loopback port must see zero requests.

Needs chromium, chromium-driver and python3-selenium (Debian); skipped without.
"""
from __future__ import annotations

import os
import time

import pytest

from browser import AVAILABLE, MISSING, By, EC, WebDriverWait, wait_download
from linkmode import Tracker
from viewer import Viewer, rich_message

# Collected and skipped (not a module-level skip): pytest then exits 0, not 5.
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=MISSING)



def test_browser_opens_message_downloads_and_loads_nothing_remote(tmp_path, browser):
    tracker = Tracker()
    v = Viewer(tmp_path / "viewer")
    attachment = os.urandom(64_000)
    [link] = v.mklink(rich_message(attachment, tracker=f"http://127.0.0.1:{tracker.port}/t.gif"),
                      ["correct horse battery"], max_views=3)
    v.start()
    try:
        browser.get(link.url)
        assert browser.title == "Encrypted message"
        assert v.link_row(link.id)["views"] == 0          # opening the form is not a view
        pw = browser.find_element(By.ID, "pw")
        pw.send_keys("correct horse battery")              # a space: sent as '+' by the form
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(
            EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Quarterly résumé"))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "Jörg Müller" in text and "bob@example.net" in text
        assert "résumé final.bin" in text
        assert v.link_row(link.id)["views"] == 1

        # The HTML part renders inside the sandboxed iframe; its script did not run.
        frame = browser.find_element(By.TAG_NAME, "iframe")
        assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        browser.switch_to.frame(frame)
        assert browser.find_element(By.ID, "hello").text == "Hello from the HTML part"
        browser.switch_to.default_content()
        assert browser.title != "pwned"

        # The plain-text version is there too (collapsed).
        browser.find_element(By.TAG_NAME, "summary").click()
        assert "Grüße aus Köln <b>not bold</b>" in browser.find_element(By.CSS_SELECTOR, "pre.body").text

        # Download the attachment: same bytes.
        browser.find_element(By.CSS_SELECTOR, "ul.att button").click()
        got = wait_download(browser.downloads, len(attachment))
        assert got.read_bytes() == attachment
        assert got.name == "résumé final.bin"
        assert v.link_row(link.id)["views"] == 1          # a download is not a view

        # Give any stray load time to arrive: there must be none.
        time.sleep(1.5)
        assert tracker.hits == [], f"remote loads reached the tracker: {tracker.hits}"
    finally:
        tracker.stop()
        v.stop()


def test_browser_wrong_password_then_gone(tmp_path, browser):
    v = Viewer(tmp_path / "viewer")
    [link] = v.mklink(rich_message(b"x"), ["right"], max_failed=2)
    v.start()
    try:
        browser.get(link.url)
        browser.find_element(By.ID, "pw").send_keys("wrong")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "p.err")))
        assert "does not open" in browser.find_element(By.CSS_SELECTOR, "p.err").text
        assert "Quarterly" not in browser.page_source
        time.sleep(1.1)                                    # the per-client backoff
        browser.find_element(By.ID, "pw").send_keys("wrong again")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(
            EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "not available"))
        assert "destroyed" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(link.url)
        assert "not available" in browser.find_element(By.TAG_NAME, "h1").text
    finally:
        v.stop()
