#!/usr/bin/python3
"""Debian's python3-etcd3gw 2.0 (a client of etcd's JSON gateway that no one
here wrote) against a cluster that speaks etcd's v3 API: KV, transactions,
watch, lease, lock, through HTTP/JSON on the etcd API port (/v3/...).
Written and checked against a real etcd 3.4 first
(tests/etcd_clients/run_against_etcd.sh); ctest runs it against raftkv
(tests/integration/etcd_clients_test.cc).

Run it with /usr/bin/python3 (the package is Debian's, not pyenv's).
etcd3gw's default api_path is '/v3alpha/'; etcd 3.4 serves /v3/ and
/v3beta/, so the client is made with api_path='/v3/'.

Environment:
  ENDPOINTS  host:port,host:port,... of the cluster's etcd API (gRPC;
             required): the client URLs the member list must show.
  GATEWAY_ENDPOINTS  host:port,... of the JSON gateway, in the same order
             (default ENDPOINTS: etcd serves both on its client port; raftkv
             serves the gateway on --listen_etcd_gateway). The client talks
             to the first, a second client (watches, the second lock
             holder) to the second.
  RAFTKV=1   raftkv-specific expectations: /v3beta/ (etcd 3.4 only, gone
             in 3.5) is not required.

Prints "ok: ..." per check and "FAIL: ..." per failure; exits 1 if any
check failed. Every wait is bounded. Talks to nothing but ENDPOINTS.
"""

import base64
import json
import os
import queue
import sys
import threading
import time
import uuid

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw import exceptions as gw_exceptions

ENDPOINTS = os.environ["ENDPOINTS"].split(",")
GATEWAYS = (os.environ.get("GATEWAY_ENDPOINTS") or os.environ["ENDPOINTS"]).split(",")
RAFTKV = bool(os.environ.get("RAFTKV"))
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
    return Etcd3Client(host=host, port=int(port), api_path="/v3/", timeout=10)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


c = connect(GATEWAYS[0])
c2 = connect(GATEWAYS[1 % len(GATEWAYS)])
p = "py-etcd3gw-%d-%s/" % (os.getpid(), uuid.uuid4().hex[:6])
print("python_etcd3gw_test.py: etcd3gw against %s (api_path /v3/), keys under %s"
      % (",".join(GATEWAYS), p))

# ------------------------------------------------------------------- status
st = c.status()
check("status: header, version, leader", bool(st.get("version"))
      and int(st.get("leader", 0)) != 0 and "cluster_id" in st.get("header", {}),
      "got %r" % st)
# The gateway writes 64-bit integers as JSON strings (protobuf's JSON
# mapping), as etcd's does: JavaScript clients depend on it.
check("status: 64-bit integers are JSON strings",
      isinstance(st["header"].get("member_id"), str)
      and isinstance(st.get("leader"), str), "got %r" % st)
members = c.members()
expect("members: 3", len(members), 3)
check("members: the leader is a member",
      st["leader"] in [m["ID"] for m in members],
      "leader %r, members %r" % (st["leader"], members))
want_urls = sorted("http://" + e for e in ENDPOINTS)
expect("members: the client URLs are the etcd API endpoints",
       sorted(u for m in members for u in m.get("clientURLs", [])), want_urls)
# The other paths etcd 3.4's gateway serves: /v3beta/ too (3.5 dropped it).
if RAFTKV:
    check("/v3beta/ not required of raftkv (etcd 3.5 has only /v3/)", True)
else:
    r = requests.post("http://%s/v3beta/kv/range" % GATEWAYS[0],
                      json={"key": b64(p + "none")}, timeout=10)
    check("/v3beta/kv/range answers as /v3/", r.status_code == 200
          and "header" in r.json(), "got %d %r" % (r.status_code, r.text[:300]))

# ----------------------------------------------------------------------- KV
expect("put", c.put(p + "a", "1"), True)
c.put(p + "b", "2")
c.put(p + "c", "\u00e9t\u00e9".encode())  # bytes: str is sent as latin-1
expect("get: value", c.get(p + "a"), [b"1"])
expect("get: UTF-8 value", c.get(p + "c")[0].decode(), "\u00e9t\u00e9")
expect("get: a missing key", c.get(p + "missing"), [])
value, meta = c.get(p + "a", metadata=True)[0]
expect("get metadata: key, version 1", (meta["key"], meta["version"]),
       ((p + "a").encode(), "1"))
check("get metadata: create == mod revision of a new key",
      meta["create_revision"] == meta["mod_revision"], "got %r" % meta)
check("get metadata: no lease field for a key without a lease (zero omitted)",
      "lease" not in meta, "got %r" % meta)
got = [(m["key"], v) for v, m in c.get_prefix(p)]
expect("get_prefix: every key, in key order", got,
       [((p + k).encode(), v) for k, v in
        [("a", b"1"), ("b", b"2"), ("c", "\u00e9t\u00e9".encode())]])
got = [m["key"] for v, m in c.get_prefix(p, sort_order="descend",
                                         sort_target="key")]
