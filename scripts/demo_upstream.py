#!/usr/bin/python3
"""demo_upstream.py DIR PORT - a stand-in for your mail provider, for the demo.

A real SMTP submission server (aiosmtpd) on 127.0.0.1:PORT with STARTTLS
(a certificate from a CA made here, DIR/pki/ca.pem) and AUTH (user
demo@example.com, password in DIR/upstream.pass).  Every message it accepts is
written to DIR/received/NNN.eml, exactly as sealpost sent it: that is what
your provider would see."""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from pki import TestPKI            # noqa: E402
from upstream import Upstream      # noqa: E402

USER = "demo@example.com"
PASSWORD = "demo-upstream-password"


def main() -> None:
    work = Path(sys.argv[1])
    port = int(sys.argv[2])
    received = work / "received"
    received.mkdir(parents=True, exist_ok=True)
    pki = TestPKI(work / "pki")
    (work / "upstream.pass").write_text(PASSWORD + "\n")
    (work / "upstream.pass").chmod(0o600)
    up = Upstream(pki, mode="starttls", users={USER: PASSWORD}, port=port).start()
    (work / "upstream.ready").write_text(str(pki.ca_path))
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            msgs = list(up.messages)
            for m in msgs[seen:]:
                seen += 1
                name = received / f"{seen:03d}.eml"
                name.write_bytes(b"X-Demo-Envelope: from=<%s> to=%s\r\n" % (
                    m.mail_from.encode(), ",".join(m.rcpt_tos).encode()) + m.content)
    except KeyboardInterrupt:
        pass
    finally:
        up.stop()


if __name__ == "__main__":
    main()
