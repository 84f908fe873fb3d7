"""Link envelope v2 and the OPRF: the committed vectors (tests/vectors/link-v2.txt,
tests/vectors/oprf/), checked by the independent Python implementation
tests/vectors/link_v2.py.  The C side checks the same files in the unit tests
test_oprf and test_link_v2."""
import shutil
import subprocess
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def run_verify(d):
    return subprocess.run(["/usr/bin/python3", str(VECTORS / "link_v2.py"), "verify", str(d)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)


def test_link_v2_vectors_verify_with_an_independent_implementation():
    p = run_verify(VECTORS)
    assert p.returncode == 0, p.stdout.decode()[-3000:]
    assert b"ok: RFC 9497 A.1.1" in p.stdout


def test_link_v2_verify_notices_one_changed_byte(tmp_path):
    """The verifier recomputes every value: one changed hex digit of the proof
    (or of an RFC 9497 vector) fails it."""
    shutil.copytree(VECTORS / "oprf", tmp_path / "oprf")
    text = (VECTORS / "link-v2.txt").read_text(encoding="utf-8")
    i = text.index("proof = ") + len("proof = ")
    flipped = text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1:]
    (tmp_path / "link-v2.txt").write_text(flipped, encoding="utf-8")
    p = run_verify(tmp_path)
    assert p.returncode != 0
    assert b"v2-generated-password" in p.stdout

    (tmp_path / "link-v2.txt").write_text(text, encoding="utf-8")
    assert run_verify(tmp_path).returncode == 0
    rfc = tmp_path / "oprf" / "rfc9497-ristretto255-sha512.txt"
    t = rfc.read_text(encoding="utf-8")
    rfc.write_text(t.replace("Output = 527759c3", "Output = 527759c4"), encoding="utf-8")
    p = run_verify(tmp_path)
    assert p.returncode != 0
    assert b"vector-1" in p.stdout
