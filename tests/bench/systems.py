"""The systems the benchmark starts on loopback: sinks, Postfix, sealpost, nginx.

Every system runs in its own directory under the run's work directory, on
ports picked at start, and is stopped by the process id it was started with.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from procstat import Tree, wait_exit

SENDER = "sender@example.com"
RCPT = "rcpt@example.org"          # OpenPGP key / sodium key / link / plain, per form
RCPT_NOKEY = "nokey@example.org"   # in no keyring: for "plain with a keyring present"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop_proc(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Counter:
    """Reads a sink's stdout and keeps its last "mesg=N" (and "sess=N")."""

    def __init__(self, stream):
        self.mesg = 0
        self.sess = 0
        self._cv = threading.Condition()
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream):
        tail = b""
        fd = stream.fileno()
        while True:
            b = os.read(fd, 65536)
            if not b:
                return
            tail = (tail + b)[-256:]
            m = re.findall(rb"mesg=(\d+)", tail)
            s = re.findall(rb"sess=(\d+)", tail)
            with self._cv:
                # max: a number cut at a read boundary is a prefix, so smaller
                if m:
                    self.mesg = max(self.mesg, max(int(x) for x in m))
                if s:
                    self.sess = max(self.sess, max(int(x) for x in s))
                self._cv.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self.mesg < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True


class SmtpSink:
    """Postfix's smtp-sink: the upstream for every system in the main table."""
    name = "smtp-sink"

    def __init__(self, work: Path):
        self.port = free_port()
        self.log = open(work / "smtp-sink.stderr", "wb")
        self.cmd = ["smtp-sink", "-c", "-u", "nobody", "-m", "4000", f"127.0.0.1:{self.port}", "1024"]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log)
        self.counter = Counter(self.proc.stdout)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        stop_proc(self.proc)


class TlsSink:
    """tests/bench/tls_sink.c: the same kind of sink, with STARTTLS."""
    name = "tls_sink"

    def __init__(self, work: Path, binary: Path, cert: Path | None, key: Path | None):
        self.port = free_port()
        self.log = open(work / f"tls_sink-{self.port}.stderr", "wb")
        self.cmd = [str(binary)] + (["-c", str(cert), "-k", str(key)] if cert else []) + [f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log)
        self.counter = Counter(self.proc.stdout)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        stop_proc(self.proc)


class Direct:
    """The floor: the load generator talks to the sink itself."""
    kind = "floor"

    def __init__(self, sink, label="direct to the sink (floor)"):
        self.label = label
        self.port = sink.port
        self.sink = sink
        self.rcpt = RCPT
        self.tree = None
        self.end_to_end_by_sink = False

    def stop(self):
        pass


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix instance (postfix -c DIR): relay everything to the sink.

    Loopback only, no DNS, no content filter; its own config, queue and data
    directories and ports.  Logs to a file through postlogd (Postfix 3.4+).
    """
    kind = "postfix"

    def __init__(self, work: Path, sink, label="Postfix relay", tls_ca: Path | None = None):
        self.label = label
        self.sink = sink
        self.rcpt = RCPT
        self.end_to_end_by_sink = True   # 250 means queued, not delivered
        self.dir = work / ("postfix-tls" if tls_ca else "postfix")
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in ("conf", "queue", "data"):
            (self.dir / d).mkdir(parents=True)
        shutil.chown(self.dir / "data", "postfix")
        self.port = free_port()
        tls = ""
        if tls_ca:
            # Same as sealpost: TLS is required.  Postfix checks the chain with
            # "verify"/"secure" only against a name; the sink is an IP, so
            # "encrypt" (mandatory TLS) with connection reuse through tlsproxy.
            tls = (f"smtp_tls_security_level = encrypt\nsmtp_tls_CAfile = {tls_ca}\n"
                   "smtp_tls_connection_reuse = yes\nsmtp_tls_mandatory_protocols = >=TLSv1.2\n")
        (self.dir / "conf" / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink.port}
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
message_size_limit = 60000000
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
{tls}""")
        (self.dir / "conf" / "master.cf").write_text(POSTFIX_MASTER_CF.format(port=self.port))
        self.conf = self.dir / "conf"
        r = subprocess.run(["postfix", "-c", str(self.conf), "start"], capture_output=True, text=True)
        if r.returncode != 0:
            # Postfix prints its fatal errors only to a terminal: give it one
            why = subprocess.run(["script", "-qc", f"postfix -c {self.conf} start", "/dev/null"],
                                 capture_output=True, text=True).stdout
            raise RuntimeError(f"postfix start: {r.stdout}{r.stderr}{why.strip()} (see {self.dir}/maillog)")
        wait_port(self.port)
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
        self.master = int(pidfile.read_text().strip())
        self.tree = Tree(self.master)

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        if not wait_exit(self.master, 15):
            os.kill(self.master, signal.SIGKILL)


