#!/usr/bin/env bash
# tailwall demo: set up the machine, build, then in a throwaway network namespace pair compile
# examples/rulesets/demo.rules, attach it to the host side of a veth pair, send traffic from the peer,
# print per-rule counters, and clean everything up. Needs root (CAP_BPF + CAP_NET_ADMIN).
set -euo pipefail
cd "$(dirname "$0")/.."
RULES="${1:-examples/rulesets/demo.rules}"

bash scripts/setup.sh
echo "== building the release binary (a few minutes on a fresh machine; cargo shows its progress)"
cargo build --release -p tailwall-loader
TW="$PWD/target/release/tailwall"

HOST="twdemo-host-$$"; PEER="twdemo-peer-$$"
cleanup() {
  "$TW" --netns "$HOST" detach tw0 >/dev/null 2>&1 || true
  ip netns del "$HOST" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$HOST"; ip netns add "$PEER"
ip link add tw0 netns "$HOST" type veth peer name tw1 netns "$PEER"
ip -n "$HOST" addr add 10.99.0.1/24 dev tw0; ip -n "$HOST" link set tw0 up; ip -n "$HOST" link set lo up
ip -n "$PEER" addr add 10.99.0.2/24 dev tw1; ip -n "$PEER" link set tw1 up

echo "== compile and attach $RULES to tw0 in netns $HOST"
"$TW" --netns "$HOST" compile "$RULES" --attach tw0

# A listener on :80 so the accepted connection completes; nothing listens on :23 or :9999.
ip netns exec "$HOST" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.99.0.1", 80)); s.listen(8); s.settimeout(6)
try:
    while True: s.accept()[0].close()
except Exception: pass' &
LISTENER=$!
sleep 0.3

probe() { # probe DESCRIPTION KIND ARG: run one probe from the peer, print what happened
  local out
  out=$(ip netns exec "$PEER" python3 - "$2" "$3" <<'PY' 2>&1 || true
import socket, subprocess, sys
kind, arg = sys.argv[1], sys.argv[2]
if kind == "ping":
    r = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.99.0.1"], capture_output=True, text=True)
    print([l for l in r.stdout.splitlines() if "received" in l][0].strip())
elif kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
    s.connect(("10.99.0.1", int(arg))); s.send(b"query")
    try: s.recv(100); print("answered")
    except ConnectionRefusedError: print("port unreachable from the host stack (packet was accepted)")
    except socket.timeout: print("timed out (packet was dropped)")
else:
    try:
        socket.create_connection(("10.99.0.1", int(arg)), timeout=1.5).close(); print("connected")
    except ConnectionRefusedError: print("refused by the host stack (packet was accepted)")
    except socket.timeout: print("timed out (packet was dropped)")
PY
)
  printf '   %-46s %s\n' "$1" "$out"
}
echo "== traffic from the peer (10.99.0.2)"
probe "ping 10.99.0.1 (rule 2 accepts icmp)" ping -
probe "tcp :80 (rule 4 accepts; listener answers)" tcp 80
probe "tcp :8080 (rule 5 accepts; nothing listens)" tcp 8080
probe "tcp :23 (rule 6 drops)" tcp 23
probe "tcp :9999 (policy drops)" tcp 9999
probe "udp :53 from the lab (rule 8 accepts)" udp 53
probe "udp :5353 (policy drops)" udp 5353
wait "$LISTENER" 2>/dev/null || true

echo "== per-rule counters"
"$TW" --netns "$HOST" stats tw0
echo "== detach"
"$TW" --netns "$HOST" detach tw0
