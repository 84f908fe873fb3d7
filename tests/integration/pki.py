"""Test PKI, made fresh by each test session with python3-cryptography.

    trusted CA ("sealpost test CA")
      server        CN=localhost, SAN localhost + 127.0.0.1   (the good upstream)
      wrong_host    CN=wrong.example, SAN wrong.example        (host name mismatch)
      expired       CN=localhost, SAN localhost + 127.0.0.1, notAfter in the past
    untrusted CA ("sealpost untrusted CA"; never given to sealpost)
      untrusted     CN=localhost, SAN localhost + 127.0.0.1   (chain does not verify)

Every certificate is an ECDSA P-256 leaf with serverAuth EKU, written as PEM
(cert and key in separate files).  `Cert.server_context()` gives an
ssl.SSLContext that serves it.
"""
from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Cert:
    name: str
    cert_path: Path
    key_path: Path
    ca_path: Path          # the CA that signed it

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this cert's CA."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        return ctx


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealpost tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.chmod(0o600)


class _CA:
    def __init__(self, directory: Path, label: str, cn: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.name = _name(cn)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = directory / f"{label}.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, directory: Path, label: str, dns: list[str], ips: list[str],
              expired: bool = False) -> Cert:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        if expired:
            not_before = now - datetime.timedelta(days=30)
            not_after = now - datetime.timedelta(days=1)
        else:
            not_before = now - datetime.timedelta(hours=1)
            not_after = now + datetime.timedelta(days=7)
        san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dns[0]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = directory / f"{label}.crt"
        key_path = directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return Cert(label, cert_path, key_path, self.cert_path)


class TestPKI:
    """All certificates the suite needs, under `directory`."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        ca = _CA(directory, "ca", "sealpost test CA")
        other = _CA(directory, "untrusted-ca", "sealpost untrusted CA")
        self.ca_path: Path = ca.cert_path
        self.untrusted_ca_path: Path = other.cert_path
        local = (["localhost"], ["127.0.0.1"])
        self.server = ca.issue(directory, "server", *local)
        self.wrong_host = ca.issue(directory, "wrong-host", ["wrong.example"], [])
        self.expired = ca.issue(directory, "expired", *local, expired=True)
        self.untrusted = other.issue(directory, "untrusted", *local)

    def by_name(self, name: str) -> Cert:
        return {"server": self.server, "wrong_host": self.wrong_host,
                "expired": self.expired, "untrusted": self.untrusted}[name]
