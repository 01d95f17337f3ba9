#!/usr/bin/env bash
# Load benchmark: llmisvc's /mutate, /validate, /convert, /bench/noop, /bench/decode against
# Kubernetes' Go test webhook (agnhost webhook, /add-label), with wrk over TLS and keep-alive at
# 1, 16 and 256 connections. Loopback only; every run is bounded (DURATION seconds each).
#
#   bash benches/load.sh            # DURATION=10 CONNS="1 16 256" by default
#   DURATION=5 CONNS="16" bash benches/load.sh
#
# Builds what it needs: the release binary, wrk (Debian), agnhost (tests/e2e/provision.sh,
# from the Kubernetes source package, cached). Prints a markdown table and the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 16 256"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { echo "load.sh: $*" >&2; }

log "building the release binary"
cargo build --release --bin llmisvc >&2
BIN=$CARGO_TARGET_DIR/release/llmisvc
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  (apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }) >&2
fi
log "provisioning agnhost (built once with the test bed from k8s.io/kubernetes, then cached)"
BIN=$(LLMISVC_TESTBED_ONLY=k8s bash tests/e2e/provision.sh | tail -n1)
AGNHOST=$BIN/agnhost
[[ -x $AGNHOST ]] || { log "no agnhost at $AGNHOST"; exit 1; }

WORK=$(mktemp -d /tmp/llmisvc-load.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" certs --out-dir "$WORK" --dns localhost --ip 127.0.0.1 >/dev/null

# Bodies: the prefill/decode example as the API server sends it on UPDATE (rendered, stored
# object in both object and oldObject), and a ConversionReview of the same object.
"$BIN" render -f examples/prefill-decode-multinode.yaml -o json > "$WORK/object.json"
python3 - "$WORK" <<'PY'
import json, sys
d = sys.argv[1]
obj = json.load(open(f"{d}/object.json"))
gvk = {"group": "serving.kserve.io", "version": "v1alpha2", "kind": "LLMInferenceService"}
gvr = {"group": "serving.kserve.io", "version": "v1alpha2", "resource": "llminferenceservices"}
review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": gvk, "resource": gvr,
    "requestKind": gvk, "requestResource": gvr,
    "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
    "operation": "UPDATE", "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
    "object": obj, "oldObject": obj, "dryRun": False,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}}}
conv = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
    "uid": "0000000-0000-0000-0000-000000000001",
    "desiredAPIVersion": "serving.kserve.io/v1alpha1", "objects": [obj]}}
sep = (",", ":")
open(f"{d}/review.json", "w").write(json.dumps(review, separators=sep))
open(f"{d}/conversion.json", "w").write(json.dumps(conv, separators=sep))
PY
REVIEW_BYTES=$(wc -c < "$WORK/review.json")

lua() { # $1 body file -> script path
  local s="$WORK/$(basename "$1" .json).lua"
  cat > "$s" <<LUA
local f = io.open("$1", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
LUA
  echo "$s"
}
REVIEW_LUA=$(lua "$WORK/review.json")
CONV_LUA=$(lua "$WORK/conversion.json")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; log "port $1 never opened"; exit 1; }

OURS=$(free_port)
# Production logging (info, one line per request), to /dev/null so the disk is not measured.
"$BIN" serve --addr "127.0.0.1:$OURS" --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
  --bench-endpoints >/dev/null 2>&1 &
OURS_PID=$!
PIDS+=("$OURS_PID")
AGN=$(free_port)
"$AGNHOST" webhook --port "$AGN" --tls-cert-file "$WORK/tls.crt" --tls-private-key-file "$WORK/tls.key" >/dev/null 2>&1 &
AGN_PID=$!
PIDS+=("$AGN_PID")
wait_port "$OURS"
wait_port "$AGN"

# Sanity: both answer the review with 200 and the uid.
for target in "$OURS /mutate" "$AGN /add-label"; do
  read -r port path <<<"$target"
  out=$(curl -sS --cacert "$WORK/ca.crt" --resolve "localhost:$port:127.0.0.1" \
    -H 'Content-Type: application/json' --data-binary @"$WORK/review.json" "https://localhost:$port$path")
  grep -q 705ab4f5 <<<"$out" || { log "bad answer from $port$path: ${out:0:300}"; exit 1; }
