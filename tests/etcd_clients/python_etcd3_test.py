#!/usr/bin/python3
"""Debian's python3-etcd3 0.12 (a gRPC client no one here wrote) against a
cluster that speaks etcd's v3 API: KV, transactions, watch, lease, lock.
Written and checked against a real etcd 3.4 first
(tests/etcd_clients/run_against_etcd.sh); ctest runs it against raftkv
(tests/integration/etcd_clients_test.cc).

Run it with /usr/bin/python3 (the package is Debian's, not pyenv's).

Environment:
  ENDPOINTS  host:port,host:port,... of the cluster's etcd API (required);
             the client talks to the first, a second client (watches, the
             second lock holder) to the second, so events and lock releases
             cross members.
  RAFTKV=1   raftkv-specific expectations (none needed in this script).

Prints "ok: ..." per check and "FAIL: ..." per failure; exits 1 if any
check failed. Every wait is bounded. Talks to nothing but ENDPOINTS.
"""

import os
import queue
import sys
import threading
import time
import uuid

import etcd3
import etcd3.exceptions

ENDPOINTS = os.environ["ENDPOINTS"].split(",")
checks = 0
failures = 0


def check(name, cond, detail=""):
    global checks, failures
    checks += 1
    if cond:
        print("ok: " + name, flush=True)
    else:
        failures += 1
        print("FAIL: %s%s" % (name, ": " + detail if detail else ""), flush=True)


def expect(name, got, want):
    check(name, got == want, "expected %r, got %r" % (want, got))


def connect(endpoint):
    host, port = endpoint.rsplit(":", 1)
    return etcd3.client(host=host, port=int(port), timeout=10)


c = connect(ENDPOINTS[0])
c2 = connect(ENDPOINTS[1 % len(ENDPOINTS)])
p = "py-etcd3-%d-%s/" % (os.getpid(), uuid.uuid4().hex[:6])
print("python_etcd3_test.py: etcd3 %s against %s, keys under %s"
      % (getattr(etcd3, "__version__", "?"), ",".join(ENDPOINTS), p))

# ------------------------------------------------------------------- status
st = c.status()
check("status: a leader and a version", st.leader is not None
      and st.leader.id != 0 and bool(st.version), "got %r" % vars(st))
members = list(c.members)
expect("members: 3", len(members), 3)
check("status: the leader is a member",
      st.leader.id in [m.id for m in members],
      "leader %r, members %r" % (st.leader.id, [m.id for m in members]))

# ----------------------------------------------------------------------- KV
c.put(p + "a", "1")
c.put(p + "b", b"2")
c.put(p + "c", "\u00e9t\u00e9")  # UTF-8
c.put(p + "bin", b"\x00\xff\x01")  # not UTF-8
value, meta = c.get(p + "a")
expect("get: value", value, b"1")
expect("get: key in the metadata", meta.key, (p + "a").encode())
expect("get: version 1 of a new key", meta.version, 1)
check("get: create == mod revision of a new key",
      meta.create_revision == meta.mod_revision > 0,
      "create %d mod %d" % (meta.create_revision, meta.mod_revision))
expect("get: binary value", c.get(p + "bin")[0], b"\x00\xff\x01")
expect("get: UTF-8 value", c.get(p + "c")[0].decode(), "\u00e9t\u00e9")
expect("get: a missing key", c.get(p + "missing"), (None, None))
expect("get with serializable=True",
       c.get(p + "a", serializable=True)[0], b"1")
got = [(m.key, v) for v, m in c.get_prefix(p)]
expect("get_prefix: every key, in key order", got,
       [((p + k).encode(), v) for k, v in
        [("a", b"1"), ("b", b"2"), ("bin", b"\x00\xff\x01"),
         ("c", "\u00e9t\u00e9".encode())]])
got = [m.key for v, m in c.get_prefix(p, sort_order="descend",
                                      sort_target="key")]
expect("get_prefix: sort descend by key", got,
       [(p + k).encode() for k in ["c", "bin", "b", "a"]])
got = [m.key for v, m in c.get_range(p + "a", p + "c")]
expect("get_range [a, c)", got, [(p + k).encode() for k in ["a", "b", "bin"]])
resp = c.put(p + "a", "10", prev_kv=True)
expect("put prev_kv", resp.prev_kv.value, b"1")
value, meta = c.get(p + "a")
expect("put: version 2", meta.version, 2)
expect("put_if_not_exists on an existing key",
       c.put_if_not_exists(p + "a", "x"), False)
expect("put_if_not_exists on a new key",
       c.put_if_not_exists(p + "new", "x"), True)
expect("replace with the wrong old value", c.replace(p + "a", "1", "11"), False)
expect("replace with the right old value", c.replace(p + "a", "10", "11"), True)
expect("replace wrote", c.get(p + "a")[0], b"11")
expect("delete an existing key", c.delete(p + "new"), True)
expect("delete a missing key", c.delete(p + "new"), False)
resp = c.delete(p + "b", prev_kv=True, return_response=True)
expect("delete prev_kv", [(kv.key, kv.value) for kv in resp.prev_kvs],
       [((p + "b").encode(), b"2")])
