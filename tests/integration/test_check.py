"""`sealpost check --rcpt`: every recipient outcome, readable and as JSON
(issue 9).  OpenPGP keys (fingerprint, validity, expiry, refusal reasons) are
covered in test_pgp.py::test_check_rcpt_reports_keys."""
from __future__ import annotations

import json

from sodiumkeys import SodiumKey, write_recipients
from test_cli import config_text

CAROL = "carol@example.org"


def empty_keyring(tmp_path) -> str:
    """A keyring directory with nothing in it: GnuPG reads it without complaint,
    and it holds no key (a named keyring that does not exist is a fault)."""
    d = tmp_path / "empty-gnupg"
    d.mkdir(mode=0o700, exist_ok=True)
    return str(d)


def run_check(cli, write_file, text, *addrs, json_out=False):
    f = write_file("sealpost.conf", text)
    args = ["check", "-c", f] + (["--json"] if json_out else []) + ["--rcpt", *addrs]
    return cli(*args, timeout=60)


def test_every_outcome_readable_and_json(cli, upstream, write_file, tmp_path, sealpost_bin):
    key = SodiumKey.make(sealpost_bin, tmp_path / "keys", CAROL)
    rf = write_recipients(tmp_path / "sodium-recipients", [key])
    text = config_text(upstream, tmp_path, sodium={"recipients": str(rf)},
                       link={"base_url": "https://mail.example.org/s/"},
                       policy={"no_key": "link"}, pgp={"gnupg_home": empty_keyring(tmp_path)})
    r = run_check(cli, write_file, text, CAROL, "dave@example.com", "not-an-address")
    assert r.rc == 1, str(r)        # the bad address is a problem
    out = r.stdout
    assert f"rcpt        {CAROL}: sodium {key.public}" in out, out
    assert "rcpt        dave@example.com: link" in out, out
    assert "not-an-address: FAILED: not a mail address" in out, out
    assert "link        https://mail.example.org/s/" in out, out
    # The harness makes v1 links ([link] version = 1): check says which form,
    # and the default, 2, is the v2 form.
    assert "link        https://mail.example.org/s/<token> (" in out, out
    assert out.rstrip().endswith("check FAILED"), out
    v2 = text.replace("version = 1\n", "version = 2\n")
    assert v2 != text
    out2 = run_check(cli, write_file, v2, "dave@example.com").stdout
    assert "link        https://mail.example.org/s/<link-id>#<link-secret> (" in out2, out2

    r = run_check(cli, write_file, text, CAROL, "dave@example.com", json_out=True)
    assert r.rc == 0, str(r)
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["upstream"]["ok"] is True
    assert doc["upstream"]["tls"].startswith("TLSv1."), doc["upstream"]
    assert "subject" in doc["upstream"]["certificate"]
    assert doc["upstream"]["auth"] == "ok"
    assert doc["sodium_recipients"] == 1
    by = {x["address"]: x for x in doc["recipients"]}
    assert by[CAROL]["form"] == "sodium" and by[CAROL]["detail"] == key.public
    assert by["dave@example.com"]["form"] == "link" and by["dave@example.com"]["status"] == "ok"


def test_refused_and_plain_outcomes(cli, upstream, write_file, tmp_path):
    nokeys = {"gnupg_home": empty_keyring(tmp_path)}
    r = run_check(cli, write_file, config_text(upstream, tmp_path, policy={"no_key": "reject"}, pgp=nokeys),
                  "dave@example.com", json_out=True)
    assert r.rc == 1, str(r)
    doc = json.loads(r.stdout)
    [d] = doc["recipients"]
    assert doc["ok"] is False and d["status"] == "refused" and d["form"] == "none"
    assert "no_key = reject" in d["reason"]

    r = run_check(cli, write_file, config_text(upstream, tmp_path, policy={"no_key": "link"}, pgp=nokeys),
                  "dave@example.com")
    assert r.rc == 1 and "REFUSED" in r.stdout and "link mode is not configured" in r.stdout, str(r)

    r = run_check(cli, write_file, config_text(upstream, tmp_path, policy={"no_key": "plain"}, pgp=nokeys),
                  "dave@example.com")
    assert r.rc == 0 and "plain" in r.stdout and "WARNING: this recipient would get the message unencrypted" \
        in r.stdout, str(r)


def test_upstream_failure_in_json(cli, upstream, write_file, tmp_path):
    text = config_text(upstream, tmp_path)
    upstream.stop()
    f = write_file("sealpost.conf", text)
    r = cli("check", "-c", f, "--json", timeout=60)
    assert r.rc == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["upstream"]["ok"] is False
    assert doc["upstream"]["error"].startswith("451 4.4.1"), doc["upstream"]
