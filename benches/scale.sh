#!/usr/bin/env bash
# Scale benchmark of the control loop (issue 21): tests/scale.rs on the real test bed
# (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok GPU nodes, the real
# LeaderWorkerSet controller) with 1,000 services instead of the suite's 200:
#
#   flock /tmp/llmisvc-build.lock bash benches/scale.sh     # hold the lock: nothing competes
#   SERVICES=400 PROFILE=dev bash benches/scale.sh
#   LEASE=3 bash benches/scale.sh                            # the suite's 3 s Lease
#
# The same assertions as the suite (every service Ready, nothing lost or applied twice, zero
# writes at steady state, after a failover and after a re-apply, one status write per service
# for a preset change); the figures are printed as `SCALE name=value` lines and as a table
# beside the targets of issue 21. PROFILE=release (default) builds the release binary
# (llmisvc as shipped); PROFILE=dev is quicker to build. LEASE=default (the default) runs the
# reconcilers with the shipped `--lease-duration`, so failover is measured as shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SERVICES=${SERVICES:-1000}
PROFILE=${PROFILE:-release}
LEASE=${LEASE:-default}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CI=true LLMISVC_SCALE_SERVICES=$SERVICES LLMISVC_SCALE_LEASE_SECS=$LEASE
args=()
[ "$PROFILE" = release ] && args=(--release)
LOG=$CARGO_TARGET_DIR/scale-$SERVICES.log
echo "scale.sh: $SERVICES services, profile $PROFILE, Lease $LEASE, log $LOG" >&2
cargo test "${args[@]}" --test scale -- --nocapture --test-threads=1 2>&1 | tee "$LOG" >&2
fig() { sed -n "s/^SCALE $1=//p" "$LOG" | tail -1; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
verdict() { if lt "$1" "$2"; then echo met; else echo missed; fi; }
adm=$(fig admission_seconds)
ready=$(fig ready_seconds_after_last_apply)
rss=$(printf '%s\n' "$(fig reconciler_a_peak_rss_mib)" "$(fig reconciler_b_peak_rss_mib)" "$(fig reconciler_c_peak_rss_mib)" | sort -g | tail -1)
web=$(fig webhook_peak_rss_mib)
fo1=$(fig failover_mid_run_seconds_to_first_reconcile)
fo2=$(fig failover_seconds_to_first_reconcile)
cat <<TABLE

| $SERVICES services ($PROFILE build) | measured | target | |
|---|---|---|---|
| admission (8 parallel kubectl apply --server-side) | ${adm} s, $(fig admission_per_second)/s, webhook p99 $(fig admission_p99) ($(fig admission_webhook_calls) calls) | 1,000 in < 60 s | $(verdict "$adm" 60) |
| all Ready after the last apply | ${ready} s (${SERVICES} services, $(fig children) children; the last child created $(fig children_created_seconds_after_first_apply) s after the first apply) | < 120 s | $(verdict "$ready" 120) |
| reconciler writes at steady state | $(fig steady_state_writes) in $(( ${LLMISVC_SCALE_QUIET_SECS:-20} )) s; 0 after a failover and after re-applying all manifests (asserted) | 0 | $( [ "$(fig steady_state_writes)" = 0 ] && echo met || echo missed) |
| reconciler peak RSS | ${rss} MiB (RssAnon $(fig reconciler_c_rss_anon_mib) MiB at the end) | < 100 MiB | $(verdict "$rss" 100) |
| webhook peak RSS | ${web} MiB | < 64 MiB | $(verdict "$web" 64) |
| failover: kill -9 of the leader to the new leader's first reconcile | ${fo1} s mid-run, ${fo2} s at steady state (Lease $(fig lease_seconds) s) | < 15 s | $(verdict "$(printf '%s\n' "$fo1" "$fo2" | sort -g | tail -1)" 15) |
| preset change affecting all services: all PresetsUpToDate=False | $(fig preset_change_seconds) s, $(fig preset_change_writes) writes ($(fig preset_change_writes_per_second)/s, one per service) | bounded | — |
TABLE
