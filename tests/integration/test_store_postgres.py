"""The link store on PostgreSQL, and several viewer nodes on one database
(issue #17, docs/viewer.md "Several nodes on PostgreSQL").

A real PostgreSQL server (pgserver.py: Debian's package, initdb in a temporary
directory, a private port, an unprivileged user) for the module; each test gets
a database of its own.  The nodes are real `sealpost linkserver` processes
(tests/helpers/viewer_harness), with `[link] store = postgresql://...`.

- the store's unit tests (tests/unit/test_link_store.c) pass on PostgreSQL;
- a burn-after-reading link unlocked on three nodes at once has one winner;
- wrong passwords on different nodes add up to the link's destruction;
- attempts under way on other nodes count against what a link has left (so a
  burst spread over nodes cannot overshoot max_failed), and those of a node
  that died lapse;
- a revoke on one node (API, outbox or `sealpost revoke`) is seen by the others;
- an upload may land on any node and opens on any other;
- a stopped database gives 503 (browser) and a refused upload (the proxy
  then answers 451), never a crash; a database that is only slow (a lock held)
  gives 503 within the statement timeout; both recover by themselves;
- end to end: a real `sealpost run` uploading to the nodes answers its mail
  client 451 and sends nothing while the database is down, and 250 with a
  working link once it is back;
- TLS to the database as the URL's sslmode asks (a TLS-only server).
"""
from __future__ import annotations

import base64
import itertools
import os
import subprocess
import threading
from pathlib import Path

import pytest

from clients import assert_reply
from linkmode import Notification, is_notification, link_message
from pgserver import PgServer, pg_bin
from viewer import Viewer, simple_message

REPO = Path(__file__).resolve().parents[2]
_src = itertools.count(10)
_db = itertools.count(1)


def src() -> str:
    """A fresh loopback source address: requests not about the tarpit are not slowed."""
    n = next(_src)
    return f"127.2.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def pg():
    if pg_bin() is None:
        pytest.fail("PostgreSQL server not installed (scripts/deps.sh test installs postgresql)")
    server = PgServer().start()
    yield server
    server.close()


@pytest.fixture
def db(pg):
    """A fresh database: its URL."""
    return pg.create_db(f"sp_t{os.getpid()}_{next(_db)}")


@pytest.fixture
def nodes(tmp_path, db):
    """Three viewer nodes on one database, each with its own port and state."""
    token = base64.urlsafe_b64encode(os.urandom(32)).decode()
    vs = []
    for i in range(3):
        v = Viewer(tmp_path / f"node{i}", upload_token=token)
        v.store = db
        v.write_config()
        vs.append(v)
    for v in vs:
        v.start()
    yield vs
    for v in vs:
        v.stop()


