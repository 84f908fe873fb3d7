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

import email
import email.policy
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from email.message import EmailMessage

from browser import By, EC, WebDriverWait, wait_download
from clients import smtplib_send
# test_link_v2.py's proxy with v2 links and its sender's side (fixtures too).
from test_link_v2 import ALICE, B64, DAVE, Link, send, start_proxy, v2_links  # noqa: F401
from test_viewer_v2_page import console_problems
from viewer import Viewer, store_v2_link



def tiny_png(w: int = 3, h: int = 2) -> bytes:
    """A real PNG (RGB, w x h), written with zlib: something a browser decodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    raw = b"".join(b"\x00" + bytes([200, 30, 30]) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class RichSent:
    password: str
    subject: str
    text_marker: str
    html_marker: str
    attachment: bytes
    image: bytes
    link: Link


def rich_message(password: str) -> tuple[bytes, RichSent]:
    """text/plain, text/html with a cid: inline image (multipart/related) and
    an attachment, as a mail client writes it (Python's email package)."""
    tag = os.urandom(4).hex()
    subject = f"Quarterly figures {tag}"
    text_marker, html_marker = f"plain-body-{tag}", f"html-body-{tag}"
    att = os.urandom(20_000) + f"attachment-{tag}".encode()
    png = tiny_png()
    m = EmailMessage()
    m["From"] = f'"Alice" <{ALICE}>'
    m["To"] = DAVE
    m["Subject"] = subject
    m["Message-ID"] = f"<{tag}@example.com>"
    m["X-Sealpost-Password"] = password
    m.set_content(f"The figures are in: {text_marker}.\n")
    m.add_alternative(f'<html><body><p id="hello">The figures: {html_marker}</p>'
                      f'<img id="logo" alt="logo" src="cid:logo-{tag}@example.com"></body></html>',
                      subtype="html")
    m.get_payload()[1].add_related(png, "image", "png", cid=f"<logo-{tag}@example.com>",
                                   filename="logo.png")
    m.add_attachment(att, maintype="application", subtype="octet-stream", filename="figures.bin")
    return m.as_bytes(policy=email.policy.SMTP), RichSent(password, subject, text_marker,
                                                          html_marker, att, png, None)


def send_rich(p, password: str) -> RichSent:
    """Send rich_message() with smtplib through the proxy; the link from the
    notification the upstream received."""
    msg, r = rich_message(password)
    before = len(p.up.messages)
    code, _ = smtplib_send(p.sp.port, ALICE, [DAVE], msg)
    assert code == 250
    got = p.up.wait_for(before + 1)
    [note] = [n for n in got[before:] if n.rcpt_tos == [DAVE]]
    m = email.message_from_bytes(note.content, policy=email.policy.default)
    text = "".join(part.get_content() for part in m.walk() if part.get_content_type() == "text/plain")
    mm = re.search(re.escape(p.base_url) + f"({B64}{{22}})#({B64}{{22}})(?!{B64})", text)
    assert mm, text
    r.link = Link(mm.group(0), mm.group(1), mm.group(2))
    return r


def unlock_rich(browser, r: RichSent) -> None:
    """Open the link, type the password; the message is shown."""
    browser.get(r.link.url)
    wait = WebDriverWait(browser, 60)
    wait.until(EC.visibility_of_element_located((By.ID, "pw")))
    browser.find_element(By.ID, "pw").send_keys(r.password + "\n")
    wait.until(EC.visibility_of_element_located((By.ID, "message")))


def test_v2_link_shows_text_html_inline_image_and_attachment(start_proxy, upstream,  # noqa: F811
                                                             browser):
    """The proxy renders the message at send time (a view document): the
    browser shows its subject, its text, its HTML with the cid: image inlined,
    and its attachment downloads byte-identical - not the raw MIME."""
    p = start_proxy(upstream)
    r = send_rich(p, "correct horse " + os.urandom(3).hex())
    unlock_rich(browser, r)
    assert browser.find_element(By.ID, "subject").text == r.subject
    assert ALICE in browser.find_element(By.ID, "headers").text

    # The HTML part in its sandboxed frame, its inline image decoded.
    frame = browser.find_element(By.CSS_SELECTOR, "#body iframe")
    assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    browser.switch_to.frame(frame)
    assert r.html_marker in browser.find_element(By.ID, "hello").text
    img = browser.find_element(By.ID, "logo")
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return arguments[0].complete", img))
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 3
    assert browser.execute_script("return arguments[0].naturalHeight", img) == 2
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    browser.switch_to.default_content()

    # The text part, behind its summary.
    browser.find_element(By.TAG_NAME, "summary").click()
    assert r.text_marker in browser.find_element(By.ID, "text").text

    links = {a.text: a for a in browser.find_elements(By.CSS_SELECTOR, "#attachments a")}
    assert "message.eml" not in links, "the raw MIME was sealed, not a view document"
    assert "figures.bin" in links, list(links)
    links["figures.bin"].click()
    got = wait_download(browser.downloads, len(r.attachment))
    assert got.name == "figures.bin" and got.read_bytes() == r.attachment
    assert console_problems(browser) == []


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
    # The view document the proxy rendered: the text, and the attachment
    # (decoded) byte for byte as the client attached it.
    shown = browser.find_element(By.ID, "text").text
    assert s.marker in shown, shown[:2000]
    links = {a.text: a for a in browser.find_elements(By.CSS_SELECTOR, "#attachments a")}
    assert list(links) == ["plans.bin"], list(links)
    links["plans.bin"].click()
    att = next(part.get_content() for part in
               email.message_from_bytes(s.msg, policy=email.policy.default).walk()
               if part.get_filename() == "plans.bin")
    got = wait_download(browser.downloads, len(att))
    assert got.read_bytes() == att
    assert got.name == "plans.bin"
    assert console_problems(browser) == []


def test_v2_wrong_passwords_destroy_the_link_and_the_page_says_so(start_proxy, upstream,  # noqa: F811
                                                                 browser):
    p = start_proxy(upstream, max_failed=2)
    s = send(p, "the right one " + os.urandom(3).hex())
    browser.get(s.link.url)
    wait = WebDriverWait(browser, 60)
    wait.until(EC.visibility_of_element_located((By.ID, "pw")))
    browser.find_element(By.ID, "pw").send_keys("wrong 1\n")
    wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "Wrong password"))
    wait.until(lambda b: b.find_element(By.ID, "pw").is_enabled())
    browser.find_element(By.ID, "pw").send_keys("wrong 2\n")
    wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "this link has been destroyed"))
    assert not browser.find_element(By.ID, "unlock").is_displayed()
    # Opened again later (a new load: the same URL with its fragment alone
    # would not reload the page): the link no longer works.
    browser.get("about:blank")
    browser.get(s.link.url)
    wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "This link no longer works"))
    assert not browser.find_element(By.ID, "unlock").is_displayed()
    assert console_problems(browser) == []

