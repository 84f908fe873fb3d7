"""A real PostgreSQL server for a test: Debian's `postgresql` package, a
cluster made by initdb in a temporary directory, on a private port (ports.py)
and with its socket in that directory, run as an unprivileged user.

PostgreSQL refuses to run as root; the suite often runs as root (CI), so the
cluster then belongs to `nobody` and every server command runs through
runuser.  Connections come over TCP on loopback with trust authentication (the
server listens on 127.0.0.1 only and lives as long as the test)."""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import ports

PG_BIN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "sealpost"


def pg_bin() -> Path | None:
    """The newest installed server's bin directory, or None."""
    if not PG_BIN_ROOT.is_dir():
        return None
    found = sorted((d for d in PG_BIN_ROOT.iterdir() if (d / "bin" / "initdb").exists()),
                   key=lambda d: int(d.name) if d.name.isdigit() else 0)
    return found[-1] / "bin" if found else None


class PgServer:
    def __init__(self, tls_only: bool = False):
        """tls_only: the server has a certificate (self-signed, for 127.0.0.1,
        in `self.cert`) and accepts TCP connections over TLS only."""
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server installed (scripts/deps.sh test)")
        self.port = ports.free_port()
        # As root the cluster belongs to nobody, who must reach it: under /tmp,
        # whatever TMPDIR says (it may be a private directory).
        self.root = Path(tempfile.mkdtemp(prefix="sp-pg-", dir="/tmp" if os.getuid() == 0 else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = None
        if os.getuid() == 0:
            self.user = "nobody"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.root}'\n"
                    "fsync = off\nmax_connections = 60\n")
        self.cert = None
        if tls_only:
            self._make_cert()
            with open(self.data / "postgresql.conf", "a") as f:
                f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
            # TCP only over TLS; the local socket (psql here) as before.
            (self.data / "pg_hba.conf").write_text(
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")

    def _make_cert(self) -> None:
        key, crt = self.root / "server.key", self.root / "server.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-days", "3",
                        "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True, timeout=60)
        self.cert = self.root / "ca.crt"
        shutil.copy(crt, self.cert)
        for f in (key, crt):
            dst = self.data / f.name
            shutil.move(f, dst)
            dst.chmod(0o600)
            if self.user:
                pw = pwd.getpwnam(self.user)
                os.chown(dst, pw.pw_uid, pw.pw_gid)

    def _run(self, prog: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / prog), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"{prog} failed ({p.returncode}): {p.stdout}\n{p.stderr}")
        return p

    def start(self) -> "PgServer":
        # -w: pg_ctl returns once the server accepts connections.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        atexit.register(self.close)   # no server left behind by an interrupted run
        return self

    def stop(self, check: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop",
                  check=check)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        # Over the socket: works whether TCP needs TLS or not.
        conn = f"host={self.root} port={self.port} user={SUPERUSER} dbname={db}"
        p = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conn,
                            "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {p.stderr}")
        return p.stdout.strip()

    def create_db(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        if self.data.exists():
            self.stop(check=False)
        shutil.rmtree(self.root, ignore_errors=True)
