#!/usr/bin/python3
"""Known-answer vectors for the sealpost v1 formats (docs/formats.md).

This is a second, independent implementation of the two libsodium formats,
written from docs/formats.md in Python with PyNaCl (Debian: python3-nacl).  It
shares only libsodium's primitives with the C code, not its framing.

    vectors.py generate DIR   write DIR/link-v1.txt and DIR/sodium-v1.txt
    vectors.py verify DIR     recompute every byte of both files and decrypt
                              each sealed blob; exit 1 on any difference

All "random" inputs are derived from fixed labels with BLAKE2b, so `generate`
always writes the same files.  The C unit tests (test_link_envelope,
test_sodium) check that the C code produces exactly these bytes.

File syntax (GLib key file): one [group] per vector, `name = value` lines.
Values are lowercase hex unless the name says otherwise (`password`, `token`,
`*_line`, numbers).  `plaintext_mod251_length = N` stands for the N-byte
plaintext whose byte i is i mod 251; such vectors give `sealed_length` and
`sealed_sha256` instead of the full `sealed` hex.
"""
import hashlib
import sys
import base64

import nacl.bindings as nb

CHUNK = 65536
ABYTES = nb.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = nb.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
LINK_MSG_MAGIC = b"SPLNKMSG"
LINK_KEY_MAGIC = b"SPLNKKEY"
SODIUM_MAGIC = b"SPSODIUM"
VERSION = 1
KEK_LABEL = b"sealpost link kek v1"


def seed(label, n=32):
    return hashlib.blake2b(b"sealpost test vector: " + label.encode(), digest_size=n).digest()


def pattern(n):
    return bytes(i % 251 for i in range(n))


# ---- the chunked stream (docs/formats.md, "Chunked stream") ----

def stream_seal(key, header, ad, msg):
    st = nb.crypto_secretstream_xchacha20poly1305_state()
    # init_push() = random header + init_pull(): a fixed header gives the same state.
    nb.crypto_secretstream_xchacha20poly1305_init_pull(st, header, key)
    out = [header]
    chunks = [msg[i:i + CHUNK] for i in range(0, len(msg), CHUNK)] or [b""]
    for i, c in enumerate(chunks):
        tag = TAG_FINAL if i == len(chunks) - 1 else TAG_MESSAGE
        out.append(nb.crypto_secretstream_xchacha20poly1305_push(st, c, ad if i == 0 else None, tag))
    return b"".join(out)


def stream_open(key, ad, data):
    st = nb.crypto_secretstream_xchacha20poly1305_state()
    nb.crypto_secretstream_xchacha20poly1305_init_pull(st, data[:24], key)
    off, i, out = 24, 0, []
    while True:
        c = data[off:off + CHUNK + ABYTES]
        off += len(c)
        if len(c) < ABYTES:
            raise ValueError("truncated")
        m, tag = nb.crypto_secretstream_xchacha20poly1305_pull(st, c, ad if i == 0 else None)
        out.append(m)
        if tag == TAG_FINAL:
            if off != len(data):
                raise ValueError("trailing data")
            return b"".join(out)
        if tag != TAG_MESSAGE or len(c) != CHUNK + ABYTES:
            raise ValueError("bad chunk")
        i += 1


# ---- link envelope ----

def link_seal(key, header, msg):
    prefix = LINK_MSG_MAGIC + bytes([VERSION])
    return prefix + stream_seal(key, header, prefix, msg)


def link_open(key, blob):
    assert blob[:8] == LINK_MSG_MAGIC and blob[8] == VERSION
    return stream_open(key, blob[:9], blob[9:])


def link_kek(password, link_id, secret, salt, ops, mem_kib):
    pw = nb.crypto_pwhash_alg(32, password, salt, ops, mem_kib * 1024, nb.crypto_pwhash_ALG_ARGON2ID13)
    kek = hashlib.blake2b(KEK_LABEL + link_id + secret, key=pw, digest_size=32).digest()
    return pw, kek


