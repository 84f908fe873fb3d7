"""Real GnuPG keys for the OpenPGP tests, made with the real gpg (2.2+).

    home = GpgHome(tmp / "bob")                  # a GNUPGHOME of its own (mode 0700)
    fpr = home.gen_key("Bob <bob@example.net>")  # ed25519 primary + cv25519 encryption subkey
    sp_home.import_keys(home.export(fpr))
    sp_home.lsign(fpr, signer=alice_fpr)         # certified: validity "full" for trust = keyring
    plain = home.decrypt(armored)                # DecryptResult: rc, plaintext, status lines
    home.kill_agent()                            # gpgconf --kill all (teardown)

Every key is made without a passphrase unless one is given, quickly (ed25519 /
cv25519).  Keys in the past (expired) are made with --faked-system-time.
Every home made through this module is remembered in HOMES so a fixture can
kill their agents at teardown (`kill_all_agents()`).

`Identity` bundles a person: address, home (with the secret key), primary
fingerprint and the key IDs of its encryption subkeys (what a `pubkey enc
packet` names).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

GPG = shutil.which("gpg") or "/usr/bin/gpg"
GPGCONF = shutil.which("gpgconf") or "/usr/bin/gpgconf"

# Unix socket paths (the agent's, inside the home here: no /run/user) are
# limited to 107 octets; keep homes comfortably shorter.
_MAX_HOME = 70

HOMES: list["GpgHome"] = []


class GpgError(AssertionError):
    pass


@dataclass
class GpgRun:
    rc: int
    stdout: bytes
    stderr: str
    status: list[str]
    argv: list[str]

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- status\n" + "\n".join(self.status)
                + f"\n--- stderr\n{self.stderr[-3000:]}")

    def has_status(self, keyword: str) -> Optional[list[str]]:
        """The first [GNUPG:] KEYWORD line's fields after the keyword, or None."""
        for line in self.status:
            parts = line.split()
            if parts and parts[0] == keyword:
                return parts[1:]
        return None


@dataclass
class Identity:
    name: str
    addr: str
    home: "GpgHome"
    fpr: str
    enc_keyids: list[str] = field(default_factory=list)   # 16-hex key IDs of encryption subkeys

    @property
    def uid(self) -> str:
        return f"{self.name} <{self.addr}>"


def short_home(preferred: Path) -> Path:
    """preferred, unless the agent's socket path would be too long there."""
    if len(str(preferred)) <= _MAX_HOME:
        return preferred
    return Path(tempfile.mkdtemp(prefix="spgpg-", dir="/tmp"))


