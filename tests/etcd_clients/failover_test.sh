#!/usr/bin/env bash
# A failover under Debian's etcdctl 3.4: a loop of
# `etcdctl --endpoints=<all three> put` while the leader is killed with
# SIGKILL; every put that printed OK must be readable afterwards with its
# value, and puts must keep succeeding after the kill. Written and checked
# against a real etcd 3.4 first (tests/etcd_clients/run_against_etcd.sh);
# ctest runs it against raftkv (tests/integration/etcd_clients_test.cc).
#
# Environment:
#   ENDPOINTS  host:port,host:port,host:port of the cluster's etcd API
#              (required; three members, all running).
#   How the leader is killed, one of:
#   PIDS       host:port=pid,... : the pid serving each endpoint of
#              ENDPOINTS. The script finds the leader's endpoint with
#              `etcdctl endpoint status` and sends its pid SIGKILL.
#   KILL_LEADER_CMD  a shell command that kills the leader; it runs with
#              LEADER_ENDPOINT (host:port of ENDPOINTS) and LEADER_ID (hex
#              member id, as etcdctl prints it) in its environment, and
#              must return once the process is dead.
#   PUTS       at most this many puts (default 300)
#   DURATION   ... and for at most this many seconds (default 60)
#   KILL_AFTER kill the leader after this many acknowledged puts (default 40)
#   MIN_AFTER  acknowledged puts required after the kill (default 40)
#   MAX_FAILED failed puts allowed around the kill (default 10)
#   RAFTKV=1   raftkv-specific expectations (none needed in this script).
#
# Prints "ok: ..." per check, "FAIL: expected ... got ..." per failure, a
# summary line, and exits 1 if any check failed. Talks to nothing but
# ENDPOINTS; signals only the one pid it is given for the leader.
set -euo pipefail

: "${ENDPOINTS:?set ENDPOINTS=host:port,host:port,host:port}"
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
PY=/usr/bin/python3
PUTS=${PUTS:-300}
DURATION=${DURATION:-60}
KILL_AFTER=${KILL_AFTER:-40}
MIN_AFTER=${MIN_AFTER:-40}
MAX_FAILED=${MAX_FAILED:-10}
export ETCDCTL_API=3
unset ETCDCTL_ENDPOINTS ETCDCTL_USER ETCDCTL_PASSWORD
if [[ -z ${PIDS:-} && -z ${KILL_LEADER_CMD:-} ]]; then
  echo "FAIL: set PIDS=host:port=pid,... or KILL_LEADER_CMD" >&2
  exit 2
fi

