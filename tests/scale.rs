//! Real-cluster scale test (issue 21): many services through the webhooks, the reconciler on
//! the workload plane (kube-controller-manager, kube-scheduler, kwok GPU nodes, the real
//! LeaderWorkerSet controller).
//!
//! `LLMISVC_SCALE_SERVICES` services (default 200; `benches/scale.sh` runs 1,000), a quarter
//! each single-node, single-node again, multi-node (a LeaderWorkerSet of 2 pods) and
//! prefill/decode, applied server-side by 8 parallel `kubectl` processes. Two reconcilers with
//! the Lease (3 s, or `LLMISVC_SCALE_LEASE_SECS`: seconds or `default`); the leader is killed
//! (SIGKILL) once a third of the services are Ready. Asserted,
//! never timed:
//! - every service reaches `Ready=True` and has exactly the children the builder makes
//!   (nothing lost), no child was created twice or updated (nothing applied twice);
//! - steady state: no write request by the reconciler (its log: applies, prunes, status and
//!   finalizer writes) and no resourceVersion of a service, nor the reconciler's managedFields
//!   entry of any child, changes in a quiet window;
//! - a new leader (the old one killed at steady state) reconciles every service and writes
//!   nothing; a server-side re-apply of all unchanged manifests writes nothing;
//! - a preset change affecting every service: every service turns `PresetsUpToDate=False`,
//!   with exactly one status write each.
//!
//! Figures (admission p99 from the API server's
//! `apiserver_admission_webhook_admission_duration_seconds`, times to Ready, failover, peak
//! RSS of the reconcilers and the webhook from /proc) are printed to stdout
//! (`-- --nocapture`), one `SCALE name=value` line each.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{Cluster, GPU_NODES, sim_node};
use support::e2e::{Reconciler, cond, json_of};
use support::server::install;

const NS: &str = "scale";
const LLMISVC: &str = "llminferenceservices.serving.kserve.io";
const KINDS: &str = "deployments.apps,services,serviceaccounts,roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,leaderworkersets.leaderworkerset.x-k8s.io,inferencepools.inference.networking.k8s.io,httproutes.gateway.networking.k8s.io,horizontalpodautoscalers.autoscaling,scaledobjects.keda.sh";
/// Convergence deadline (a failure bound, not a measured target).
const CONVERGE: Duration = Duration::from_secs(900);