def link_wrap(key, password, link_id, secret, ops, mem_kib, salt, nonce):
    hdr = LINK_KEY_MAGIC + bytes([VERSION]) + ops.to_bytes(4, "big") + mem_kib.to_bytes(4, "big") + salt + nonce
    pw, kek = link_kek(password, link_id, secret, salt, ops, mem_kib)
    ct = nb.crypto_aead_xchacha20poly1305_ietf_encrypt(key, hdr + link_id, nonce, kek)
    return pw, kek, hdr + ct


def link_unwrap(blob, password, link_id, secret):
    assert blob[:8] == LINK_KEY_MAGIC and blob[8] == VERSION and len(blob) == 105
    ops = int.from_bytes(blob[9:13], "big")
    mem = int.from_bytes(blob[13:17], "big")
    _, kek = link_kek(password, link_id, secret, blob[17:33], ops, mem)
    return nb.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[57:], blob[:57] + link_id, blob[33:57], kek)


def token(link_id, secret):
    return base64.urlsafe_b64encode(link_id + secret).decode().rstrip("=")


# ---- sodium copy ----

def box_seal_det(m, pk, esk):
    """crypto_box_seal() with a given ephemeral secret key."""
    epk = nb.crypto_scalarmult_base(esk)
    nonce = hashlib.blake2b(epk + pk, digest_size=24).digest()
    return epk + nb.crypto_box(m, nonce, pk, esk)


def sodium_seal(pks, key, header, esks, msg):
    hdr = SODIUM_MAGIC + bytes([VERSION]) + len(pks).to_bytes(2, "big")
    hdr += b"".join(box_seal_det(key, pk, esk) for pk, esk in zip(pks, esks))
    return hdr + stream_seal(key, header, hdr, msg)


def sodium_open(blob, pk, sk):
    assert blob[:8] == SODIUM_MAGIC and blob[8] == VERSION
    n = int.from_bytes(blob[9:11], "big")
    hdr_len = 11 + 80 * n
    for i in range(n):
        try:
            key = nb.crypto_box_seal_open(blob[11 + 80 * i:11 + 80 * (i + 1)], pk, sk)
        except Exception:
            continue
        return stream_open(key, blob[:hdr_len], blob[hdr_len:])
    raise ValueError("no slot opens")


def public_line(pk):
    return "sealpost1:" + base64.b64encode(pk).decode()


def secret_line(sk, pk):
    return "sealpost-secret1:" + base64.b64encode(sk + pk).decode()


# ---- the vector sets ----

SHORT_MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
             b"Subject: lunch\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"\r\nSee you at noon.\r\n")


def put_plaintext(v, msg, big):
    if big:
        v["plaintext_mod251_length"] = str(len(msg))
    else:
        v["plaintext"] = msg.hex()


def put_sealed(v, sealed, big):
    if big:
        v["sealed_length"] = str(len(sealed))
        v["sealed_sha256"] = hashlib.sha256(sealed).hexdigest()
    else:
        v["sealed"] = sealed.hex()


def link_vectors():
    out = []
    for name, msg, big in [("message-short", SHORT_MSG, False),
                           ("message-empty", b"", False),
                           ("message-3-chunks", pattern(2 * CHUNK + 1000), True)]:
        key, header = seed(name + " key"), seed(name + " header", 24)
        v = {"key": key.hex(), "stream_header": header.hex()}
        put_plaintext(v, msg, big)
        put_sealed(v, link_seal(key, header, msg), big)
        out.append((name, v))
    for name, password, ops, mem in [("wrap-generated-password", "bakit-monel-sutar-figon", 3, 65536),
                                     ("wrap-utf8-password", "Grüße, señor ✉ 1234", 2, 1024)]:
        key = seed(name + " key")
        link_id, secret = seed(name + " id", 16), seed(name + " secret", 16)
        salt, nonce = seed(name + " salt", 16), seed(name + " nonce", 24)
        pw, kek, blob = link_wrap(key, password.encode(), link_id, secret, ops, mem, salt, nonce)
        out.append((name, {
            "key": key.hex(), "password": password, "password_utf8": password.encode().hex(),
            "link_id": link_id.hex(), "link_secret": secret.hex(), "token": token(link_id, secret),
            "opslimit": str(ops), "memlimit_kib": str(mem), "salt": salt.hex(), "nonce": nonce.hex(),
            "argon2id": pw.hex(), "kek": kek.hex(), "wrapped": blob.hex()}))
    return out