work=$(mktemp -d /tmp/etcd-failover-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
ok() { echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
now_ms() { date +%s%3N; }

# leader ENDPOINT_LIST: prints "host:port hexid" of the leader, as the
# members listed answer (nothing if they do not agree on one).
leader() {
  "$ETCDCTL" --endpoints="$1" --command-timeout=3s endpoint status -w json \
    2>/dev/null | "$PY" -c '
import json, sys
try:
    st = json.load(sys.stdin)
except Exception:
    sys.exit(0)
leaders = {s["Status"]["leader"] for s in st}
for s in st:
    if len(leaders) == 1 and s["Status"]["header"]["member_id"] in leaders:
        print(s["Endpoint"].replace("http://", ""), format(s["Status"]["leader"], "x"))
'
}

before=""
for _ in $(seq 1 50); do
  before=$(leader "$ENDPOINTS")
  [[ -n $before ]] && break
  sleep 0.2
done
read -r leader_ep leader_id <<<"$before" || true
if [[ -z ${leader_ep:-} ]]; then
  echo "FAIL: no leader found through etcdctl endpoint status"; exit 1
fi
echo "failover_test.sh: leader ${leader_id} at ${leader_ep}; up to $PUTS puts or $DURATION s, the leader killed after $KILL_AFTER acknowledged"

kill_leader() {
  if [[ -n ${KILL_LEADER_CMD:-} ]]; then
    LEADER_ENDPOINT=$leader_ep LEADER_ID=$leader_id bash -c "$KILL_LEADER_CMD"
    return
  fi
  local pair pid=
  IFS=, read -r -a pairs <<<"$PIDS"
  for pair in "${pairs[@]}"; do
    [[ ${pair%%=*} == "$leader_ep" ]] && pid=${pair#*=}
  done
  [[ -n $pid ]] || { echo "no pid for $leader_ep in PIDS=$PIDS"; return 1; }
  kill -9 "$pid"
  # Until it is gone (or a zombie of its parent), at most 5 s.
  for _ in $(seq 1 100); do
    [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
    sleep 0.05
  done
  echo "pid $pid still running after SIGKILL"; return 1
}

p="failover-$$-$RANDOM"
acked=0 failed=0 acked_after=0 failed_before=0 failed_after=0
killed_at=0 first_ok_after=0 max_ms=0 max_ms_after=0
start=$SECONDS
: >"$work/acked"
: >"$work/failed"
for ((i = 1; i <= PUTS && SECONDS - start < DURATION; i++)); do
  t0=$(now_ms)
  if out=$("$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout=2s \
            --command-timeout=5s put "$p/k$i" "v$i" 2>"$work/err") &&
     [[ $out == OK ]]; then
    ms=$(( $(now_ms) - t0 ))
    acked=$((acked + 1))
    echo "$p/k$i v$i" >>"$work/acked"
    (( ms > max_ms )) && max_ms=$ms
    if (( killed_at > 0 )); then
      acked_after=$((acked_after + 1))
      (( ms > max_ms_after )) && max_ms_after=$ms
      (( first_ok_after == 0 )) && first_ok_after=$(now_ms)
    fi
  else
    failed=$((failed + 1))
    echo "k$i after $(( $(now_ms) - t0 )) ms: $(tail -1 "$work/err")" >>"$work/failed"
    if (( killed_at > 0 )); then failed_after=$((failed_after + 1))
    else failed_before=$((failed_before + 1)); fi
  fi
  if (( killed_at == 0 && acked >= KILL_AFTER )); then
    if kill_leader; then
      killed_at=$(now_ms)
      echo "killed the leader ${leader_id} (${leader_ep}) after put $i"
    else
      fail "could not kill the leader"
      break
    fi
  fi
done
attempts=$((acked + failed))
elapsed=$((SECONDS - start))

echo "failover_test.sh: $attempts puts in ${elapsed} s: $acked acknowledged ($acked_after after the kill), $failed failed ($failed_before before the kill, $failed_after after); slowest acknowledged put ${max_ms} ms, after the kill ${max_ms_after} ms"
if [[ -s $work/failed ]]; then
  echo "failed puts:"; sed 's/^/  /' "$work/failed" | head -20
fi

if (( killed_at > 0 )); then ok "the leader was killed"
else fail "expected the leader to be killed after $KILL_AFTER acknowledged puts, got $acked acknowledged"; fi
if (( first_ok_after > 0 )); then
  ok "puts succeeded again $((first_ok_after - killed_at)) ms after the kill"
fi
if (( acked_after >= MIN_AFTER )); then ok "$acked_after puts acknowledged after the kill"
else fail "expected at least $MIN_AFTER puts acknowledged after the kill, got $acked_after"; fi
if (( failed_before == 0 )); then ok "no put failed before the kill"
else fail "expected no failed put before the kill, got $failed_before"; fi
if (( failed_after <= MAX_FAILED )); then ok "$failed_after puts failed around the kill (at most $MAX_FAILED allowed)"
else fail "expected at most $MAX_FAILED failed puts around the kill, got $failed_after"; fi

# The survivors: a new leader, and every acknowledged put readable.
survivors=$(tr , '\n' <<<"$ENDPOINTS" | grep -vxF "$leader_ep" | paste -sd,)
after=""
for _ in $(seq 1 50); do
  after=$(leader "$survivors")
  [[ -n $after ]] && break
  sleep 0.2
done
read -r new_ep new_id <<<"$after" || true
if [[ -n ${new_id:-} && $new_id != "$leader_id" ]]; then
  ok "a new leader $new_id at $new_ep"
else fail "expected a new leader among $survivors, got [${after}]"; fi
"$ETCDCTL" --endpoints="$survivors" --command-timeout=10s get "$p/" --prefix \
  -w json >"$work/all.json" 2>"$work/get.err" || true
missing=$("$PY" - "$work/all.json" "$work/acked" <<'EOF'
import base64, json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("unreadable: %r" % e)
    sys.exit(0)
have = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
        for kv in d.get("kvs", [])}
bad = []
for line in open(sys.argv[2]):
    k, v = line.split()
    if have.get(k) != v:
        bad.append("%s=%r" % (k, have.get(k)))
print(" ".join(bad[:20]) + (" ..." if len(bad) > 20 else ""))
EOF
)
total=$("$PY" -c 'import json, sys
try: print(int(json.load(open(sys.argv[1])).get("count", 0)))
except Exception: print(-1)' "$work/all.json")
if [[ -z $missing ]]; then
  ok "every acknowledged put ($acked) is readable with its value ($total keys in all; a failed put may or may not have been applied)"
else fail "expected every acknowledged put readable, got missing or wrong: $missing (stderr $(tail -c 300 "$work/get.err"))"; fi
if (( total >= acked && total <= acked + failed )); then
  ok "$total keys: between the $acked acknowledged and the $((acked + failed)) attempted"
else fail "expected between $acked and $((acked + failed)) keys, got $total"; fi

echo "failover_test.sh: $([[ $failures -eq 0 ]] && echo passed || echo "$failures checks FAILED")"
[[ $failures -eq 0 ]]