# ---- a view document ----
# A view document written here, independently of the proxy's writer,
# following docs/formats.md (fields the proxy's renderer does not produce
# from this test's messages: a script in the HTML, Cc absent), sealed into a
# v2 record by tests/vectors/link_v2.py (the independent implementation of
# the proxy's side), then stored in the real viewer's SQLite store.  The
# viewer and the browser are the real ones.

def view_document(header: dict, attachments: list[bytes]) -> bytes:
    j = json.dumps(header).encode()
    return b"SPVIEWD1" + len(j).to_bytes(4, "big") + j + b"".join(attachments)


def test_view_document_shows_headers_text_html_and_attachments(tmp_path, browser):
    att1, att2 = os.urandom(150_000), "Grüße\n".encode() * 100
    header = {
        "v": 1, "from": "Jörg Müller <joerg@example.com>", "to": "Dave <dave@example.org>",
        "cc": None, "date": "Tue, 1 Dec 2026 10:00:00 +0000", "subject": "Quarterly résumé",
        "message_id": "<q4@example.com>", "text": "Grüße aus Köln <b>not bold</b>",
        "html": '<p id="hello">Hello from the HTML part</p>'
                '<script>parent.document.title = "pwned"</script>'
                '<a id="out" href="https://example.invalid/">a link</a>',
        "sender_key": None, "html_refused": False, "truncated": False,
        "attachments": [{"name": "résumé final.bin", "type": "application/pdf", "size": len(att1)},
                        {"name": "notes.txt", "type": "text/plain", "size": len(att2)}],
    }
    v = Viewer(tmp_path / "viewer")
    v.write_config()
    v.start()
    try:
        link_id, secret = store_v2_link(v.store, view_document(header, [att1, att2]),
                                        "open sesame", "joerg@example.com", "the usual")
        browser.get(f"{v.base_url}{link_id}#{secret}")
        wait = WebDriverWait(browser, 60)
        wait.until(EC.visibility_of_element_located((By.ID, "pw")))
        assert "joerg@example.com" in browser.find_element(By.ID, "from-line").text
        browser.find_element(By.ID, "pw").send_keys("open sesame\n")
        wait.until(EC.visibility_of_element_located((By.ID, "message")))
        assert browser.find_element(By.ID, "subject").text == "Quarterly résumé"
        assert browser.title == "Quarterly résumé"
        hdrs = browser.find_element(By.ID, "headers").text
        assert "Jörg Müller <joerg@example.com>" in hdrs and "Dave <dave@example.org>" in hdrs
        assert "Cc" not in hdrs

        # The HTML part in its sandboxed frame: shown, its script did not run,
        # its links open a new tab.
        frame = browser.find_element(By.CSS_SELECTOR, "#body iframe")
        assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        browser.switch_to.frame(frame)
        assert browser.find_element(By.ID, "hello").text == "Hello from the HTML part"
        assert browser.find_element(By.TAG_NAME, "base").get_attribute("target") == "_blank"
        browser.switch_to.default_content()
        assert browser.title == "Quarterly résumé"
        # The text part: text, never markup.
        browser.find_element(By.TAG_NAME, "summary").click()
        assert browser.find_element(By.ID, "text").text == "Grüße aus Köln <b>not bold</b>"

        links = browser.find_elements(By.CSS_SELECTOR, "#attachments a")
        assert [a.text for a in links] == ["résumé final.bin", "notes.txt"]
        links[0].click()
        got = wait_download(browser.downloads, len(att1))
        assert got.read_bytes() == att1 and got.name == "résumé final.bin"
        assert console_problems(browser) == []
    finally:
        v.stop()