expect("get_prefix: sort descend by key", got,
       [(p + k).encode() for k in ["c", "b", "a"]])
got = c.get(p + "a", range_end=b64(p + "c"), keys_only=True)
expect("get range [a, c) keys_only: no values", got, [b"", b""])
expect("get limit=1 of the prefix",
       len(c.get(p, range_end=b64(p[:-1] + "0"), limit=1)), 1)
c.put(p + "a", "10")
expect("put: version 2", c.get(p + "a", metadata=True)[0][1]["version"], "2")
expect("create on an existing key", c.create(p + "a", "x"), False)
expect("create on a new key", c.create(p + "new", "x"), True)
expect("replace with the wrong old value", c.replace(p + "a", "1", "11"), False)
expect("replace with the right old value", c.replace(p + "a", "10", "11"), True)
expect("replace wrote", c.get(p + "a"), [b"11"])
expect("delete an existing key", c.delete(p + "new"), True)
# etcd3gw tells a delete of nothing by "deleted" being absent: the gateway
# omits zero values, as etcd's does.
expect("delete a missing key (deleted: 0 omitted)", c.delete(p + "new"), False)
c.put(p + "x/1", "1")
c.put(p + "x/2", "2")
expect("delete_prefix", c.delete_prefix(p + "x/"), True)
expect("delete_prefix deleted only the prefix",
       sorted(m["key"] for v, m in c.get_prefix(p)),
       [(p + k).encode() for k in ["a", "b", "c"]])
r = c.post(c.get_url("/kv/deleterange"),
           json={"key": b64(p + "b"), "prev_kv": True})
expect("deleterange prev_kv: deleted and the previous pair",
       (r.get("deleted"), [(kv["key"], kv["value"]) for kv in r.get("prev_kvs", [])]),
       ("1", [(b64(p + "b"), b64("2"))]))
r = c.post(c.get_url("/kv/put"),
           json={"key": b64(p + "a"), "value": b64("12"), "prev_kv": True})
expect("put prev_kv", r.get("prev_kv", {}).get("value"), b64("11"))

# ------------------------------------------------------------- transactions
txn = {
    "compare": [{"key": b64(p + "a"), "result": "EQUAL", "target": "VALUE",
                 "value": b64("12")},
                {"key": b64(p + "a"), "result": "GREATER", "target": "VERSION",
                 "version": 0},
                {"key": b64(p + "missing"), "result": "EQUAL",
                 "target": "CREATE", "create_revision": 0}],
    "success": [{"request_put": {"key": b64(p + "t1"), "value": b64("yes")}},
                {"request_range": {"key": b64(p + "a")}}],
    "failure": [{"request_put": {"key": b64(p + "t1"), "value": b64("no")}}],
}
r = c.transaction(txn)
expect("transaction: succeeded", r.get("succeeded"), True)
expect("transaction: responses of the success branch",
       [list(x.keys())[0] for x in r.get("responses", [])],
       ["response_put", "response_range"])
expect("transaction: the range inside",
       [kv["value"] for kv in r["responses"][1]["response_range"]["kvs"]],
       [b64("12")])
expect("transaction: the put inside", c.get(p + "t1"), [b"yes"])
txn = {
    "compare": [{"key": b64(p + "a"), "result": "EQUAL", "target": "VALUE",
                 "value": b64("nope")}],
    "success": [{"request_put": {"key": b64(p + "t2"), "value": b64("yes")}}],
    "failure": [{"request_put": {"key": b64(p + "t2"), "value": b64("no")}},
                {"request_delete_range": {"key": b64(p + "t1")}}],
}
r = c.transaction(txn)
expect("transaction: failed (succeeded omitted when false)",
       r.get("succeeded", False), False)
expect("transaction: failure branch ran", (c.get(p + "t2"), c.get(p + "t1")),
       ([b"no"], []))
try:
    c.transaction({"compare": [], "success": [
        {"request_put": {"key": b64(p + "d"), "value": b64("1")}},
        {"request_put": {"key": b64(p + "d"), "value": b64("2")}}]})
    check("transaction writing a key twice is refused", False, "it succeeded")
except gw_exceptions.Etcd3Exception as e:
    check("transaction writing a key twice is refused",
          "duplicate key" in (e.detail_text or ""), "got %r" % (e.detail_text,))

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


threading.Thread(target=drain, daemon=True).start()
seen = None
for i in range(50):
    c.put(p + "w/sentinel", str(i))
    try:
        seen = events.get(timeout=0.2)
        break
    except queue.Empty:
        pass
check("watch_prefix: established (saw a sentinel put)",
      isinstance(seen, dict) and seen.get("kv", {}).get("key") ==
      (p + "w/sentinel").encode(), "got %r" % seen)
while True:
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
        got.append(events.get(timeout=0.5))
    except queue.Empty:
        pass
expect("watch_prefix: the events of puts and a delete, in order, other member",
       [(e.get("type", "PUT"), e["kv"]["key"], e["kv"].get("value"))
        for e in got if isinstance(e, dict)],
       [("PUT", (p + "w/a").encode(), b"1"),
        ("PUT", (p + "w/b").encode(), b"2"),
        ("DELETE", (p + "w/a").encode(), None)])
