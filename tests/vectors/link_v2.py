#!/usr/bin/python3
"""Known-answer vectors for link envelope v2 (docs/formats.md, "Link envelope (v2)").

A second implementation of the whole v2 key derivation, written from
docs/formats.md and RFC 9497 / RFC 9380 in Python: expand_message_xmd,
HashToGroup, HashToScalar, the OPRF (Blind, BlindEvaluate, Finalize, Evaluate,
DeriveKeyPair), the labels, the record layout, the unlock proof.  It shares no
code with crypto/oprf.c or crypto/link_v2.c, nor with libsodium's group code:
ristretto255 itself (decode, encode, the element derivation map, addition and
scalar multiplication, RFC 9496) is written here in Python integers, as are
the scalar reduction and inversion; hashlib gives SHA-512 and BLAKE2b, and
PyNaCl (Debian: python3-nacl) only Argon2id, Ed25519 and XChaCha20-Poly1305.

    link_v2.py generate DIR   check the OPRF against RFC 9497 A.1.1, then
                              write DIR/link-v2.txt
    link_v2.py verify DIR     check the OPRF against RFC 9497 A.1.1, recompute
                              every value of DIR/link-v2.txt and run the whole
                              unlock (blind, evaluate, finalize, proof, unwrap);
                              exit 1 on any difference

All "random" inputs are derived from fixed labels with BLAKE2b, so `generate`
always writes the same file.  tests/unit/test_link_v2.c checks that the C code
produces exactly these bytes.  File syntax: as tests/vectors/link-v1.txt (GLib
key file, lowercase hex unless the name says otherwise).
"""
import base64
import hashlib
import os
import sys

import nacl.bindings as nb

# ---- ristretto255 (RFC 9496), in Python integers ----

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # group order
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _neg(x):
    return x & 1  # IS_NEGATIVE: the low bit of the canonical encoding


def _abs(x):
    return (P - x) % P if _neg(x) else x


def _sqrt_ratio_m1(u, v):
    r = (u * pow(v, 3, P)) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * r * r % P
    correct = check == u % P
    flipped = check == (-u) % P
    flipped_i = check == (-u * SQRT_M1) % P
    if flipped or flipped_i:
        r = r * SQRT_M1 % P
    return correct or flipped, _abs(r)


# The constants of RFC 9496 4.1 (a = -1), with the checks that define them.
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952
assert SQRT_M1 == 19681161376707505956807079304988542015446066515923890162744021073123829784752
assert SQRT_AD_MINUS_ONE ** 2 % P == (-D - 1) % P
assert INVSQRT_A_MINUS_D ** 2 * (-1 - D) % P == 1
assert ONE_MINUS_D_SQ == (1 - D * D) % P and D_MINUS_ONE_SQ == (D - 1) ** 2 % P
IDENTITY = (0, 1, 1, 0)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(n, pt):
    q = IDENTITY
    while n:
        if n & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        n >>= 1
    return q


def r255_decode(b):
    if len(b) != 32:
        raise ValueError("element length")
    s = int.from_bytes(b, "little")
    if s >= P or _neg(s):
        raise ValueError("non-canonical element")
    ss = s * s % P
    u1, u2 = (1 - ss) % P, (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 * u1) - u2_sqr) % P
    was_square, invsqrt = _sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x * v % P
    x = _abs(2 * s * den_x % P)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or _neg(t) or y == 0:
        raise ValueError("not a ristretto255 element")
    return (x, y, 1, t)


def r255_encode(pt):
    x0, y0, z0, t0 = pt
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = _sqrt_ratio_m1(1, u1 * u2 * u2 % P)
    den1, den2 = invsqrt * u1 % P, invsqrt * u2 % P
    z_inv = den1 * den2 * t0 % P
    if _neg(t0 * z_inv % P):
        x, y, den_inv = y0 * SQRT_M1 % P, x0 * SQRT_M1 % P, den1 * INVSQRT_A_MINUS_D % P
    else:
        x, y, den_inv = x0, y0, den2
    if _neg(x * z_inv % P):
        y = (-y) % P
    return _abs(den_inv * (z0 - y) % P).to_bytes(32, "little")