def sodium_vectors():
    out = []
    for name, nrcpt, msg, big in [("copy-1-recipient", 1, SHORT_MSG, False),
                                  ("copy-empty", 1, b"", False),
                                  ("copy-3-recipients-3-chunks", 3, pattern(2 * CHUNK + 1000), True)]:
        v = {}
        sks = [seed(f"{name} recipient {i} sk") for i in range(nrcpt)]
        pks = [nb.crypto_scalarmult_base(sk) for sk in sks]
        esks = [seed(f"{name} ephemeral {i} sk") for i in range(nrcpt)]
        key, header = seed(name + " key"), seed(name + " header", 24)
        v["recipients"] = str(nrcpt)
        for i in range(nrcpt):
            v[f"recipient{i}_sk"] = sks[i].hex()
            v[f"recipient{i}_pk"] = pks[i].hex()
            v[f"recipient{i}_public_line"] = public_line(pks[i])
            v[f"recipient{i}_secret_line"] = secret_line(sks[i], pks[i])
            v[f"ephemeral{i}_sk"] = esks[i].hex()
        v["key"] = key.hex()
        v["stream_header"] = header.hex()
        put_plaintext(v, msg, big)
        put_sealed(v, sodium_seal(pks, key, header, esks, msg), big)
        out.append((name, v))
    return out


def render(title, vectors):
    lines = [f"# {title}", "# Generated by tests/vectors/vectors.py (see its docstring for the syntax).", ""]
    for name, v in vectors:
        lines.append(f"[{name}]")
        lines += [f"{k} = {val}" for k, val in v.items()]
        lines.append("")
    return "\n".join(lines)


FILES = {
    "link-v1.txt": ("sealpost link envelope v1 known-answer vectors (docs/formats.md)", link_vectors),
    "sodium-v1.txt": ("sealpost sodium copy v1 known-answer vectors (docs/formats.md)", sodium_vectors),
}


def parse(text):
    groups, cur = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            cur = groups.setdefault(line[1:-1], {})
        else:
            k, _, val = line.partition(" = ")
            cur[k] = val
    return groups


def check_decrypt(fname, groups):
    """Open every sealed blob with the recorded keys (big ones are regenerated)."""
    for name, v in groups.items():
        if "plaintext" in v:
            msg = bytes.fromhex(v["plaintext"])
        elif "plaintext_mod251_length" in v:
            msg = pattern(int(v["plaintext_mod251_length"]))
        else:
            msg = None
        if fname.startswith("link") and "wrapped" in v:
            key = link_unwrap(bytes.fromhex(v["wrapped"]), v["password"].encode(),
                              bytes.fromhex(v["link_id"]), bytes.fromhex(v["link_secret"]))
            assert key == bytes.fromhex(v["key"]), name
        elif fname.startswith("link") and "sealed" in v:
            assert link_open(bytes.fromhex(v["key"]), bytes.fromhex(v["sealed"])) == msg, name
        elif fname.startswith("sodium") and "sealed" in v:
            for i in range(int(v["recipients"])):
                pk, sk = bytes.fromhex(v[f"recipient{i}_pk"]), bytes.fromhex(v[f"recipient{i}_sk"])
                assert sodium_open(bytes.fromhex(v["sealed"]), pk, sk) == msg, name


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("generate", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, d = sys.argv[1], sys.argv[2]
    bad = 0
    for fname, (title, make) in FILES.items():
        want = render(title, make())
        path = f"{d}/{fname}"
        if mode == "generate":
            with open(path, "w", encoding="utf-8") as f:
                f.write(want)
            print(f"wrote {path}")
            continue
        with open(path, encoding="utf-8") as f:
            have = f.read()
        if have != want:
            print(f"{path}: differs from what this implementation computes", file=sys.stderr)
            bad = 1
            continue
        check_decrypt(fname, parse(have))
        print(f"{path}: ok")
    return bad


if __name__ == "__main__":
    sys.exit(main())