revs = [int(e["kv"]["mod_revision"]) for e in got if isinstance(e, dict)]
check("watch: revisions increase", revs == sorted(revs) and len(set(revs)) == 3,
      "got %r" % revs)
cancel()
time.sleep(0.2)
c.put(p + "w/after", "x")
time.sleep(0.5)
leftover = []
while not events.empty():
    leftover.append(events.get())
check("watch: no event after cancel",
      not any(isinstance(e, dict) for e in leftover), "got %r" % leftover)

# Replay from a revision with prev_kv (the raw stream: one JSON per line).
start = revs[1] if len(revs) == 3 else 1
replayed = []
created = None
error = None
try:
    r = requests.post(c.get_url("/watch"), stream=True, timeout=(5, 5), json={
        "create_request": {"key": b64(p + "w/"), "range_end": b64(p + "w0"),
                           "start_revision": start, "prev_kv": True}})
    deadline = time.time() + 10
    try:
        for line in r.iter_lines():
            if not line:
                continue
            res = json.loads(line)["result"]
            if res.get("created"):
                created = res
            replayed.extend(res.get("events", []))
            if len(replayed) >= 3 or time.time() > deadline:
                break
    finally:
        r.close()
except Exception as e:  # noqa: BLE001  (a read timeout: too few events)
    error = e
check("watch stream: a created message first, with a header",
      created is not None and "header" in created, "got %r" % created)
expect("watch start_revision replays history (with prev_kv)",
       [(e.get("type", "PUT"), e["kv"]["key"],
         e.get("prev_kv", {}).get("value")) for e in replayed[:3]],
       [("PUT", b64(p + "w/b"), None),
        ("DELETE", b64(p + "w/a"), b64("1")),
        ("PUT", b64(p + "w/after"), None)]
       if error is None else error)
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
check("watch_once returns the put", isinstance(result.get("ev"), dict)
      and result["ev"]["kv"]["key"] == (p + "once").encode(),
      "got %r" % result.get("ev"))

# -------------------------------------------------------------------- lease
lease = c.lease(30)
check("lease: granted with an id", int(lease.id) > 0, "id %r" % lease.id)
ttl = lease.ttl()
check("lease: ttl 25..30", 25 <= ttl <= 30, "got %r" % ttl)
c.put(p + "l/k", "v", lease=lease)
expect("put with a lease: the key has the lease id",
       c.get(p + "l/k", metadata=True)[0][1].get("lease"), str(lease.id))
expect("lease: keys", lease.keys(), [(p + "l/k").encode()])
expect("lease refresh: the TTL", lease.refresh(), 30)
r = c.post(c.get_url("/lease/timetolive"), json={"ID": lease.id, "keys": True})
expect("/lease/timetolive: granted TTL and keys",
       (r.get("grantedTTL"), r.get("keys")), ("30", [b64(p + "l/k")]))
r = c.post(c.get_url("/lease/leases"), json={})
check("/lease/leases lists the lease",
      str(lease.id) in [x["ID"] for x in r.get("leases", [])], "got %r" % r)
expect("revoke", lease.revoke(), True)
expect("revoke: the lease's key is gone", c.get(p + "l/k"), [])
expect("ttl of a revoked lease: -1", lease.ttl(), -1)
try:
    lease.revoke()
    check("revoking a revoked lease fails", False, "no error")
except gw_exceptions.Etcd3Exception as e:
    check("revoking a revoked lease: 'requested lease not found'",
          "requested lease not found" in (e.detail_text or ""),
          "got %r" % (e.detail_text,))
short = c.lease(2)
c.put(p + "l/short", "v", lease=short)
deadline = time.time() + 8
while c.get(p + "l/short") and time.time() < deadline:
    time.sleep(0.1)
expect("a key whose lease expired (TTL 2 s) is gone", c.get(p + "l/short"), [])

# --------------------------------------------------------------------- lock
# etcd3gw's acquire() tries once (a transaction on create revision 0);
# a waiting holder retries after each change of the lock key.
lock = c.lock(p + "lock", ttl=10)
expect("lock: acquire", lock.acquire(), True)
expect("lock: is_acquired", lock.is_acquired(), True)
other = c2.lock(p + "lock", ttl=10)
expect("lock: a second lock fails while it is held", other.acquire(), False)
acquired = {}


def second():
    deadline = time.time() + 10
    while time.time() < deadline:
        if other.acquire():
            acquired["ok"] = True
            acquired["at"] = time.time()
            return
        try:
            c2.watch_once(other.key, timeout=1)
        except gw_exceptions.WatchTimedOut:
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
expect("lock: refresh keeps its lease", other.refresh(), 10)
other.release()
with c.lock(p + "lock2", ttl=10) as held:
    expect("lock as a context manager", held.is_acquired(), True)
expect("lock: released on leaving the context", held.is_acquired(), False)

c.delete_prefix(p)
print("python_etcd3gw_test.py: %d of %d checks passed"
      % (checks - failures, checks))
sys.exit(1 if failures else 0)