class GpgHome:
    def __init__(self, path: Path, create: bool = True):
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.path.chmod(0o700)
        HOMES.append(self)

    def __repr__(self) -> str:
        return f"<GpgHome {self.path}>"

    # -- running gpg ---------------------------------------------------------------
    def run(self, *args: str, input: Optional[bytes] = None, check: bool = True,
            faked_time: Optional[str] = None, timeout: float = 30) -> GpgRun:
        r, w = os.pipe()
        argv = [GPG, "--homedir", str(self.path), "--batch", "--yes", "--no-tty",
                "--no-auto-key-locate", "--no-auto-key-retrieve",
                "--status-fd", str(w), "--pinentry-mode", "loopback"]
        if faked_time:
            argv += ["--faked-system-time", faked_time]
        argv += list(args)
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, pass_fds=(w,))
        finally:
            os.close(w)
        status_chunks = []
        import threading

        def drain():
            with os.fdopen(r, "rb") as f:
                status_chunks.append(f.read())

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        try:
            out, err = p.communicate(input=input if input is not None else b"", timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise GpgError(f"{' '.join(argv)} did not finish within {timeout}s")
        t.join(5)
        status = [l[len("[GNUPG:] "):] for l in b"".join(status_chunks).decode("utf-8", "replace").splitlines()
                  if l.startswith("[GNUPG:] ")]
        res = GpgRun(p.returncode, out, err.decode("utf-8", "replace"), status, argv)
        if check and res.rc != 0:
            raise GpgError(f"gpg failed:\n{res}")
        return res

    # -- keys ------------------------------------------------------------------------
    def gen_key(self, uid: str, *, encr: bool = True, primary_usage: str = "cert",
                expire: str = "1y", faked_time: Optional[str] = None,
                subkey_expire: Optional[str] = None, subkey_faked_time: Optional[str] = None,
                passphrase: str = "") -> str:
        """A new ed25519 key (usage primary_usage) with, when encr, a cv25519
        encryption subkey.  Returns the primary fingerprint."""
        self.run("--passphrase", passphrase, "--quick-gen-key", uid, "ed25519", primary_usage, expire,
                 faked_time=faked_time)
        fpr = self._newest_fpr(uid)
        if encr:
            self.run("--passphrase", passphrase, "--quick-add-key", fpr, "cv25519", "encr",
                     subkey_expire or expire, faked_time=subkey_faked_time or faked_time)
        return fpr

    def _newest_fpr(self, uid: str) -> str:
        best = None
        for k in self.keys():
            if any(u == uid for u in k["uids"]):
                if best is None or k["created"] >= best["created"]:
                    best = k
        if best is None:
            raise GpgError(f"no key with uid {uid!r} in {self.path}")
        return best["fpr"]

    def keys(self, pattern: Optional[str] = None, secret: bool = False) -> list[dict]:
        """Parsed --with-colons listing: [{fpr, keyid, validity, caps, created, uids, subkeys}]"""
        # --with-fingerprint twice: subkey fingerprints too.
        args = ["--with-colons", "--fixed-list-mode", "--with-fingerprint", "--with-fingerprint"]
        args += ["--list-secret-keys" if secret else "--list-keys"]
        if pattern:
            args.append(pattern)
        res = self.run(*args, check=False)
        out: list[dict] = []
        cur = None
        last = None
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            f = line.split(":")
            if f[0] in ("pub", "sec"):
                cur = dict(fpr=None, keyid=f[4], validity=f[1], caps=f[11], created=int(f[5] or 0),
                           uids=[], subkeys=[])
                out.append(cur)
                last = cur
            elif f[0] in ("sub", "ssb") and cur is not None:
                sk = dict(fpr=None, keyid=f[4], validity=f[1], caps=f[11], created=int(f[5] or 0))
                cur["subkeys"].append(sk)
                last = sk
            elif f[0] == "fpr" and last is not None and last["fpr"] is None:
                last["fpr"] = f[9]
            elif f[0] == "uid" and cur is not None:
                cur["uids"].append(unescape_colons(f[9]))
        return out

    def key(self, fpr: str) -> dict:
        ks = self.keys(fpr)
        if len(ks) != 1:
            raise GpgError(f"{fpr}: {len(ks)} keys in {self.path}")
        return ks[0]

    def enc_keyids(self, fpr: str) -> list[str]:
        return [s["keyid"] for s in self.key(fpr)["subkeys"] if "e" in s["caps"]]

    def export(self, fpr: str) -> bytes:
        return self.run("--armor", "--export", fpr).stdout

    def export_secret(self, fpr: str) -> bytes:
        return self.run("--passphrase", "", "--armor", "--export-secret-keys", fpr).stdout

    def import_keys(self, data: bytes) -> GpgRun:
        return self.run("--import", input=data)

    def lsign(self, fpr: str, signer: str) -> None:
        """Certify fpr locally with signer's (ultimately trusted) key: validity full."""
        self.run("--passphrase", "", "--default-key", signer, "--quick-lsign-key", fpr)

    def revocation_cert(self, fpr: str) -> bytes:
        """The revocation certificate gpg stored when it made the key, made importable."""
        p = self.path / "openpgp-revocs.d" / f"{fpr}.rev"
        return re.sub(rb"(?m)^:-----BEGIN", b"-----BEGIN", p.read_bytes())

    def revoke_with(self, cert: bytes) -> None:
        self.import_keys(cert)

    def disable(self, fpr: str) -> None:
        self.run("--edit-key", fpr, "disable", "save")

    def delete_public(self, fpr: str) -> None:
        self.run("--delete-keys", fpr)

    def delete_secret(self, fpr: str) -> None:
        self.run("--delete-secret-keys", fpr)

    def revoke_uid(self, fpr: str, uid: str) -> None:
        self.run("--passphrase", "", "--quick-revoke-uid", fpr, uid)

    def set_gpg_conf(self, text: str) -> None:
        (self.path / "gpg.conf").write_text(text)

    # -- messages -------------------------------------------------------------------
    def encrypt(self, data: bytes, recipients: Sequence[str], sign_as: Optional[str] = None) -> bytes:
        args = ["--armor", "--trust-model", "always"]
        for r in recipients:
            args += ["--recipient", r]
        if sign_as:
            args += ["--passphrase", "", "--local-user", sign_as, "--sign"]
        args += ["--encrypt"]
        return self.run(*args, input=data).stdout

    def detach_sign(self, data: bytes, signer: str, digest: str = "SHA256") -> bytes:
        return self.run("--passphrase", "", "--armor", "--local-user", signer, "--digest-algo", digest,
                        "--detach-sign", input=data).stdout

    def decrypt(self, data: bytes) -> GpgRun:
        return self.run("--decrypt", input=data, check=False)

    def verify_detached(self, sig: bytes, data: bytes, tmp: Path) -> GpgRun:
        tmp.mkdir(parents=True, exist_ok=True)
        s = tmp / "sig.asc"
        d = tmp / "signed.bin"
        s.write_bytes(sig)
        d.write_bytes(data)
        return self.run("--verify", str(s), str(d), check=False)

    def list_packets(self, data: bytes) -> str:
        """`gpg --list-packets` (decrypting when this home holds a secret key)."""
        r = self.run("--list-packets", input=data, check=False)
        return r.stdout.decode("utf-8", "replace") + "\n" + r.stderr

    # -- copies and teardown -----------------------------------------------------------
    def copy_to(self, dest: Path) -> "GpgHome":
        """A copy of this keyring (keys, trustdb, gpg.conf), without agent sockets."""
        shutil.copytree(self.path, dest,
                        ignore=shutil.ignore_patterns("S.*", "*.lock", ".#lk*", "random_seed"))
        dest.chmod(0o700)
        return GpgHome(dest, create=False)

    def kill_agent(self) -> None:
        subprocess.run([GPGCONF, "--homedir", str(self.path), "--kill", "all"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=15)


def unescape_colons(s: str) -> str:
    """--with-colons escapes (\\x3a for ':', ...)."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def kill_all_agents(homes: Optional[Sequence[GpgHome]] = None) -> None:
    for h in list(homes if homes is not None else HOMES):
        if h.path.exists():
            try:
                h.kill_agent()
            except (subprocess.SubprocessError, OSError):
                pass


def make_identity(base: Path, short: str, name: str, addr: str, **kw) -> Identity:
    """A person with a home of their own holding their secret key."""
    home = GpgHome(base / short)
    fpr = home.gen_key(f"{name} <{addr}>", **kw)
    return Identity(name, addr, home, fpr, home.enc_keyids(fpr))


def packet_keyids(packets: str) -> set[str]:
    """Key IDs of the public-key encrypted session key packets."""
    return {m.upper() for m in re.findall(r":pubkey enc packet: version \d+, algo \d+, keyid ([0-9A-Fa-f]{16})",
                                          packets)}


def integrity_protected(packets: str) -> bool:
    """The encrypted data is an SEIPD packet with MDC, or AEAD; never plain SED."""
    sed_plain = re.search(r":encrypted data packet:\n(?:\t[^\n]*\n)*", packets)
    if re.search(r":aead encrypted packet:", packets):
        return True
    if sed_plain is None:
        return False
    return re.search(r"mdc_method: [1-9]", sed_plain.group(0)) is not None
