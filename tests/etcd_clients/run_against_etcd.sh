#!/usr/bin/env bash
# Reference check (not in ctest): runs the real-client scripts of this
# directory against a real etcd 3.4 (Debian's /usr/bin/etcd), so anyone can
# see that they encode etcd's own behaviour and output. Starts a 3-member
# cluster on free 127.0.0.1 ports in a fresh temp dir, runs the scripts
# (all, or those named on the command line), and removes everything on exit.
# Only ever signals the etcd processes it started (by pid).
#
#   tests/etcd_clients/run_against_etcd.sh                 # every script
#   tests/etcd_clients/run_against_etcd.sh etcdctl_test.sh # just one
#   KEEP=1 tests/etcd_clients/run_against_etcd.sh --shell  # start, print
#       ENDPOINTS and PIDS, wait for Ctrl-C (for developing a script)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ETCD=${ETCD:-/usr/bin/etcd}
[[ -x $ETCD ]] || { echo "no $ETCD (apt-get install etcd-server)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/raftkv-etcd-ref-XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -z ${KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT

# Six free loopback ports (bound to port 0 by the kernel, then released: a
# small race, acceptable for a reference check run by hand).
read -r -a ports < <(/usr/bin/python3 - <<'EOF'
import socket
socks = []
for _ in range(6):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

initial=""
endpoints=""
for i in 1 2 3; do
  peer=${ports[$((2 * i - 2))]}
  initial+="${initial:+,}etcd$i=http://127.0.0.1:$peer"
done
pidmap=""
for i in 1 2 3; do
  peer=${ports[$((2 * i - 2))]}
  client=${ports[$((2 * i - 1))]}
  "$ETCD" --name "etcd$i" --data-dir "$tmp/etcd$i" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --initial-cluster "$initial" --initial-cluster-state new \
    --initial-cluster-token "raftkv-ref-$$" \
    >"$tmp/etcd$i.log" 2>&1 &
  pids+=($!)
  endpoints+="${endpoints:+,}127.0.0.1:$client"
  pidmap+="${pidmap:+,}127.0.0.1:$client=$!"
done
export ENDPOINTS=$endpoints PIDS=$pidmap ETCDCTL_API=3
unset RAFTKV

# Wait (bounded) until every member is healthy.
for _ in $(seq 1 100); do
  if etcdctl --endpoints="$ENDPOINTS" --command-timeout=2s endpoint health \
      >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
etcdctl --endpoints="$ENDPOINTS" endpoint health

if [[ ${1:-} == --shell ]]; then
  echo "export ENDPOINTS=$ENDPOINTS PIDS=$PIDS ETCDCTL_API=3"
  echo "logs in $tmp; Ctrl-C stops the cluster"
  sleep 3600 || true
  exit 0
fi

scripts=("$@")
if [[ ${#scripts[@]} -eq 0 ]]; then
  # The failover script kills a member: it runs last.
  scripts=(etcdctl_test.sh python_etcd3_test.py python_etcd3gw_test.py
           failover_test.sh)
fi
failed=()
for s in "${scripts[@]}"; do
  echo "=== $s against etcd $("$ETCD" --version | head -1 | awk '{print $3}')"
  start=$SECONDS
  case $s in
    *.py) runner=(/usr/bin/python3) ;;
    *) runner=(bash) ;;
  esac
  if "${runner[@]}" "$here/$s"; then
    echo "=== $s: passed in $((SECONDS - start)) s"
  else
    echo "=== $s: FAILED (exit $?) in $((SECONDS - start)) s"
    failed+=("$s")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "FAILED against etcd: ${failed[*]}"
  exit 1
fi
echo "all ${#scripts[@]} scripts passed against etcd"