c.put(p + "x/1", "1")
c.put(p + "x/2", "2")
resp = c.delete_prefix(p + "x/")
expect("delete_prefix deleted 2", resp.deleted, 2)
expect("delete_prefix left the others",
       sorted(m.key for v, m in c.get_prefix(p)),
       [(p + k).encode() for k in ["a", "bin", "c"]])

# ------------------------------------------------------------- transactions
t = c.transactions
ok_, responses = c.transaction(
    compare=[t.value(p + "a") == "11", t.version(p + "a") > 0,
             t.create(p + "missing") == 0],
    success=[t.put(p + "t1", "yes"), t.get(p + "a")],
    failure=[t.put(p + "t1", "no")])
expect("transaction: success", ok_, True)
expect("transaction: the get inside", [(v, m.key) for v, m in responses[1]],
       [(b"11", (p + "a").encode())])
expect("transaction: the put inside", c.get(p + "t1")[0], b"yes")
ok_, responses = c.transaction(
    compare=[t.value(p + "a") == "nope"],
    success=[t.put(p + "t2", "yes")],
    failure=[t.put(p + "t2", "no"), t.delete(p + "t1"), t.get(p + "t1")])
expect("transaction: failure", ok_, False)
expect("transaction: failure branch ran", c.get(p + "t2")[0], b"no")
expect("transaction: delete then get in one txn sees the delete",
       list(responses[2]), [])
expect("transaction: delete inside", c.get(p + "t1"), (None, None))
mod = c.get(p + "t2")[1].mod_revision
ok_, _ = c.transaction(compare=[t.mod(p + "t2") == mod], success=[], failure=[])
expect("transaction: mod revision compare", ok_, True)
try:
    c.transaction(compare=[], success=[t.put(p + "d", "1"), t.put(p + "d", "2")],
                  failure=[])
    check("transaction writing a key twice is refused", False, "it succeeded")
except Exception as e:  # etcd: "duplicate key given in txn request"
    check("transaction writing a key twice is refused",
          "duplicate key" in str(e), "got %r" % e)

# -------------------------------------------------------------------- watch
events = queue.Queue()
it, cancel = c2.watch_prefix(p + "w/")


def drain():
    try:
        for ev in it:
            events.put(ev)
    except Exception as e:  # noqa: BLE001
        events.put(e)
    events.put("END")


th = threading.Thread(target=drain, daemon=True)
th.start()
# Established once a sentinel put shows up (bounded).
seen = None
for i in range(50):
    c.put(p + "w/sentinel", str(i))
    try:
        seen = events.get(timeout=0.2)
        break
    except queue.Empty:
        pass
check("watch_prefix: established (saw a sentinel put)",
      isinstance(seen, etcd3.events.PutEvent), "got %r" % seen)
while True:  # drop sentinel events that were still in flight
    try:
        events.get(timeout=0.3)
    except queue.Empty:
        break
c.put(p + "w/a", "1")
c.put(p + "notw", "1")
c.put(p + "w/b", "2")
c.delete(p + "w/a")
got = []
deadline = time.time() + 10
while len(got) < 3 and time.time() < deadline:
    try:
        ev = events.get(timeout=0.5)
    except queue.Empty:
        continue
    got.append(ev)
expect("watch_prefix: the events of puts and a delete, in order, other member",
       [(type(e).__name__, getattr(e, "key", None), getattr(e, "value", None))
        for e in got],
       [("PutEvent", (p + "w/a").encode(), b"1"),
        ("PutEvent", (p + "w/b").encode(), b"2"),
        ("DeleteEvent", (p + "w/a").encode(), b"")])
revs = [e.mod_revision for e in got]
check("watch: revisions increase", revs == sorted(revs) and len(set(revs)) == 3,
      "got %r" % revs)
cancel()
end = None
try:
    end = events.get(timeout=5)
except queue.Empty:
    pass
check("watch: cancel ends the iterator", end == "END", "got %r" % end)
c.put(p + "w/after", "x")
time.sleep(0.3)
check("watch: no event after cancel", events.empty(),
      "got %r" % (None if events.empty() else events.get()))

# Replay from a revision, with prev_kv; watch_once.
start = got[1].mod_revision if len(got) == 3 else 1
replayed = []
done = threading.Event()


def on_event(resp):
    if isinstance(resp, Exception):
        replayed.append(resp)
    else:
        replayed.extend(resp.events)
    if len(replayed) >= 3:
        done.set()


wid = c2.add_watch_prefix_callback(p + "w/", on_event, start_revision=start,
                                   prev_kv=True)
