"""The link v2 page and its scripts (docs/viewer.md, "The v2 page").

Served bytes: the page at every 22-character link path is one and the same
file, the scripts under /static/ are exactly what viewer/build.py makes from
viewer/ and the pinned npm packages, with the page's CSP and the security
headers; two clean builds (fresh `npm ci` each) give byte-identical assets.
In headless Chromium: the page loads its scripts and libsodium's WebAssembly
under that CSP with no violation, and without JavaScript it says why it needs it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import AVAILABLE, MISSING, By, EC, WebDriverWait, open_browser
from viewer import Viewer, assert_security_headers

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SEALPOST_BUILD_DIR", REPO / "build"))
PAGE_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
            "connect-src 'self'; img-src 'self' data:; frame-src 'self' blob:; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
ASSETS = ["page.css", "app.js", "linkv2.js", "sodium.mjs", "libsodium-sumo.mjs", "openpgp.mjs"]
ID1, ID2 = "fWnT1smj3HiWYNehHEWTKw", "TPDtnir1I3Lx8C9IlWWCfA"   # from tests/vectors/link-v2.txt
SECRET = "i3_IcM_xqcFsylwf7u_MKg"


def build_assets(src: Path, out: Path) -> dict[str, bytes]:
    subprocess.run([sys.executable, str(src / "build.py"), "--dir", str(out),
                    "--c", str(out / "web_assets_data.c")], check=True)
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.fixture
def viewer(tmp_path):
    v = Viewer(tmp_path / "viewer")
    v.write_config()
    v.start()
    yield v
    v.stop()


def test_page_and_assets_are_the_built_bytes(tmp_path, viewer):
    built = build_assets(REPO / "viewer", tmp_path / "assets")
    a = viewer.get(f"/s/{ID1}")
    b = viewer.get(f"/s/{ID2}")
    assert a.status == b.status == 200
    assert a.body == b.body == built["page.html"]          # the same bytes for every link
    assert a.header("content-type") == "text/html; charset=utf-8"
    assert a.header("content-security-policy") == PAGE_CSP
    assert_security_headers(a, "v2 page")
    assert b"<noscript>" in a.body and b"decrypted here in your browser" in a.body
    for name in ASSETS:
        r = viewer.get(f"/static/{name}")
        assert r.status == 200, name
        assert r.body == built[name], name
        sha = hashlib.sha256(r.body).hexdigest()
        assert r.header("etag") == f'"{sha}"'
        assert r.header("cache-control") == "no-cache"
        assert r.header("x-content-type-options") == "nosniff"
        assert r.header("content-type") == ("text/css; charset=utf-8" if name.endswith(".css")
                                            else "text/javascript; charset=utf-8")
        again = viewer.get(f"/static/{name}", headers={"If-None-Match": f'"{sha}"'})
        assert again.status == 304 and again.body == b""
        head = viewer.request("HEAD", f"/static/{name}")
        assert head.status == 200 and head.body == b""
    # Each line of SHA256SUMS is what the server says in its ETag.
    sums = dict(line.split("  ")[::-1] for line in built["SHA256SUMS"].decode().splitlines())
    assert sums["app.js"] == hashlib.sha256(built["app.js"]).hexdigest()
    # The compiled-in table is this build's.
    assert (BUILD / "linkserver" / "web_assets_data.c").read_bytes() == built["web_assets_data.c"]
    for bad in ("/static/page.html", "/static/nope.js", "/static/", "/static/app.js/x"):
        assert viewer.get(bad).status == 404, bad
    # Other lengths are not v2 links; a v1 token keeps its own handler (410 here).
    assert viewer.get(f"/s/{ID1}A").status == 410
    v1 = viewer.get("/s/" + "A" * 43)
    assert v1.status == 410 and b"needs JavaScript" not in v1.body


def test_two_clean_builds_give_identical_assets(tmp_path):
    outs = []
    for n in (1, 2):
        src = tmp_path / f"src{n}"
        shutil.copytree(REPO / "viewer", src, ignore=shutil.ignore_patterns("node_modules"))
        # npm's own cache, filled by the `npm ci` that set up this tree: no network.
        subprocess.run(["npm", "ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--prefix", str(src)], check=True, capture_output=True)
        outs.append(build_assets(src, tmp_path / f"out{n}"))
    assert outs[0].keys() == outs[1].keys()
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], name
    assert outs[0]["web_assets_data.c"] == (BUILD / "linkserver" / "web_assets_data.c").read_bytes()


# ---- in the browser ----


def console_problems(drv) -> list[str]:
    """Console entries that are CSP violations or script errors (a 404/410
    from the viewer's API is a network line, expected here)."""
    bad = []
    for e in drv.get_log("browser"):
        msg = e.get("message", "")
        if "Content Security Policy" in msg or "Refused to" in msg:
            bad.append(msg)
        elif e.get("level") == "SEVERE" and "Failed to load resource" not in msg:
            bad.append(msg)
    return bad


def test_page_loads_under_its_csp_in_chromium(viewer, browser):
    # No v2 record with this id: the page gets as far as asking for the
    # params, which needs libsodium (WebAssembly) ready first.
    browser.get(f"{viewer.base_url}{ID1}#{SECRET}")
    WebDriverWait(browser, 30).until(EC.visibility_of_element_located((By.ID, "error")))
    assert "This link no longer works" in browser.find_element(By.ID, "error").text
    assert browser.execute_script("return typeof WebAssembly") == "object"
    assert console_problems(browser) == []
    assert browser.find_element(By.ID, "unlock").is_displayed() is False


def test_page_without_fragment_says_the_link_is_incomplete(viewer, browser):
    browser.get(f"{viewer.base_url}{ID1}")
    WebDriverWait(browser, 30).until(EC.visibility_of_element_located((By.ID, "error")))
    assert "This link is incomplete" in browser.find_element(By.ID, "error").text
    assert console_problems(browser) == []


def test_page_without_javascript_explains_why(tmp_path, viewer):
    if not AVAILABLE:
        pytest.skip(MISSING)
    (tmp_path / "nojs").mkdir()
    drv = open_browser(tmp_path / "nojs", javascript=False)
    try:
        drv.get(f"{viewer.base_url}{ID1}#{SECRET}")
        text = drv.find_element(By.TAG_NAME, "body").text
        assert "decrypted here in your browser" in text
        assert "needs JavaScript" in text
        assert not drv.find_element(By.ID, "unlock").is_displayed()
    finally:
        drv.quit()