def _map(t):
    r = SQRT_M1 * t * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = _sqrt_ratio_m1(u, v)
    if not was_square:
        s = (-_abs(s * t % P)) % P
        c = r
    else:
        c = P - 1
    n = (c * (r - 1) * D_MINUS_ONE_SQ - v) % P
    w0, w1 = 2 * s * v % P, n * SQRT_AD_MINUS_ONE % P
    w2, w3 = (1 - s * s) % P, (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def r255_from_hash(u64):
    """Element derivation from 64 uniform bytes (RFC 9496 4.3.4)."""
    assert len(u64) == 64
    t1 = (int.from_bytes(u64[:32], "little") & (2**255 - 1)) % P
    t2 = (int.from_bytes(u64[32:], "little") & (2**255 - 1)) % P
    return r255_encode(_add(_map(t1), _map(t2)))


def r255_mul(sc, element):
    """scalar * element; refuses a bad element and an identity result."""
    out = r255_encode(_mul(int.from_bytes(sc, "little"), r255_decode(element)))
    if out == bytes(32):
        raise ValueError("scalar multiplication gave the identity")
    return out


def r255_valid(element):
    try:
        r255_decode(element)
    except ValueError:
        return False
    return element != bytes(32)


def scalar(n):
    return (n % L).to_bytes(32, "little")


def scalar_int(b):
    n = int.from_bytes(b, "little")
    if not 0 < n < L:
        raise ValueError("not a canonical non-zero scalar")
    return n


# ---- RFC 9380 5.3.1 and RFC 9497 (mode 0x00, ristretto255-SHA512) ----

CONTEXT = b"OPRFV1-\x00-ristretto255-SHA512"


def i2osp(n, w):
    return n.to_bytes(w, "big")


def expand_message_xmd(msg, dst, n):
    assert 0 < len(dst) <= 255 and 0 < n <= 255 * 64
    dst_prime = dst + i2osp(len(dst), 1)
    b0 = hashlib.sha512(bytes(128) + msg + i2osp(n, 2) + b"\x00" + dst_prime).digest()
    b = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = b
    for i in range(2, (n + 63) // 64 + 1):
        b = hashlib.sha512(bytes(x ^ y for x, y in zip(b0, b)) + i2osp(i, 1) + dst_prime).digest()
        out += b
    return out[:n]


def hash_to_group(x):
    return r255_from_hash(expand_message_xmd(x, b"HashToGroup-" + CONTEXT, 64))


def hash_to_scalar(x, dst=b"HashToScalar-" + CONTEXT):
    return int.from_bytes(expand_message_xmd(x, dst, 64), "little") % L


def derive_key_pair(seed, info):
    derive_input = seed + i2osp(len(info), 2) + info
    for counter in range(256):
        sk = hash_to_scalar(derive_input + i2osp(counter, 1), b"DeriveKeyPair" + CONTEXT)
        if sk != 0:
            return scalar(sk)
    raise ValueError("DeriveKeyPairError")


def blind(x, r):
    p = hash_to_group(x)
    if p == bytes(32):
        raise ValueError("InvalidInputError")
    return r255_mul(scalar(scalar_int(r)), p)


def blind_evaluate(sk, blinded):
    if not r255_valid(blinded):
        raise ValueError("bad blinded element")
    return r255_mul(sk, blinded)


def finalize_hash(x, element):
    return hashlib.sha512(i2osp(len(x), 2) + x + i2osp(32, 2) + element + b"Finalize").digest()


def finalize(x, r, evaluated):
    if not r255_valid(evaluated):
        raise ValueError("bad evaluated element")
    inv = pow(scalar_int(r), -1, L)
    return finalize_hash(x, r255_mul(scalar(inv), evaluated))


def evaluate(sk, x):
    return finalize_hash(x, r255_mul(sk, hash_to_group(x)))


def check_rfc9497(d):
    """The OPRF above against RFC 9497 appendix A.1.1 (tests/vectors/oprf/)."""
    g = parse(open(os.path.join(d, "oprf", "rfc9497-ristretto255-sha512.txt"), encoding="utf-8").read())
    h = {k: bytes.fromhex(v) for k, v in g["key"].items()}
    sk = derive_key_pair(h["Seed"], h["KeyInfo"])
    assert sk == h["skSm"], "RFC 9497 skSm"
    n = 0
    for name, v in g.items():
        if not name.startswith("vector-"):
            continue
        v = {k: bytes.fromhex(x) for k, x in v.items()}
        assert blind(v["Input"], v["Blind"]) == v["BlindedElement"], name
        assert blind_evaluate(sk, v["BlindedElement"]) == v["EvaluationElement"], name
        assert finalize(v["Input"], v["Blind"], v["EvaluationElement"]) == v["Output"], name
        assert evaluate(sk, v["Input"]) == v["Output"], name
        n += 1
    assert n == 2
    # Deserialization refuses what RFC 9496 / 9497 refuse: the identity, a
    # negative (odd) encoding, and an encoding >= p (here: the top bit set,
    # which libsodium 1.0.18 alone would accept).
    b = bytes.fromhex(g["vector-1"]["BlindedElement"])
    for bad in (bytes(32), bytes([b[0] | 1]) + b[1:], b[:31] + bytes([b[31] | 0x80])):
        assert not r255_valid(bad)
        try:
            blind_evaluate(sk, bad)
        except ValueError:
            pass
        else:
            raise AssertionError("a bad element was evaluated")
    for name, v in g.items():
        if name.startswith("xmd-"):
            out = expand_message_xmd(bytes.fromhex(v["msg"]), b"QUUX-V01-CS02-with-expander-SHA512-256",
                                     int(v["len_in_bytes"]))
            assert out.hex() == v["uniform_bytes"], name


# ---- link v2 ----

MAGIC = b"SPLNKKEY"
VERSION = 2
L_INPUT = b"sealpost link v2 oprf input"
L_ROOT = b"sealpost link v2 root"
L_KWK = b"sealpost link v2 kwk"
L_AUTH = b"sealpost link v2 auth"
L_UNLOCK = b"sealpost link v2 unlock"


def seed(label, n=32):
    return hashlib.blake2b(b"sealpost test vector: " + label.encode(), digest_size=n).digest()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def argon2id(password, salt, ops, mem_kib):
    return nb.crypto_pwhash_alg(32, password, salt, ops, mem_kib * 1024, nb.crypto_pwhash_ALG_ARGON2ID13)


def derive(y, link_id, secret):
    root = hashlib.blake2b(L_ROOT + link_id + secret, key=y, digest_size=32).digest()
    kwk = hashlib.blake2b(L_KWK, key=root, digest_size=32).digest()
    auth_seed = hashlib.blake2b(L_AUTH, key=root, digest_size=32).digest()
    return root, kwk, auth_seed


def params_bytes(ops, mem_kib, salt):
    return MAGIC + bytes([VERSION]) + i2osp(ops, 4) + i2osp(mem_kib, 4) + salt


def make_record(key, password, link_id, secret, ops, mem_kib, salt, nonce, k):
    """The proxy's side: everything, with the intermediates."""
    v = {}
    v["pw"] = argon2id(password, salt, ops, mem_kib)
    v["input"] = L_INPUT + link_id + v["pw"]
    v["y"] = evaluate(k, v["input"])
    v["root"], v["kwk"], v["auth_seed"] = derive(v["y"], link_id, secret)
    v["auth_pk"], _ = nb.crypto_sign_seed_keypair(v["auth_seed"])
    params = params_bytes(ops, mem_kib, salt)
    ad = params + nonce + link_id
    ct = nb.crypto_aead_xchacha20poly1305_ietf_encrypt(key, ad, nonce, v["kwk"])
    v["record"] = params + nonce + ct + k + v["auth_pk"]
    assert len(v["record"]) == 169
    return v


def unlock(record, password, link_id, secret, r, attempt):
    """The browser's side against a viewer holding record: returns the message
    key, or raises.  Also returns the wire values."""
    params, sealed, k, auth_pk = record[:33], record[33:105], record[105:137], record[137:]
    assert params[:9] == MAGIC + bytes([VERSION])
    ops, mem_kib, salt = int.from_bytes(params[9:13], "big"), int.from_bytes(params[13:17], "big"), params[17:33]
    x = L_INPUT + link_id + argon2id(password, salt, ops, mem_kib)
    blinded = blind(x, r)                                   # browser
    evaluated = blind_evaluate(k, blinded)                  # viewer (counts the attempt)
    y = finalize(x, r, evaluated)                           # browser
    _, kwk, auth_seed = derive(y, link_id, secret)
    pk, sk = nb.crypto_sign_seed_keypair(auth_seed)
    proof = nb.crypto_sign(L_UNLOCK + link_id + attempt, sk)[:64]
    nb.crypto_sign_open(proof + L_UNLOCK + link_id + attempt, auth_pk)   # viewer: raises if wrong
    nonce, ct = sealed[:24], sealed[24:]
    key = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, params + nonce + link_id, nonce, kwk)
    return key, {"blinded": blinded, "evaluated": evaluated, "proof": proof}


def vector(name, password, ops, mem_kib):
    link_id, secret = seed(name + " link id", 16), seed(name + " link secret", 16)
    key, salt, nonce = seed(name + " key"), seed(name + " salt", 16), seed(name + " nonce", 24)
    k = scalar(int.from_bytes(seed(name + " oprf key", 64), "little"))
    r = scalar(int.from_bytes(seed(name + " blind", 64), "little"))
    attempt = seed(name + " attempt", 16)
    v = make_record(key, password.encode(), link_id, secret, ops, mem_kib, salt, nonce, k)
    got, wire = unlock(v["record"], password.encode(), link_id, secret, r, attempt)
    assert got == key
    out = {
        "key": key.hex(), "password": password, "password_utf8": password.encode().hex(),
        "link_id": link_id.hex(), "link_secret": secret.hex(),
        "id_b64": b64url(link_id), "secret_b64": b64url(secret),
        "opslimit": str(ops), "memlimit_kib": str(mem_kib),
        "salt": salt.hex(), "nonce": nonce.hex(), "oprf_key": k.hex(),
    }
    for f in ("pw", "input", "y", "root", "kwk", "auth_seed", "auth_pk", "record"):
        out[f] = v[f].hex()
    out["params"] = v["record"][:33].hex()
    out["sealed_key"] = v["record"][33:105].hex()
    out["blind"] = r.hex()
    out["blinded"] = wire["blinded"].hex()
    out["evaluated"] = wire["evaluated"].hex()
    out["attempt"] = attempt.hex()
    out["proof"] = wire["proof"].hex()
    return name, out


def vectors():
    return [
        vector("v2-generated-password", "bakit-monel-sutar-figon", 3, 65536),
        vector("v2-utf8-password", "Grüße, señor ✉ 1234", 2, 1024),
    ]


def render(vs):
    lines = ["# sealpost link envelope v2 known-answer vectors (docs/formats.md)",
             "# Generated by tests/vectors/link_v2.py (see its docstring for the syntax).", ""]
    for name, v in vs:
        lines.append("[%s]" % name)
        lines += ["%s = %s" % (k, x) for k, x in v.items()]
        lines.append("")
    return "\n".join(lines)


def parse(text):
    groups, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            cur = groups.setdefault(line[1:-1], {})
        else:
            k, _, v = line.partition("=")
            cur[k.strip()] = v.strip()
    return groups


def verify_file(path):
    have = parse(open(path, encoding="utf-8").read())
    want = dict(vectors())
    assert set(have) == set(want), "vector names differ"
    for name, v in want.items():
        assert have[name] == v, name
        # A wrong password (one byte changed) never unlocks.
        rec = bytes.fromhex(v["record"])
        wrong = v["password"].encode() + b"x"
        try:
            unlock(rec, wrong, bytes.fromhex(v["link_id"]), bytes.fromhex(v["link_secret"]),
                   bytes.fromhex(v["blind"]), bytes.fromhex(v["attempt"]))
        except Exception:
            pass
        else:
            raise AssertionError(name + ": a wrong password unlocked")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("generate", "verify"):
        raise SystemExit(__doc__)
    mode, d = sys.argv[1], sys.argv[2]
    check_rfc9497(d)
    path = os.path.join(d, "link-v2.txt")
    if mode == "generate":
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(vectors()))
        print("wrote", path)
    else:
        verify_file(path)
        print("ok: RFC 9497 A.1.1 and", path)


if __name__ == "__main__":
    main()
