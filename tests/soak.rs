//! Soak: mixed /mutate, /validate and /convert traffic against the in-process TLS server while
//! the certificate files are rotated and the policies directory is rewritten (and swapped into
//! the engine as `llmisvc serve --policies-dir` does). Zero failed requests, flat memory.
//!
//! Bounded: 20 s by default; `LLMISVC_SOAK_SECS=60 cargo test --test soak` runs longer.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use llmisvc::certs::CertResolver;
use llmisvc::certs::{localhost_bundle, write_bundle};
use llmisvc::pipeline::Engine;
use llmisvc::policy::PolicySet;
use llmisvc::server::review::sample_admission_review;
use llmisvc::server::tls::{CertFiles, watch_files};
use llmisvc::server::{AppState, ServerOptions};
use serde_json::{Value, json};
use support::client::request;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A rotation to a new CA, in the two phases a safe rotation takes (what
/// `certs::selfmanaged` does with the Secret): `publish` adds the new CA to the trusted bundle
/// `ca.crt`, and only a tick later `serve` swaps in the key and certificate it signed (each file
/// renamed into place atomically, key before certificate: the watcher ignores a half-written
/// pair). A client that read `ca.crt` just before the swap still trusts what it then meets.
struct Rotation {
    staged: tempfile::TempDir,
}

impl Rotation {
    fn publish(dir: &Path) -> Rotation {
        let bundle = localhost_bundle(Duration::from_secs(86400)).unwrap();
        let staged = tempfile::tempdir_in(dir).unwrap();
        write_bundle(staged.path(), &bundle).unwrap();
        let old_ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap_or_default();
        let both = format!("{}{old_ca}", bundle.ca.cert);
        std::fs::write(staged.path().join("ca.crt"), both).unwrap();
        std::fs::rename(staged.path().join("ca.crt"), dir.join("ca.crt")).unwrap();
        Rotation { staged }
    }

    fn serve(self, dir: &Path) {
        for f in ["tls.key", "tls.crt"] {
            std::fs::rename(self.staged.path().join(f), dir.join(f)).unwrap();
        }
    }
}

fn policy(n: u64) -> String {
    format!(
        r#"name: soak
rules:
  - name: soak-rule-{n}
    action: deny
    message: "replicas at most {max}"
    cel:
      fieldPath: spec.replicas
      expression: "!has(object.spec.replicas) || object.spec.replicas <= {max}"
"#,
        max = 100 + n
    )
}

fn bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let pd: Value = serde_norway::from_str(
        &std::fs::read_to_string(format!("{root}/examples/prefill-decode-multinode.yaml")).unwrap(),
    )
    .unwrap();
    let mut create = sample_admission_review("soak-create");
    create["request"]["object"] = pd.clone();
    let expanded = Engine::builtin().unwrap().mutate(&pd).unwrap();
    let mut update = sample_admission_review("soak-update");
    update["request"]["operation"] = "UPDATE".into();
    update["request"]["object"] = expanded.clone();
    update["request"]["oldObject"] = expanded.clone();
    let conv = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "soak-convert", "desiredAPIVersion": "serving.kserve.io/v1alpha1", "objects": [expanded]}});
    vec![
        (
            "/mutate",
            serde_json::to_vec(&create).unwrap(),
            "soak-create",
        ),
        (
            "/mutate",
            serde_json::to_vec(&update).unwrap(),
            "soak-update",
        ),
        (
            "/validate",
            serde_json::to_vec(&update).unwrap(),
            "soak-update",
        ),
        (
            "/convert",
            serde_json::to_vec(&conv).unwrap(),
            "soak-convert",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_traffic_with_rotation_and_policy_reloads() {
    let secs: u64 = std::env::var("LLMISVC_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    Rotation::publish(dir.path()).serve(dir.path());
    let pdir = tempfile::tempdir().unwrap();
    std::fs::write(pdir.path().join("soak.yaml"), policy(0)).unwrap();

    let files = CertFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let (c, k) = files.read().unwrap();
    let resolver = Arc::new(CertResolver::new(&c, &k).unwrap());
    let mut engine = Engine::builtin().unwrap();
    engine.policies = PolicySet::load_dir(pdir.path()).unwrap();
    assert!(!engine.policies.is_empty());
    let state = AppState::new(engine, resolver.clone());
    let reloads = Arc::new(AtomicU64::new(0));
    let r2 = reloads.clone();
    tokio::spawn(watch_files(
        files,
        resolver,
        Duration::from_millis(100),
        move |r| {
            if r.is_ok() {
                r2.fetch_add(1, Ordering::Relaxed);
            }
        },
    ));
    let (addr, stop, handle) =
        support::server::in_process(state.clone(), ServerOptions::default()).await;

    let bodies = Arc::new(bodies());
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));

    // Clients: a fresh connection per request (so every request does a handshake against the
    // current certificate), HTTP/1.1 and HTTP/2 alternately; the CA file is read each time.
    let mut clients = Vec::new();
    for w in 0..4u64 {
        let (bodies, done, ok, failed, first_error) = (
            bodies.clone(),
            done.clone(),
            ok.clone(),
            failed.clone(),
            first_error.clone(),
        );
        let ca_path = dir.path().join("ca.crt");
        clients.push(tokio::spawn(async move {
            let mut i = w;
            while !done.load(Ordering::Relaxed) {
                let (path, body, uid) = &bodies[(i % bodies.len() as u64) as usize];
                let ca = std::fs::read_to_string(&ca_path).unwrap();
                let r = request(addr, &ca, "POST", path, body.clone(), i % 2 == 0).await;
                match r {
                    Ok(r)
                        if r.status == 200
                            && r.json()["response"]["uid"] == *uid
                            && (*path == "/convert" || r.json()["response"]["allowed"] == true) =>
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let msg = match other {
                            Ok(r) => {
                                format!("{path}: {} {}", r.status, String::from_utf8_lossy(&r.body))
                            }
                            Err(e) => format!("{path}: {e}"),
                        };
                        first_error.lock().unwrap().get_or_insert(msg);
                    }
                }
                i += 1;
            }
        }));
    }

    // A CA rotation published every third second and served the next; a policy rewrite and
    // a memory sample every second.
    let started = Instant::now();
    let warmup = Duration::from_secs(secs.min(20) / 4).max(Duration::from_secs(2));
    let mut baseline = None;
    let mut samples = Vec::new();
    let mut n = 0u64;
    let mut pending = None;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        n += 1;
        if let Some(r) = pending.take() {
            Rotation::serve(r, dir.path());
        } else if n.is_multiple_of(3) {
            pending = Some(Rotation::publish(dir.path()));
        }
        std::fs::write(pdir.path().join("soak.yaml.tmp"), policy(n)).unwrap();
        std::fs::rename(
            pdir.path().join("soak.yaml.tmp"),
            pdir.path().join("soak.yaml"),
        )
        .unwrap();
        // What watch_policies in src/serve.rs does on a change.
        let policies = PolicySet::load_dir(pdir.path()).unwrap();
        state.update_engine(|engine| engine.policies = policies.clone());
        let rss = rss_kib();
        if started.elapsed() >= warmup && baseline.is_none() {
            baseline = Some(rss);
        }
        samples.push(rss);
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let _ = stop.send(());
    handle.await.unwrap();

    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let last = *samples.last().unwrap();
    let base = baseline.unwrap_or(samples[0]);
    let peak = *samples.iter().max().unwrap();
    eprintln!(
        "soak {secs}s: {ok} ok, {failed} failed, {} certificate reloads, {n} policy reloads, RSS baseline {base} KiB, last {last} KiB, peak {peak} KiB",
        reloads.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed,
        0,
        "first failure: {:?}",
        first_error.lock().unwrap()
    );
    assert!(ok > 100, "too little traffic: {ok}");
    assert!(
        reloads.load(Ordering::Relaxed) >= 2,
        "certificates were rotated"
    );
    assert_eq!(state.metrics.panics.get(), 0);
    // Flat memory after warm-up: growth below 16 MiB (allocator noise, TLS sessions).
    assert!(
        last.saturating_sub(base) < 16 * 1024,
        "RSS grew from {base} KiB to {last} KiB"
    );
}