class Sealpost:
    """sealpost run, with one form for the benchmark recipient."""
    kind = "sealpost"

    def __init__(self, work: Path, binary: Path, form: str, sink, keys: dict, label: str | None = None,
                 upstream_tls: str = "none", ca: Path | None = None, max_connections: int = 1100):
        self.form = form
        self.label = label or f"sealpost {form}"
        self.sink = sink
        self.end_to_end_by_sink = False   # 250 only after the upstream took every copy
        self.dir = work / f"sealpost-{form}{'-' + upstream_tls if upstream_tls != 'none' else ''}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.viewer_port = None
        self.rcpt = RCPT_NOKEY if form == "plain-keyring" else RCPT
        nognupg = self.dir / "no-gnupg"       # an empty keyring: no keys (a missing one is a fault)
        nognupg.mkdir(mode=0o700)
        gnupg = keys["gnupg"] if form in ("pgp", "plain-keyring") else nognupg
        lines = [
            "[proxy]", f"listen = 127.0.0.1:{self.port}", f"max_connections = {max_connections}",
            "max_message_size = 60M",
            "[upstream]", "host = 127.0.0.1", f"port = {sink.port}", f"tls = {upstream_tls}",
        ]
        if ca:
            lines.append(f"ca_file = {ca}")
        lines += ["[pgp]", f"gnupg_home = {gnupg}", "trust = always"]
        lines += ["[queue]", f"dir = {self.dir}/queue", "[log]", "level = info"]
        if form in ("plain", "plain-keyring"):
            lines += ["[policy]", "no_key = plain", "[linkserver]", "mode = off"]
        elif form == "pgp":
            lines += ["[policy]", "no_key = reject", "[linkserver]", "mode = off"]
        elif form == "sodium":
            lines += ["[sodium]", f"recipients = {keys['sodium_recipients']}",
                      "[policy]", "no_key = reject", "[linkserver]", "mode = off"]
        elif form == "link":
            self.viewer_port = free_port()
            lines += ["[link]", f"base_url = http://127.0.0.1:{self.viewer_port}/s/",
                      f"store = {self.dir}/state/links.sqlite",
                      "[linkserver]", "mode = embedded", f"listen = 127.0.0.1:{self.viewer_port}",
                      f"outbox_listen = 127.0.0.1:{free_port()}",
                      "[policy]", "no_key = link"]
        else:
            raise ValueError(form)
        self.conf = self.dir / "sealpost.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        env = dict(os.environ, SEALPOST_STATE_DIR=str(self.dir / "state"), HOME=str(self.dir),
                   XDG_CONFIG_HOME=str(self.dir / "xdg"), XDG_STATE_HOME=str(self.dir / "xdg-state"))
        self.stderr = open(self.dir / "sealpost.log", "wb")
        self.cmd = [str(binary), "run", "-c", str(self.conf)]
        # under tests/bench/reaper.py: gpg (double-forked by GPGME) is counted
        self.proc = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).with_name("reaper.py"))] + self.cmd,
                                     env=env, stderr=self.stderr, stdout=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        if self.viewer_port:
            wait_port(self.viewer_port, proc=self.proc)
        kids = [p for p in Tree(self.proc.pid).pids() if p != self.proc.pid]
        self.pid = kids[0]
        self.tree = Tree(self.proc.pid, main=self.pid)

    def stop(self):
        stop_proc(self.proc, timeout=20)


class Nginx:
    """A private nginx (-p DIR -c CONF) serving one static file."""

    def __init__(self, work: Path, body: bytes, name: str = "page.html"):
        self.dir = work / "nginx"
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "www").mkdir(parents=True)
        (self.dir / "logs").mkdir()
        (self.dir / "www" / name).write_bytes(body)
        os.chmod(self.dir / "www" / name, 0o644)
        self.port = free_port()
        self.path = "/" + name
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 2;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type text/html;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.dir}/www;
    }}
}}
""")
        self.cmd = ["nginx", "-p", str(self.dir), "-e", str(self.dir / "logs" / "error.log"), "-c", str(self.conf)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "wb"))
        wait_port(self.port, proc=self.proc)
        self.tree = Tree(self.proc.pid)

    def stop(self):
        stop_proc(self.proc, sig=signal.SIGQUIT)


class Viewer:
    """sealpost linkserver on a store made with tests' viewer_harness."""

    def __init__(self, work: Path, binary: Path, harness: Path, eml: bytes, password: str, n_links: int = 1):
        self.dir = work / "viewer"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        base = f"http://127.0.0.1:{self.port}/s/"
        store = self.dir / "links.sqlite"
        self.conf = self.dir / "viewer.conf"
        self.conf.write_text(f"[link]\nstore = {store}\nbase_url = {base}\n[linkserver]\n"
                             f"listen = 127.0.0.1:{self.port}\noutbox = no\n[log]\nlevel = info\n")
        (self.dir / "msg.eml").write_bytes(eml)
        env = dict(os.environ, HOME=str(self.dir), XDG_CONFIG_HOME=str(self.dir / "xdg"),
                   XDG_STATE_HOME=str(self.dir / "state"))
        r = subprocess.run([str(harness), "mklink", str(store), str(self.dir / "msg.eml"), "86400", "0", "1000",
                            base] + [password] * n_links, capture_output=True, text=True, env=env, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"viewer_harness mklink: {r.stderr}")
        self.links = [line.split()[2] for line in r.stdout.splitlines() if line.startswith("LINK ")]
        self.password = password
        self.cmd = [str(binary), "linkserver", "-c", str(self.conf)]
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "viewer.log", "wb"))
        wait_port(self.port, proc=self.proc)
        self.tree = Tree(self.proc.pid)

    def stop(self):
        stop_proc(self.proc)
