#!/usr/bin/env bash
# Load benchmark, two bodies, one run: llmisvc's /mutate and its /bench/decode floor against
# Kubernetes' Go test webhook (agnhost webhook, /add-label), with wrk over TLS and keep-alive.
#
#   CREATE  the first apply of examples/prefill-decode-multinode.yaml as written (unexpanded),
#           with the kubectl annotation and managedFields the API server sends on CREATE
#   UPDATE  the re-apply of the same service, expanded (object and oldObject, each with the
#           managedFields of two managers): nothing to change; the same body as tests/pure/memory.rs
#
#   bash benches/load.sh            # DURATION=10 CONNS="16 256" by default
#   DURATION=5 CONNS="16" bash benches/load.sh
#
# Builds what it needs: the release binary, wrk (Debian), agnhost (tests/e2e/provision.sh,
# from the Kubernetes source package, cached). Prints a markdown table (req/s per connection
# count, p99 at 16 connections, peak RSS and threads of the server during the row) and the
# targets of issue 22, met or missed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-"16 256"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { echo "load.sh: $*" >&2; }

log "building the release binary"
cargo build --release --bin llmisvc >&2
BIN=$CARGO_TARGET_DIR/release/llmisvc
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  (apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }) >&2
fi
python3 -c 'import yaml' 2>/dev/null || { log "needs python3-yaml (apt-get install python3-yaml)"; exit 1; }
log "provisioning agnhost (built once with the test bed from k8s.io/kubernetes, then cached)"
TESTBED_BIN=$(LLMISVC_TESTBED_ONLY=k8s bash tests/e2e/provision.sh | tail -n1)
AGNHOST=$TESTBED_BIN/agnhost
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

"$BIN" render -f examples/prefill-decode-multinode.yaml -o json > "$WORK/expanded.json"
python3 - "$WORK" examples/prefill-decode-multinode.yaml <<'PY'
import json, sys, yaml
d, src = sys.argv[1], sys.argv[2]
sep = (",", ":")
raw = yaml.safe_load(open(src))
expanded = json.load(open(f"{d}/expanded.json"))
T = "2026-11-30T12:00:00Z"
API = "serving.kserve.io/v1alpha2"

def fields(v):  # managedFields fieldsV1 shape (as tests/pure/memory.rs builds it)
    if isinstance(v, dict):
        return {"f:" + k: fields(x) for k, x in v.items()}
    if isinstance(v, list):
        return {f"i:{i}": fields(x) for i, x in enumerate(v)}
    return {}

def review(uid, op, obj, old):
    gvk = {"group": "serving.kserve.io", "version": "v1alpha2", "kind": "LLMInferenceService"}
    gvr = {"group": "serving.kserve.io", "version": "v1alpha2", "resource": "llminferenceservices"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace", "default"),
        "operation": op, "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": op.title() + "Options"}}}

# CREATE: what `kubectl apply` of the example sends the first time.
create = json.loads(json.dumps(raw))
meta = create["metadata"]
meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = \
    json.dumps(raw, separators=sep) + "\n"
meta["managedFields"] = [{"manager": "kubectl-client-side-apply", "operation": "Update",
    "apiVersion": API, "time": T, "fieldsType": "FieldsV1",
    "fieldsV1": {"f:spec": fields(raw["spec"])}}]
# UPDATE: the stored (expanded) object re-applied unchanged.
upd = expanded
spec = upd["spec"]
upd["metadata"]["managedFields"] = [
    {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": API, "time": T,
     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": fields(spec)}},
    {"manager": "argocd-controller", "operation": "Apply", "apiVersion": API, "time": T,
     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:prefill": fields(spec["prefill"]),
        "f:router": fields(spec["router"]), "f:template": fields(spec["template"])}}}]
open(f"{d}/create.json", "w").write(json.dumps(
    review("705ab4f5-6393-11e8-b7cc-42010a800001", "CREATE", create, None), separators=sep))
open(f"{d}/update.json", "w").write(json.dumps(
    review("705ab4f5-6393-11e8-b7cc-42010a800002", "UPDATE", upd, upd), separators=sep))