def race(requests):
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i):
        barrier.wait()
        results[i] = requests[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def rows(pg, db_url: str) -> tuple[int, int]:
    out = pg.psql("SELECT (SELECT count(*) FROM links) || ' ' || (SELECT count(*) FROM messages)",
                  db=db_url.rsplit("/", 1)[1])
    a, b = out.split()
    return int(a), int(b)


def failed_count(pg, db_url: str, link_id: str) -> str:
    return pg.psql(f"SELECT failed FROM links WHERE id = '{link_id}'", db=db_url.rsplit("/", 1)[1])


def build_dir() -> Path:
    return Path(os.environ.get("SEALPOST_BUILD_DIR", str(REPO / "build")))


def test_unit_tests_on_postgresql(pg):
    url = pg.create_db(f"sp_unit{os.getpid()}")
    exe = build_dir() / "tests" / "test_link_store"
    assert exe.exists(), f"not built: {exe}"
    r = subprocess.run([str(exe), "--tap"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SP_TEST_STORE_URL": url})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("not ok")], r.stdout
    ran = {ln.split()[2]: ln for ln in lines if ln.startswith("ok ")}
    # PostgreSQL's own tests ran (not skipped), and so did the common ones.
    for name in ("pg_schema", "pg_reconnect", "pg_sweep_lock", "put_get", "claim_burns",
                 "fail_destroys", "revoke", "sweep_list", "race_connections",
                 "race_shared_handle", "race_processes", "replies"):
        line = ran.get(f"/link_store/{name}")
        assert line and "SKIP" not in line, (name, r.stdout)
    assert "migrated" in r.stderr and "postgresql://sealpost@127.0.0.1" in r.stderr


def test_burn_after_reading_one_winner_across_nodes(nodes, pg, db):
    for _ in range(4):
        [link] = nodes[0].mklink(simple_message(), ["pw"], max_views=1)
        reqs = [lambda v=v, s=src(): v.post(link.path, {"password": "pw"}, source=s)
                for v in nodes for _ in range(3)]
        results = race(reqs)
        statuses = sorted(r.status for r in results)
        assert statuses == [200] + [410] * 8, statuses
        [winner] = [r for r in results if r.status == 200]
        assert "secret plan" in winner.text
        assert all("secret plan" not in r.text for r in results if r.status == 410)
        assert rows(pg, db) == (0, 0)       # burned at the last view, in the same transaction


def test_failed_attempts_add_up_across_nodes(nodes, pg, db):
    [link, sibling] = nodes[0].mklink(simple_message(), ["pw", "pw2"], max_failed=4)
    for i, v in enumerate(nodes):
        r = v.post(link.path, {"password": f"bad{i}"}, source=src())
        assert r.status == 403, (i, r.status)
        assert failed_count(pg, db, link.id) == str(i + 1)
    # The fourth wrong password, on yet another node than the third: destroyed.
    r = nodes[0].post(link.path, {"password": "bad-last"}, source=src())
    assert r.status == 410 and "destroyed" in r.text
    for v in nodes:
        assert v.post(link.path, {"password": "pw"}, source=src()).status == 410
        assert v.get(link.path).status == 410
    assert rows(pg, db) == (1, 1)           # the sibling keeps the message
    assert nodes[2].post(sibling.path, {"password": "pw2"}, source=src()).status == 200


def test_concurrent_wrong_passwords_across_nodes_add_up(nodes, pg, db):
    """A wrong password at once on every node (max_failed 3): no count is
    lost, and the last one counted destroys the link."""
    [link] = nodes[0].mklink(simple_message(), ["pw"], max_failed=3)
    results = race([lambda v=v, s=src(): v.post(link.path, {"password": "nope"}, source=s)
                    for v in nodes])
    assert sorted(r.status for r in results) == [403, 403, 410]
    [gone] = [r for r in results if r.status == 410]
    assert "destroyed" in gone.text
    assert rows(pg, db) == (0, 0)
    for v in nodes:
        assert v.post(link.path, {"password": "pw"}, source=src()).status == 410


def test_attempts_under_way_on_other_nodes_count(nodes, pg, db):
    """A link with 3 failures left and 3 attempts under way elsewhere (their
    rows, as nodes register them, with deadlines ahead): another attempt,
    even the right password, gets 429 and is not tried (nothing counted).
    Once they end it is tried; attempts of a node that died (deadline
    passed) do not count."""
    [link] = nodes[0].mklink(simple_message(), ["pw"], max_failed=3)
    name = db.rsplit("/", 1)[1]

    def under_way(n: int, ahead: int):
        pg.psql("INSERT INTO attempts (link_id, deadline) SELECT "
                f"'{link.id}', extract(epoch from now())::bigint + {ahead} "
                f"FROM generate_series(1, {n})", db=name)

    under_way(3, 3600)
    for v, pw in ((nodes[1], "wrong"), (nodes[2], "pw")):
        r = v.post(link.path, {"password": pw}, source=src())
        assert r.status == 429, r.status
        assert "secret plan" not in r.text
        assert "every attempt it has left is under way" in v.log()
    assert failed_count(pg, db, link.id) == "0"
    # Two of them end: one attempt may run.
    pg.psql(f"DELETE FROM attempts WHERE ticket IN "
            f"(SELECT ticket FROM attempts ORDER BY ticket LIMIT 2)", db=name)
    assert nodes[1].post(link.path, {"password": "wrong"}, source=src()).status == 403
    assert failed_count(pg, db, link.id) == "1"
    # 1 under way + 1 failed + this one would reach 3: still allowed (2 left, 1 busy).
    assert nodes[2].post(link.path, {"password": "wrong2"}, source=src()).status == 403
    # Now 1 left and 1 under way: refused.
    assert nodes[0].post(link.path, {"password": "pw"}, source=src()).status == 429
    # The last one belonged to a node that died: once its deadline has passed
    # it no longer counts (a row whose deadline is already behind stands for it).
    pg.psql("DELETE FROM attempts", db=name)
    under_way(5, -1)
    r = nodes[0].post(link.path, {"password": "pw"}, source=src())
    assert r.status == 200 and "secret plan" in r.text
    # Every attempt a node ran has ended: only the stale rows are left.
    assert pg.psql(f"SELECT count(*) FROM attempts WHERE deadline > "
                   f"extract(epoch from now())::bigint", db=name) == "0"


def test_revoke_on_one_node_is_seen_by_the_others(nodes, pg, db):
    [a, b] = nodes[0].mklink(simple_message(), ["pw", "pw2"])
    [c] = nodes[0].mklink(simple_message(), ["pw3"])
    for v in nodes:
        assert v.get(a.path).status == 200
    # Through node 1's API (the proxy's `sealpost revoke` with upload_url).
    auth = {"Authorization": f"Bearer {nodes[1].upload_token}"}
    assert nodes[1].request("DELETE", f"/api/v1/links/{a.id}", headers=auth).status == 200
    for v in nodes:
        assert v.get(a.path).status == 410
        assert v.get(b.path).status == 410     # the whole message
        assert v.post(b.path, {"password": "pw2"}, source=src()).status == 410
    # Through `sealpost revoke` on the database directly: another process again.
    r = nodes[2].cli("revoke", "-c", str(nodes[2].conf), c.id)
    assert r.returncode == 0, r.stderr
    for v in nodes:
        assert v.get(c.path).status == 410
    assert rows(pg, db) == (0, 0)


def test_upload_lands_on_any_node(nodes, pg, db, tmp_path):
    tf = tmp_path / "up.token"
    tf.write_text(nodes[0].upload_token + "\n")
    api = f"http://127.0.0.1:{nodes[1].port}/api/v1/links"
    r = nodes[1].upload(api, tf, simple_message(), ["pw"], max_views=1)
    assert r.returncode == 0, r.stderr
    [_, lid, url, _] = r.stdout.split()
    path = "/s/" + url.rsplit("/", 1)[1]
    assert rows(pg, db) == (1, 1)
    r = nodes[2].post(path, {"password": "pw"}, source=src())
    assert r.status == 200 and "secret plan" in r.text
    assert nodes[0].get(path).status == 410


def test_database_down_gives_503_and_recovers(nodes, pg, db, tmp_path):
    [link] = nodes[0].mklink(simple_message(), ["pw"], max_views=2)
    assert nodes[1].get(link.path).status == 200
    tf = tmp_path / "up.token"
    tf.write_text(nodes[0].upload_token + "\n")
    api = f"http://127.0.0.1:{nodes[2].port}/api/v1/links"
    pg.stop()
    try:
        for v in nodes:
            r = v.get(link.path)
            assert r.status == 503 and "Temporarily unavailable" in r.text, r.status
            r = v.post(link.path, {"password": "pw"}, source=src())
            assert r.status == 503, r.status
            assert "secret plan" not in r.text
        # The proxy's upload is refused: it answers 451 and sends nothing.
        r = nodes[2].upload(api, tf, simple_message(), ["pw"])
        assert r.returncode != 0 and "503" in r.stderr, r.stderr
        for v in nodes:
            assert v.proc.poll() is None, v.log()[-2000:]
    finally:
        pg.start()
    # Back by itself: the same nodes, no restart.
    for v in nodes:
        assert v.get(link.path).status == 200
    r = nodes[2].post(link.path, {"password": "pw"}, source=src())
    assert r.status == 200 and "secret plan" in r.text
    r = nodes[0].post(link.path, {"password": "pw"}, source=src())
    assert r.status == 200 and "secret plan" in r.text      # the second and last view
    assert nodes[1].get(link.path).status == 410
    r = nodes[2].upload(api, tf, simple_message(), ["pw"])
    assert r.returncode == 0, r.stderr
    assert rows(pg, db) == (1, 1)
    for v in nodes:
        assert "link store postgresql://sealpost@127.0.0.1" in v.log()
        assert "reconnected" in v.log() or "retrying" in v.log()


def test_slow_database_gives_503_within_the_timeout(nodes, pg, db):
    """A lock held on the links table (a stuck migration, a long backup lock):
    the statement timeout turns the wait into a 503; it ends, the link opens."""
    [link] = nodes[0].mklink(simple_message(), ["pw"])
    holder = subprocess.Popen([str(pg.bin / "psql"), "-X", "-q", "-A", "-t", "-d", db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN; LOCK TABLE links IN ACCESS EXCLUSIVE MODE; SELECT 'held';\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "held"
        r = nodes[1].get(link.path)
        assert r.status == 503, r.status
        holder.stdin.write("ROLLBACK;\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert nodes[1].get(link.path).status == 200
    assert "canceling statement due to statement timeout" in nodes[1].log()


def test_tls_to_the_database_when_the_url_asks(tmp_path):
    """A server that takes TCP over TLS only: a URL without TLS is refused with
    a clear error (its parameters not shown); with sslmode=verify-full and the
    server's CA the node works, and its connections are encrypted."""
    server = PgServer(tls_only=True).start()
    v = None
    try:
        url = server.create_db("tls")
        v = Viewer(tmp_path / "node")
        eml = tmp_path / "m.eml"
        eml.write_bytes(simple_message())
        r = v.cli("mklink", url + "?sslmode=disable", str(eml), "3600", "0", "10", v.base_url,
                  "pw")
        assert r.returncode != 0
        assert f"link store postgresql://sealpost@127.0.0.1:{server.port}/tls: cannot connect" \
            in r.stderr, r.stderr
        assert "no encryption" in r.stderr and "sslmode" not in r.stderr, r.stderr
        v.store = f"{url}?sslmode=verify-full&sslrootcert={server.cert}"
        v.write_config()
        v.start()
        [link] = v.mklink(simple_message(), ["pw"])
        r = v.post(link.path, {"password": "pw"}, source=src())
        assert r.status == 200 and "secret plan" in r.text
        out = server.psql("SELECT count(*) || ' ' || bool_and(s.ssl) FROM pg_stat_ssl s "
                          "JOIN pg_stat_activity a USING (pid) "
                          "WHERE a.application_name = 'sealpost'", db="tls")
        n, all_tls = out.split()
        assert int(n) >= 1 and all_tls == "true", out
    finally:
        if v is not None:
            v.stop()
        server.close()


def test_proxy_fails_closed_while_the_database_is_down(nodes, pg, db, start_sealpost, upstream,
                                                        tmp_path):
    """The proxy uploads to node 1; with the database stopped the upload gets
    503, the mail client 451 4.3.0 and the upstream nothing at all.  Back up,
    the same message goes out, and its link opens on node 2."""
    tf = tmp_path / "up.token"
    tf.write_text(nodes[0].upload_token + "\n")
    tf.chmod(0o600)
    gh = tmp_path / "gnupg"
    gh.mkdir(mode=0o700)
    sp = start_sealpost(upstream, extra={
        "policy": {"no_key": "link"},
        "link": {"base_url": nodes[0].base_url,
                 "upload_url": f"http://127.0.0.1:{nodes[1].port}/api/v1/links",
                 "upload_token_file": str(tf)},
        "pgp": {"gnupg_home": str(gh)},
    })
    password = "correct horse battery staple"
    msg = link_message("pg-down", "The secret plan is in the garden.",
                       extra_headers=[f"X-Sealpost-Password: {password}"])

    def send():
        with sp.client() as c:
            c.ehlo()
            replies = c.transaction("alice@example.com", ["dave@example.org"], msg)
            c.cmd("QUIT")
        return replies

    pg.stop()
    try:
        replies = send()
        assert_reply(replies[-1], 451, "4.3.0", what="database down")
        assert "link upload failed" in replies[-1].text and "503" in replies[-1].text, replies[-1]
        assert upstream.messages == [], upstream.events_summary()
    finally:
        pg.start()
    replies = send()
    assert_reply(replies[-1], 250, "2.0.0", what="database back")
    [rec] = upstream.wait_for(1)
    assert is_notification(rec)
    note = Notification.parse(rec, nodes[0].base_url)
    r = nodes[2].post(note.path, {"password": password}, source=src())
    assert r.status == 200 and "secret plan" in r.text
    assert rows(pg, db) == (1, 1)


def test_node_needs_no_more_than_dml_once_migrated(pg, db, tmp_path):
    """docs/viewer.md, "What each node needs": after the first start, a
    database user with SELECT, INSERT, UPDATE and DELETE on the tables and
    USAGE on the one sequence runs a node; without them it does not start."""
    first = Viewer(tmp_path / "first")
    first.store = db
    first.write_config()
    [link] = first.mklink(simple_message(), ["pw"])        # creates the schema
    name = db.rsplit("/", 1)[1]
    role = f"node_{name}"
    pg.psql(f'CREATE ROLE "{role}" LOGIN')
    v = Viewer(tmp_path / "node")
    v.store = db.replace("postgresql://sealpost@", f"postgresql://{role}@")
    v.write_config()
    eml = tmp_path / "m.eml"
    eml.write_bytes(simple_message())
    r = v.cli("mklink", v.store, str(eml), "3600", "0", "10", v.base_url, "pw")
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stderr
    pg.psql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON links, messages, attempts, pending, '
            f'reply_caps, replies, sealpost_schema TO "{role}"; '
            f'GRANT USAGE ON attempts_ticket_seq, replies_id_seq TO "{role}"',
            db=name)
    v.start()
    try:
        r = v.post(link.path, {"password": "pw"}, source=src())
        assert r.status == 200 and "secret plan" in r.text
        [other] = v.mklink(simple_message(), ["pw2"], max_views=1)
        assert v.post(other.path, {"password": "pw2"}, source=src()).status == 200
        assert v.post(link.path, {"password": "wrong"}, source=src()).status == 403
        assert rows(pg, db) == (1, 1)
    finally:
        v.stop()