done.wait(10)
c2.cancel_watch(wid)
expect("watch start_revision replays history (with prev_kv)",
       [(type(e).__name__, e.key, e.prev_value if e.prev_key else None)
        for e in replayed[:3]],
       [("PutEvent", (p + "w/b").encode(), None),
        ("DeleteEvent", (p + "w/a").encode(), b"1"),
        ("PutEvent", (p + "w/after").encode(), None)])
result = {}


def once():
    try:
        result["ev"] = c2.watch_once(p + "once", timeout=10)
    except Exception as e:  # noqa: BLE001
        result["ev"] = e


th = threading.Thread(target=once, daemon=True)
th.start()
time.sleep(0.5)
for i in range(20):
    c.put(p + "once", "v%d" % i)
    th.join(0.3)
    if not th.is_alive():
        break
check("watch_once returns a put", isinstance(result.get("ev"),
                                             etcd3.events.PutEvent),
      "got %r" % result.get("ev"))

# -------------------------------------------------------------------- lease
lease = c.lease(30)
check("lease: granted with an id", lease.id > 0, "id %r" % lease.id)
expect("lease: granted TTL", lease.granted_ttl, 30)
check("lease: remaining TTL 25..30", 25 <= lease.remaining_ttl <= 30,
      "got %r" % lease.remaining_ttl)
c.put(p + "l/k", "v", lease=lease)
expect("put with a lease: the key has the lease id",
       c.get(p + "l/k")[1].lease_id, lease.id)
expect("lease: keys", lease.keys, [(p + "l/k").encode()])
refreshed = list(lease.refresh())
expect("lease refresh: one keep-alive answer with the TTL",
       [(r.ID, r.TTL) for r in refreshed], [(lease.id, 30)])
info = c.get_lease_info(lease.id)
expect("time-to-live: id, granted TTL", (info.ID, info.grantedTTL),
       (lease.id, 30))
lease.revoke()
expect("revoke: the lease's key is gone", c.get(p + "l/k"), (None, None))
info = c.get_lease_info(lease.id)
expect("time-to-live of a revoked lease: TTL -1", info.TTL, -1)
try:
    c.revoke_lease(lease.id)
    check("revoking a revoked lease fails", False, "no error")
except Exception as e:  # noqa: BLE001
    check("revoking a revoked lease: 'requested lease not found'",
          "requested lease not found" in str(e), "got %r" % e)
try:
    c.put(p + "l/k2", "v", lease=0x7fffabcdef)
    check("put with an unknown lease fails", False, "no error")
except Exception as e:  # noqa: BLE001
    check("put with an unknown lease: 'requested lease not found'",
          "requested lease not found" in str(e), "got %r" % e)
short = c.lease(2)
c.put(p + "l/short", "v", lease=short)
deadline = time.time() + 8
while c.get(p + "l/short")[0] is not None and time.time() < deadline:
    time.sleep(0.1)
expect("a key whose lease expired (TTL 2 s) is gone", c.get(p + "l/short"),
       (None, None))

# --------------------------------------------------------------------- lock
lock = c.lock(p + "lock", ttl=10)
expect("lock: acquire", lock.acquire(timeout=5), True)
expect("lock: is_acquired", lock.is_acquired(), True)
other = c2.lock(p + "lock", ttl=10)
# Debian's python3-etcd3 0.12 with Debian's newer tenacity cannot wait in
# acquire(): its wait callback has tenacity 4's signature (TypeError
# "missing 1 required positional argument: 'delay_since_first_attempt'").
# acquire(timeout=0) stops after one try and works; the second holder waits
# as the library means to: watch the lock key, try again after each event.
expect("lock: a second lock fails while it is held",
       other.acquire(timeout=0), False)
acquired = {}


def second():
    deadline = time.time() + 10
    while time.time() < deadline:
        if other.acquire(timeout=0):
            acquired["ok"] = True
            acquired["at"] = time.time()
            return
        try:
            c2.watch_once(other.key, timeout=1)
        except etcd3.exceptions.WatchTimedOut:
            pass
    acquired["ok"] = False


th = threading.Thread(target=second, daemon=True)
th.start()
time.sleep(1.0)
check("lock: the second is still waiting", th.is_alive() and not acquired,
      "got %r" % acquired)
released_at = time.time()
expect("lock: release", lock.release(), True)
th.join(12)
check("lock: the second acquires after the release",
      acquired.get("ok") is True and acquired["at"] >= released_at,
      "got %r" % acquired)
expect("lock: the second holds it", other.is_acquired(), True)
expect("lock: the first does not", lock.is_acquired(), False)
other.release()
with c.lock(p + "lock", ttl=10) as held:
    expect("lock as a context manager", held.is_acquired(), True)

c.delete_prefix(p)
c.close()
c2.close()
print("python_etcd3_test.py: %d of %d checks passed"
      % (checks - failures, checks))
sys.exit(1 if failures else 0)