fn services() -> usize {
    std::env::var("LLMISVC_SCALE_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn quiet_window() -> Duration {
    Duration::from_secs(
        std::env::var("LLMISVC_SCALE_QUIET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    )
}

/// The reconcilers' Lease: `LLMISVC_SCALE_LEASE_SECS` seconds (default 3, quick failovers in
/// the suite), or `default` for the binary's `--lease-duration` default (`benches/scale.sh`,
/// which measures failover as shipped).
fn lease_secs() -> Option<u64> {
    match std::env::var("LLMISVC_SCALE_LEASE_SECS") {
        Ok(v) if v == "default" => None,
        Ok(v) => Some(
            v.parse()
                .expect("LLMISVC_SCALE_LEASE_SECS: seconds or `default`"),
        ),
        Err(_) => Some(3),
    }
}

fn reconciler(cluster: &Cluster, tag: &str) -> Reconciler {
    Reconciler::start_with_lease(cluster, tag, lease_secs())
}

fn figure(name: &str, value: impl std::fmt::Display) {
    println!("SCALE {name}={value}");
}

/// Service `i`: single-node (i % 4 = 0, 1), multi-node (2), prefill/decode (3).
fn manifest(i: usize) -> String {
    let spec = match i % 4 {
        0 | 1 => json!({"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}}),
        2 => json!({
            "model": {"uri": "hf://Qwen/Qwen3-8B"},
            "parallelism": {"data": 2, "dataLocal": 1},
            "template": {}, "worker": {},
        }),
        _ => json!({
            "model": {"uri": "hf://Qwen/Qwen3-8B"},
            "template": {},
            "prefill": {"replicas": 1},
        }),
    };
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": format!("svc-{i:04}"), "namespace": NS},
        "spec": spec,
    })
    .to_string()
}

/// Server-side applies of every manifest in `dir`, by 8 parallel kubectl processes.
fn apply_all(cluster: &Cluster, dir: &Path) {
    let mut chunks: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    chunks.sort();
    let procs: Vec<_> = chunks
        .iter()
        .map(|f| {
            cluster
                .kubectl_cmd()
                .args(["apply", "--server-side", "--field-manager=scale-test", "-f"])
                .arg(f)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn list(cluster: &Cluster, kinds: &str) -> Vec<Value> {
    json_of(&cluster.kubectl_ok(&["get", kinds, "-n", NS, "-o", "json"]))["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The reconciler's children (the LeaderWorkerSet controller's own headless Services are not).
fn children(cluster: &Cluster) -> Vec<Value> {
    json_of(&cluster.kubectl_ok(&[
        "get",
        KINDS,
        "-n",
        NS,
        "-l",
        "app.kubernetes.io/managed-by=llmisvc",
        "-o",
        "json",
    ]))["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn id(o: &Value) -> String {
    format!(
        "{} {}",
        o["kind"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// What only a write changes: every service's resourceVersion, and the reconciler's
/// managedFields entries of every child.
fn snapshot(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for s in list(cluster, LLMISVC) {
        m.insert(
            id(&s),
            s["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    for c in children(cluster) {
        let ours: Vec<&Value> = c["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["manager"] == "llmisvc-reconciler")
            .collect();
        m.insert(id(&c), serde_json::to_string(&ours).unwrap());
    }
    m
}

fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(20)
        .map(|k| format!("{k}: {:?} -> {:?}", a.get(k), b.get(k)))
        .collect()
}

/// The reconciler's write requests in a log: applies, prunes, status and finalizer writes.
fn write_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            [
                " applied ",
                " pruned ",
                " status written ",
                " finalizer written ",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .map(str::to_string)
        .collect()
}

/// `key=value` of a log line (quotes removed).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"'))
}

/// Peak resident set (VmHWM) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    proc_status_mib(pid, "VmHWM:")
}

/// A kB field of /proc/<pid>/status, in MiB (`RssAnon:`: the heap and stacks, without the
/// mapped binary).
fn proc_status_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The API server's admission-webhook latency histogram for our webhooks: (upper bound, count)
/// buckets summed over webhooks and operations, cumulative.
fn admission_buckets(cluster: &Cluster) -> BTreeMap<String, f64> {
    let text = cluster.kubectl_ok(&["get", "--raw", "/metrics"]);
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for l in text.lines() {
        if !l.starts_with("apiserver_admission_webhook_admission_duration_seconds_bucket{")
            || !l.contains("llmisvc.serving.kserve.io")
        {
            continue;
        }
        let Some(le) = l.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let n: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *m.entry(le.to_string()).or_default() += n;
    }
    m
}

/// p99 upper bound (seconds) and count of the requests between two histogram readings.
fn p99(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> (String, f64) {
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let b = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            (b, n - before.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let total = buckets.last().map_or(0.0, |b| b.1);
    let bound = buckets
        .iter()
        .find(|(_, n)| *n >= 0.99 * total)
        .map_or("n/a".to_string(), |(b, _)| format!("<= {b}s"));
    (bound, total)
}

fn ready_count(cluster: &Cluster) -> (usize, Vec<Value>) {
    let svcs = list(cluster, LLMISVC);
    let n = svcs
        .iter()
        .filter(|s| cond(s, "Ready") == Some("True"))
        .count();
    (n, svcs)
}

/// Waits until `f` holds for the log of `r`; returns when it was seen.
fn wait_log(r: &Reconciler, what: &str, f: impl Fn(&str) -> bool) -> Instant {
    let start = Instant::now();
    loop {
        if f(&r.log_text()) {
            return Instant::now();
        }
        assert!(
            start.elapsed() < CONVERGE,
            "timed out waiting for {what}:\n{}",
            r.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds since midnight UTC of a log line's RFC 3339 timestamp (`2026-11-30T16:19:12.61Z`).
fn log_second_of_day(line: &str) -> Option<f64> {
    let t = line.split_whitespace().next()?.split('T').nth(1)?;
    let mut p = t.trim_end_matches('Z').split(':');
    let (h, m, s): (f64, f64, f64) = (
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    Some(h * 3600.0 + m * 60.0 + s)
}

fn now_second_of_day() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_millis()) / 1000.0
}

fn reconciled_services(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter(|l| l.contains(" reconciled "))
        .filter_map(|l| field(l, "service").map(str::to_string))
        .collect()
}

#[test]
fn many_services_converge_and_the_reconciler_goes_quiet() {
    let Some(mut cluster) = Cluster::start_or_skip() else {
        return;
    };
    let n = services();
    cluster.start_workload_plane();
    // Enough simulated GPU capacity for every pod: nodes of 64 GPUs and 250 pods each.
    let mut node = sim_node(&GPU_NODES[0]);
    let extra = n.div_ceil(50).max(2);
    for i in 0..extra {
        node["metadata"]["name"] = json!(format!("gpu-scale-{i}"));
        node["metadata"]["labels"]["kubernetes.io/hostname"] = json!(format!("gpu-scale-{i}"));
        for k in ["capacity", "allocatable"] {
            node["status"][k]["nvidia.com/gpu"] = json!("64");
            node["status"][k]["pods"] = json!("250");
        }
        cluster.apply_ok(&node.to_string());
    }
    let server = install(&cluster, &[]);
    cluster.kubectl_ok(&["create", "namespace", NS]);
    let mut a = reconciler(&cluster, "a");
    wait_log(&a, "reconciler a to lead", |l| {
        l.contains("reconciler running")
    });
    let b = reconciler(&cluster, "b");
    figure("services", n);
    figure(
        "lease_seconds",
        lease_secs().unwrap_or(llmisvc::reconcile::controller::DEFAULT_LEASE_DURATION.as_secs()),
    );

    let dir = cluster.dir.path().join("scale-manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let mut chunks = vec![String::new(); 8];
    for i in 0..n {
        chunks[i % 8].push_str(&manifest(i));
        chunks[i % 8].push('\n');
    }
    for (i, c) in chunks.iter().enumerate() {
        std::fs::write(dir.join(format!("chunk-{i}.json")), c).unwrap();
    }

    // Admission.
    let before = admission_buckets(&cluster);
    let start_of_day = now_second_of_day();
    let start = Instant::now();
    apply_all(&cluster, &dir);
    let applied = start.elapsed();
    let (bound, count) = p99(&before, &admission_buckets(&cluster));
    figure("admission_seconds", format!("{:.1}", applied.as_secs_f64()));
    figure(
        "admission_per_second",
        format!("{:.1}", n as f64 / applied.as_secs_f64()),
    );
    figure("admission_webhook_calls", count);
    figure("admission_p99", bound);

    // Convergence, with the leader killed a third of the way.
    let mut killed_at = None;
    let mut svcs;
    loop {
        let (ready, s) = ready_count(&cluster);
        svcs = s;
        if killed_at.is_none() && ready * 3 >= n {
            figure(
                "reconciler_a_peak_rss_mib",
                format!("{:.1}", peak_rss_mib(a.pid())),
            );
            a.kill();
            let killed = Instant::now();
            killed_at = Some(killed);
            let first = wait_log(&b, "b's first reconcile", |l| l.contains(" reconciled "));
            figure(
                "failover_mid_run_seconds_to_first_reconcile",
                format!("{:.1}", (first - killed).as_secs_f64()),
            );
        }
        if ready == n && killed_at.is_some() {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{ready}/{n} Ready\n--- reconciler b ---\n{}",
            b.log_text()
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let all_ready = start.elapsed();
    figure(
        "ready_seconds_after_first_apply",
        format!("{:.1}", all_ready.as_secs_f64()),
    );
    figure(
        "ready_seconds_after_last_apply",
        format!("{:.1}", (all_ready - applied).as_secs_f64()),
    );

    // Nothing lost: every service has exactly its built children.
    let have: BTreeSet<String> = children(&cluster).iter().map(id).collect();
    let mut want = BTreeSet::new();
    for s in &svcs {
        for c in llmisvc::reconcile::build(s).unwrap() {
            want.insert(id(&c));
        }
    }
    let missing: Vec<_> = want.difference(&have).take(10).collect();
    let extra: Vec<_> = have.difference(&want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    figure("children", have.len());
    // The reconciler's share of the time to Ready: its last child creation.
    let last_create = format!("{}{}", a.log_text(), b.log_text())
        .lines()
        .filter(|l| l.contains(" applied "))
        .filter_map(log_second_of_day)
        .fold(0.0, f64::max);
    figure(
        "children_created_seconds_after_first_apply",
        format!("{:.1}", last_create - start_of_day),
    );
    // Nothing applied twice: each child created once over both reconcilers, none updated.
    let logs = format!("{}{}", a.log_text(), b.log_text());
    let mut created = BTreeMap::<String, usize>::new();
    let mut updated = Vec::new();
    for l in write_lines(&logs)
        .iter()
        .filter(|l| l.contains(" applied "))
    {
        let key = format!(
            "{} {}",
            field(l, "kind").unwrap_or_default(),
            field(l, "name").unwrap_or_default()
        );
        match field(l, "reason") {
            Some("Created") => *created.entry(key).or_default() += 1,
            _ => updated.push(l.clone()),
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    assert!(
        updated.is_empty(),
        "{} children applied again after creation:\n{}",
        updated.len(),
        updated
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Steady state: nothing written in a quiet window.
    std::thread::sleep(Duration::from_secs(3));
    let s1 = snapshot(&cluster);
    let offset = b.log_text().len();
    std::thread::sleep(quiet_window());
    let s2 = snapshot(&cluster);
    let late = write_lines(&b.log_text()[offset..]);
    figure("steady_state_writes", late.len());
    assert!(
        late.is_empty(),
        "writes at steady state:\n{}",
        late.join("\n")
    );
    assert_eq!(
        diff(&s1, &s2),
        Vec::<String>::new(),
        "changed at steady state"
    );
    figure(
        "reconciler_b_peak_rss_mib",
        format!("{:.1}", peak_rss_mib(b.pid())),
    );

    // Failover at steady state: the new leader reconciles every service and writes nothing.
    let mut b = b;
    let c = reconciler(&cluster, "c");
    std::thread::sleep(Duration::from_secs(2));
    b.kill();
    let killed = Instant::now();
    let first = wait_log(&c, "c's first reconcile", |l| l.contains(" reconciled "));
    figure(
        "failover_seconds_to_first_reconcile",
        format!("{:.1}", (first - killed).as_secs_f64()),
    );
    let names: BTreeSet<String> = svcs
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let all = wait_log(&c, "c to reconcile every service", |l| {
        reconciled_services(l).is_superset(&names)
    });
    figure(
        "full_reconcile_seconds_after_takeover",
        format!("{:.1}", (all - first).as_secs_f64()),
    );
    let writes = write_lines(&c.log_text());
    assert!(
        writes.is_empty(),
        "the new leader wrote at steady state:\n{}",
        writes.join("\n")
    );
    assert_eq!(diff(&s1, &snapshot(&cluster)), Vec::<String>::new());

    // A re-apply of every unchanged manifest writes nothing.
    let offset = c.log_text().len();
    apply_all(&cluster, &dir);
    std::thread::sleep(Duration::from_secs(5));
    let late = write_lines(&c.log_text()[offset..]);
    assert!(
        late.is_empty(),
        "writes after re-apply:\n{}",
        late.join("\n")
    );
    assert_eq!(
        diff(&s1, &snapshot(&cluster)),
        Vec::<String>::new(),
        "changed by a re-apply of unchanged manifests"
    );

    // A preset change affecting every service: PresetsUpToDate=False on all, one status
    // write each.
    let offset = c.log_text().len();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/presets");
    let start = Instant::now();
    for f in [
        "kserve-config-llm-template.yaml",
        "kserve-config-llm-worker-data-parallel.yaml",
        "kserve-config-llm-decode-template.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let changed = text.replace("value: INFO", "value: DEBUG");
        assert_ne!(text, changed, "{f}: nothing to change");
        cluster.apply_ok(&changed);
    }
    loop {
        let svcs = list(&cluster, LLMISVC);
        let stale = svcs
            .iter()
            .filter(|s| cond(s, "PresetsUpToDate") == Some("False"))
            .count();
        if stale == n {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{stale}/{n} PresetsUpToDate=False"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let writes = write_lines(&c.log_text()[offset..]);
    figure(
        "preset_change_seconds",
        format!("{:.1}", took.as_secs_f64()),
    );
    figure("preset_change_writes", writes.len());
    figure(
        "preset_change_writes_per_second",
        format!("{:.0}", writes.len() as f64 / took.as_secs_f64()),
    );
    let per_service = writes
        .iter()
        .filter(|l| l.contains(" status written "))
        .count();
    assert_eq!(
        (per_service, writes.len()),
        (n, n),
        "one status write per service:\n{}",
        writes
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    figure(
        "reconciler_c_peak_rss_mib",
        format!("{:.1}", peak_rss_mib(c.pid())),
    );
    figure(
        "reconciler_c_rss_anon_mib",
        format!("{:.1}", proc_status_mib(c.pid(), "RssAnon:")),
    );
    figure(
        "reconciler_c_rss_file_mib",
        format!("{:.1}", proc_status_mib(c.pid(), "RssFile:")),
    );
    figure(
        "webhook_peak_rss_mib",
        format!("{:.1}", peak_rss_mib(server.pid())),
    );
}
