"""Link v2 end to end in a real browser: a real client sends through SMTP to
the real sealpost (`run`, embedded viewer) and the real aiosmtpd upstream; the
link recipient opens the notification's link in headless Chromium, where
viewer/app.js runs the whole v2 unlock (Argon2id, the OPRF round trip with the
viewer, the proof) and decrypts the message in the page.  A wrong password
shows the error and nothing of the message; the right one shows the message,
which downloads byte-identical.  No CSP violation on the way.

Needs chromium, chromium-driver and python3-selenium (Debian); skipped without.
"""
from __future__ import annotations

import os

import pytest

from browser import AVAILABLE, MISSING, By, EC, WebDriverWait, open_browser, wait_download
from linkmode import without_headers
# test_link_v2.py's proxy with v2 links and its sender's side (fixtures too).
from test_link_v2 import ALICE, PRIVATE, send, start_proxy, v2_links  # noqa: F401
from test_viewer_v2_page import console_problems


@pytest.fixture
def browser(tmp_path):
    if not AVAILABLE:
        pytest.skip(MISSING)
    drv = open_browser(tmp_path)
    yield drv
    drv.quit()


def test_v2_link_decrypts_in_the_browser(start_proxy, upstream, browser):  # noqa: F811
    p = start_proxy(upstream)
    pw = "correct horse " + os.urandom(3).hex()
    hint = "the one from the phone call"
    s = send(p, pw, hint=hint)

    browser.get(s.link.url)
    wait = WebDriverWait(browser, 60)
    wait.until(EC.visibility_of_element_located((By.ID, "pw")))
    assert browser.find_element(By.CSS_SELECTOR, "label[for=pw]").text == "Password"
    assert hint in browser.find_element(By.ID, "hint-line").text
    assert ALICE in browser.find_element(By.ID, "from-line").text

    # A wrong password: the error, the field again, nothing of the message.
    browser.find_element(By.ID, "pw").send_keys(pw[:-1] + "\n")
    wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "Wrong password"))
    wait.until(lambda b: b.find_element(By.ID, "pw").is_enabled())
    assert not browser.find_element(By.ID, "message").is_displayed()
    assert s.marker not in browser.find_element(By.TAG_NAME, "body").text

    # The right one, typed with the keyboard (Enter submits).
    browser.find_element(By.ID, "pw").send_keys(pw + "\n")
    wait.until(EC.visibility_of_element_located((By.ID, "message")))
    assert not browser.find_element(By.ID, "error").is_displayed()
    # The proxy seals the original message for now (no view document yet):
    # it is shown as text, and it downloads as the e-mail it is, byte for
    # byte what the client sent (minus Bcc and X-Sealpost-*).
    shown = browser.find_element(By.ID, "text").text
    assert s.marker in shown, shown[:2000]
    link = browser.find_element(By.CSS_SELECTOR, "#attachments a")
    assert link.text == "message.eml"
    link.click()
    want = without_headers(s.msg, PRIVATE)
    got = wait_download(browser.downloads, len(want))
    assert got.read_bytes() == want
    assert got.name == "message.eml"
    assert console_problems(browser) == []