PY
CREATE_BYTES=$(wc -c < "$WORK/create.json")
UPDATE_BYTES=$(wc -c < "$WORK/update.json")

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
CREATE_LUA=$(lua "$WORK/create.json")
UPDATE_LUA=$(lua "$WORK/update.json")

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

# Sanity: both answer each review with 200 and the uid; the size of our CREATE answer.
for body in create update; do
  for target in "$OURS /mutate" "$AGN /add-label"; do
    read -r port path <<<"$target"
    out=$(curl -sS --cacert "$WORK/ca.crt" --resolve "localhost:$port:127.0.0.1" \
      -H 'Content-Type: application/json' --data-binary @"$WORK/$body.json" "https://localhost:$port$path")
    grep -q 705ab4f5 <<<"$out" || { log "bad answer from $port$path: ${out:0:300}"; exit 1; }
    [[ $port == "$OURS" ]] && printf '%s' "$out" > "$WORK/$body.answer"
  done
done
CREATE_ANSWER=$(wc -c < "$WORK/create.answer")
UPDATE_ANSWER=$(wc -c < "$WORK/update.answer")

RESULTS=$WORK/results.tsv
# Peak RSS (KiB) and threads of $1 while the caller's command runs, sampled every 50 ms.
sample() { # pid outfile
  local pid=$1 out=$2 rss=0 thr=0 r t
  while [[ -e $WORK/sampling ]]; do
    read -r r t < <(awk '/^VmRSS/ {r=$2} /^Threads/ {t=$2} END {print r+0, t+0}' "/proc/$pid/status" 2>/dev/null || echo "0 0")
    (( r > rss )) && rss=$r
    (( t > thr )) && thr=$t
    sleep 0.05
  done
  echo "$rss $thr" > "$out"
}
run() { # body name pid port path lua conns
  local body=$1 name=$2 pid=$3 port=$4 path=$5 script=$6 c=$7 t=2
  (( c < t )) && t=$c
  touch "$WORK/sampling"
  sample "$pid" "$WORK/sample.out" &
  local sampler=$!
  local out
  out=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 5s --latency -s "$script" "https://127.0.0.1:$port$path" 2>&1)
  rm -f "$WORK/sampling"
  wait "$sampler"
  local rss thr
  read -r rss thr < "$WORK/sample.out"
  local line
  line=$(grep '^RESULT' <<<"$out" || true)
  [[ -n $line ]] || { log "wrk failed for $name c=$c: $out"; exit 1; }
  read -r _ reqs rps p50 p99 errs <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$body" "$name" "$c" "$reqs" "$rps" "$p50" "$p99" "$errs" "$rss" "$thr" >> "$RESULTS"
  log "$body $name c=$c: $rps req/s, p99 $p99 ms, $errs errors, RSS $((rss / 1024)) MiB, $thr threads"
}

# Warm-up (TLS session setup, allocator), not recorded.
for s in "$CREATE_LUA" "$UPDATE_LUA"; do
  wrk -t1 -c4 -d2s -s "$s" "https://127.0.0.1:$OURS/mutate" >/dev/null 2>&1 || true
  wrk -t1 -c4 -d2s -s "$s" "https://127.0.0.1:$AGN/add-label" >/dev/null 2>&1 || true
done

for body in CREATE UPDATE; do
  if [[ $body == CREATE ]]; then script=$CREATE_LUA; else script=$UPDATE_LUA; fi
  for c in $CONNS; do
    run "$body" "agnhost /add-label" "$AGN_PID" "$AGN" /add-label "$script" "$c"
    run "$body" "llmisvc /mutate" "$OURS_PID" "$OURS" /mutate "$script" "$c"
    run "$body" "llmisvc /bench/decode" "$OURS_PID" "$OURS" /bench/decode "$script" "$c"
  done
done

hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
OURS_HWM=$(hwm "$OURS_PID")
AGN_HWM=$(hwm "$AGN_PID")

CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "Machine: $(nproc) CPUs, $CPU; $(uname -sr). Server and wrk share the machine (wrk -t2), TLS keep-alive, ${DURATION}s per run."
echo "Bodies: CREATE $CREATE_BYTES B (answer $CREATE_ANSWER B), UPDATE $UPDATE_BYTES B (answer $UPDATE_ANSWER B)."
echo
python3 - "$RESULTS" "$OURS_HWM" "$AGN_HWM" "$CREATE_BYTES" "$UPDATE_BYTES" "$CREATE_ANSWER" "$(nproc)" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    body, n, c, reqs, rps, p50, p99, errs, rss, thr = line.rstrip("\n").split("\t")
    rows[(body, n, int(c))] = dict(rps=float(rps), p99=float(p99), errs=int(errs),
                                   rss=int(rss) / 1024, thr=int(thr))
ours_hwm, agn_hwm = float(sys.argv[2]), float(sys.argv[3])
size = {"CREATE": int(sys.argv[4]), "UPDATE": int(sys.argv[5])}
answer, cores = int(sys.argv[6]), int(sys.argv[7])
conns = sorted({c for (_, _, c) in rows})
names = ["agnhost /add-label", "llmisvc /mutate", "llmisvc /bench/decode"]
hdr = "| body | endpoint | " + " | ".join(f"c={c} req/s" for c in conns)
hdr += " | p99 @16 | peak RSS MiB | threads | errors |"
print(hdr)
print("|---|---|" + "--:|" * (len(conns) + 4))
for body in ("CREATE", "UPDATE"):
    for n in names:
        rs = [rows.get((body, n, c)) for c in conns]
        if not any(rs):
            continue
        p99 = rows.get((body, n, 16))
        cells = [f"{r['rps']:,.0f}" if r else "" for r in rs]
        cells.append(f"{p99['p99']:.1f} ms" if p99 else "")
        done = [r for r in rs if r]
        cells.append(f"{max(r['rss'] for r in done):.1f}")
        cells.append(str(max(r["thr"] for r in done)))
        cells.append(str(sum(r["errs"] for r in done)))
        print(f"| {body} ({size[body] / 1000:.1f} KB review) | {n} | " + " | ".join(cells) + " |")
print()
print(f"Peak RSS over the whole run (VmHWM): llmisvc {ours_hwm:.1f} MiB, agnhost {agn_hwm:.1f} MiB.")
print()
def get(b, n, c):
    return rows.get((b, n, c))
def verdict(ok):
    return "met" if ok else "MISSED"
print("Targets (issue 22):")
for body, factor in (("CREATE", 3), ("UPDATE", 5)):
    for c in (16, 256):
        m, a = get(body, "llmisvc /mutate", c), get(body, "agnhost /add-label", c)
        if m and a:
            r = m["rps"] / a["rps"]
            print(f"- {body} /mutate >= {factor}x agnhost at c={c}: {r:.2f}x -> {verdict(r >= factor)}")
    m = get(body, "llmisvc /mutate", 16)
    if m:
        print(f"- {body} /mutate p99 < 5 ms at c=16: {m['p99']:.2f} ms -> {verdict(m['p99'] < 5)}")
for c in (16, 256):
    m, d = get("CREATE", "llmisvc /mutate", c), get("CREATE", "llmisvc /bench/decode", c)
    if m and d:
        r = m["rps"] / d["rps"]
        print(f"- CREATE /mutate >= 40% of /bench/decode at c={c}: {100 * r:.0f}% -> {verdict(r >= 0.4)}")
print(f"- CREATE answer <= 60 KB: {answer / 1000:.1f} KB -> {verdict(answer <= 60000)}")
for body in ("CREATE", "UPDATE"):
    m = [get(body, n, 256) for n in ("llmisvc /mutate", "llmisvc /bench/decode")]
    m = [r for r in m if r]
    if m:
        rss = max(r["rss"] for r in m)
        print(f"- {body}: llmisvc RSS < 50 MiB at 256 connections: {rss:.1f} MiB -> {verdict(rss < 50)}")
thr = max(r["thr"] for (b, n, _), r in rows.items() if n.startswith("llmisvc"))
print(f"- llmisvc threads <= 2 x {cores} cores + a few: {thr} -> {verdict(thr <= 2 * cores + 6)}")
errs = sum(r["errs"] for (b, n, _), r in rows.items() if n.startswith("llmisvc"))
print(f"- zero errors (llmisvc): {errs} -> {verdict(errs == 0)}")
PY