done

RESULTS=$WORK/results.tsv
run() { # name port path lua conns
  local name=$1 port=$2 path=$3 script=$4 c=$5 t=2
  (( c < t )) && t=$c
  local out
  out=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 5s --latency -s "$script" "https://127.0.0.1:$port$path" 2>&1)
  local line
  line=$(grep '^RESULT' <<<"$out" || true)
  [[ -n $line ]] || { log "wrk failed for $name c=$c: $out"; exit 1; }
  read -r _ reqs rps p50 p99 errs <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$reqs" "$rps" "$p50" "$p99" "$errs" >> "$RESULTS"
  log "$name c=$c: $rps req/s, p99 $p99 ms, $errs errors"
}

# Warm-up (TLS session setup, allocator), not recorded.
wrk -t1 -c4 -d2s -s "$REVIEW_LUA" "https://127.0.0.1:$OURS/mutate" >/dev/null 2>&1 || true
wrk -t1 -c4 -d2s -s "$REVIEW_LUA" "https://127.0.0.1:$AGN/add-label" >/dev/null 2>&1 || true

for c in $CONNS; do
  run "llmisvc /mutate" "$OURS" /mutate "$REVIEW_LUA" "$c"
  run "llmisvc /validate" "$OURS" /validate "$REVIEW_LUA" "$c"
  run "llmisvc /convert" "$OURS" /convert "$CONV_LUA" "$c"
  run "llmisvc /bench/noop" "$OURS" /bench/noop "$REVIEW_LUA" "$c"
  run "llmisvc /bench/decode" "$OURS" /bench/decode "$REVIEW_LUA" "$c"
  run "agnhost /add-label" "$AGN" /add-label "$REVIEW_LUA" "$c"
done

hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
OURS_HWM=$(hwm "$OURS_PID")
AGN_HWM=$(hwm "$AGN_PID")

CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "Machine: $(nproc) CPUs, $CPU; $(uname -sr). Server and wrk share the machine (wrk -t2)."
echo "Body: AdmissionReview UPDATE of examples/prefill-decode-multinode.yaml rendered, $REVIEW_BYTES bytes; ${DURATION}s per run."
echo
echo "| endpoint | conns | req/s | p50 ms | p99 ms | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
sort -t$'\t' -k2,2n -s "$RESULTS" | while IFS=$'\t' read -r name c reqs rps p50 p99 errs; do
  echo "| $name | $c | $rps | $p50 | $p99 | $errs |"
done
echo
echo "Peak RSS (VmHWM, after all runs incl. 256 connections): llmisvc $OURS_HWM MiB, agnhost $AGN_HWM MiB."
echo
python3 - "$RESULTS" "$OURS_HWM" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    n, c, reqs, rps, p50, p99, errs = line.rstrip("\n").split("\t")
    rows[(n, int(c))] = (float(rps), float(p99), int(errs))
hwm = float(sys.argv[2])
def get(n, c):
    return rows.get((n, c))
print("Targets:")
for c in (16, 256):
    m, a = get("llmisvc /mutate", c), get("agnhost /add-label", c)
    if m and a:
        r = m[0] / a[0]
        print(f"- /mutate >= 3x agnhost req/s at {c} connections: {r:.2f}x -> {'met' if r >= 3 else 'MISSED'}")
for c in sorted({c for _, c in rows}):
    m, d = get("llmisvc /mutate", c), get("llmisvc /bench/decode", c)
    if m and d:
        r = m[0] / d[0]
        print(f"- /mutate >= 70% of /bench/decode at {c} connections: {100*r:.0f}% -> {'met' if r >= 0.7 else 'MISSED'}")
m = get("llmisvc /mutate", 16)
if m:
    print(f"- /mutate p99 < 5 ms at 16 connections: {m[1]:.2f} ms -> {'met' if m[1] < 5 else 'MISSED'}")
print(f"- llmisvc RSS < 50 MiB at 256 connections: {hwm:.1f} MiB -> {'met' if hwm < 50 else 'MISSED'}")
errs = sum(e for (n, _), (_, _, e) in rows.items() if n.startswith("llmisvc"))
print(f"- zero errors (llmisvc): {errs} -> {'met' if errs == 0 else 'MISSED'}")
PY