def test_v2_page_on_a_phone_with_the_keyboard_only(start_proxy, upstream, browser):  # noqa: F811
    """Issue 15 item 6: a phone-sized window, no mouse.  Tab reaches the
    password field, Enter opens the message, Tab reaches the attachment and
    Enter downloads it; nothing is wider than the screen (no sideways
    scrolling) and every field has its label."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    p = start_proxy(upstream)
    r = send_rich(p, "correct horse " + os.urandom(3).hex())
    browser.set_window_size(360, 740)
    browser.get(r.link.url)
    wait = WebDriverWait(browser, 60)
    wait.until(EC.visibility_of_element_located((By.ID, "pw")))
    assert browser.execute_script("return window.innerWidth") <= 400

    def fits() -> bool:
        return browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")

    def tab_to(pred, limit: int = 40) -> None:
        for _ in range(limit):
            if pred(browser.switch_to.active_element):
                return
            ActionChains(browser).send_keys(Keys.TAB).perform()
        raise AssertionError("Tab never reached the element")

    assert fits()
    for field in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), textarea"):
        if field.is_displayed():
            fid = field.get_attribute("id")
            assert browser.find_elements(By.CSS_SELECTOR, f"label[for={fid}]"), fid
    tab_to(lambda e: e.get_attribute("id") == "pw")
    ActionChains(browser).send_keys(r.password + Keys.ENTER).perform()
    wait.until(EC.visibility_of_element_located((By.ID, "message")))
    assert browser.find_element(By.ID, "subject").text == r.subject
    assert fits()
    tab_to(lambda e: e.tag_name == "a" and e.text == "figures.bin")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    got = wait_download(browser.downloads, len(r.attachment))
    assert got.read_bytes() == r.attachment
    assert console_problems(browser) == []


def test_progress_moves_while_a_large_message_decrypts(tmp_path, browser):
    """Issue 15: the page shows progress while it works.  A 12 MB message:
    a recorder on every animation frame sees the bar strictly between empty
    and full while the status says "Decrypting" (a decryption that never
    gave the browser a frame would only ever show it full)."""
    att = os.urandom(12 * 1024 * 1024)
    header = {"v": 1, "from": "Alice <alice@example.com>", "to": "dave@example.org", "cc": None,
              "date": None, "subject": "Large", "message_id": None, "text": "see attached",
              "html": None, "sender_key": None, "html_refused": False, "truncated": False,
              "attachments": [{"name": "big.bin", "type": "application/octet-stream",
                               "size": len(att)}]}
    v = Viewer(tmp_path / "viewer")
    v.write_config()
    v.start()
    try:
        link_id, secret = store_v2_link(v.store, view_document(header, [att]), "open sesame",
                                        "alice@example.com", "")
        browser.get(f"{v.base_url}{link_id}#{secret}")
        wait = WebDriverWait(browser, 60)
        wait.until(EC.visibility_of_element_located((By.ID, "pw")))
        browser.execute_script("""
            window.seen = [];
            const p = document.getElementById("progress");
            const s = document.getElementById("status");
            (function frame() {
                if (s.textContent.startsWith("Decrypting"))
                    window.seen.push(p.value / p.max);
                requestAnimationFrame(frame);
            })();""")
        browser.find_element(By.ID, "pw").send_keys("open sesame\n")
        wait.until(EC.visibility_of_element_located((By.ID, "message")))
        seen = browser.execute_script("return window.seen")
        assert any(0 < x < 1 for x in seen), seen
        assert browser.find_element(By.ID, "subject").text == "Large"
        assert console_problems(browser) == []
    finally:
        v.stop()
