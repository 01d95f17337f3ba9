//! Memory bounded by design: a burst of 256 concurrent 74 KB reviews (the UPDATE of an
//! expanded prefill/decode service, object and oldObject) against a spawned `llmisvc serve`.
//! Asserts bounds, never timings: the process's peak RSS (VmHWM) stays under 128 MiB and its
//! thread count under 2 x cores + a few, while every request is answered.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use llmisvc::pipeline::Engine;
use llmisvc::server::review::sample_admission_review;
use serde_json::{Value, json};
use support::client::request;
use support::server::{ServerProcess, gen_certs};

const CONCURRENT: usize = 256;
const ROUNDS: usize = 3;

fn status_field(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `metadata.managedFields` `fieldsV1` of a value: every object key as `f:KEY`, list items
/// by index (the shape, not the exact key syntax, of what the API server stores).
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (format!("f:{k}"), fields_v1(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Object(
            a.iter()
                .enumerate()
                .map(|(i, x)| (format!("i:{i}"), fields_v1(x)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// The UPDATE review of the expanded prefill/decode example as the API server sends it on a
/// re-apply: object and oldObject, each with the managedFields of two managers (kubectl for the
/// whole spec, a GitOps controller for prefill, router and template). 74 KB, over the 64 KiB above which
/// reviews go to the heavy-review workers; `benches/load.sh` builds the same body.
pub fn update_body() -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    let pd: Value = serde_norway::from_str(
        &std::fs::read_to_string(format!("{root}/examples/prefill-decode-multinode.yaml")).unwrap(),
    )
    .unwrap();
    let mut expanded = Engine::builtin().unwrap().mutate(&pd).unwrap();
    let spec = &expanded["spec"];
    let managed = json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update",
         "apiVersion": "serving.kserve.io/v1alpha2", "time": "2026-11-30T12:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": fields_v1(spec)}},
        {"manager": "argocd-controller", "operation": "Apply",
         "apiVersion": "serving.kserve.io/v1alpha2", "time": "2026-11-30T12:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {
             "f:prefill": fields_v1(&spec["prefill"]), "f:router": fields_v1(&spec["router"]),
             "f:template": fields_v1(&spec["template"])}}}
    ]);
    expanded["metadata"]["managedFields"] = managed;
    let mut update = sample_admission_review("burst-update");
    update["request"]["operation"] = "UPDATE".into();
    update["request"]["object"] = expanded.clone();
    update["request"]["oldObject"] = expanded;
    serde_json::to_vec(&update).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_large_reviews_stays_bounded() {
    let body = update_body();
    assert!(
        body.len() > 64 * 1024,
        "the body must take the heavy path: {} bytes",
        body.len()
    );
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let server = ServerProcess::start(dir.path(), &[]);
    let pid = server.pid();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let ca = Arc::new(std::fs::read_to_string(dir.path().join("ca.crt")).unwrap());

    // Thread count sampled while the bursts run; the peak is what counts.
    let done = Arc::new(AtomicBool::new(false));
    let max_threads = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, max_threads) = (done.clone(), max_threads.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                max_threads.fetch_max(status_field(pid, "Threads:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let body = Arc::new(body);
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for i in 0..CONCURRENT {
            let (ca, body) = (ca.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                request(addr, &ca, "POST", "/mutate", (*body).clone(), i % 2 == 0).await
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                Ok(r)
                    if r.status == 200
                        && r.json()["response"]["uid"] == "burst-update"
                        && r.json()["response"]["allowed"] == true => {}
                Ok(r) => failures.push(format!(
                    "round {round}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                )),
                Err(e) => failures.push(format!("round {round}: {e}")),
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    let hwm_kib = status_field(pid, "VmHWM:");
    // Reported, not asserted (when the allocator returns memory is a matter of time).
    std::thread::sleep(Duration::from_secs(2));
    let idle_kib = status_field(pid, "VmRSS:");
    let threads = max_threads.load(Ordering::Relaxed);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    // tokio's async workers (one per core) and the heavy-review workers (one per core), the
    // main thread, and a few of tokio's blocking threads (file reads of the certificate watcher).
    let thread_limit = 2 * cores + 6;
    eprintln!(
        "{} x {CONCURRENT} concurrent {} B reviews: peak RSS {:.1} MiB, peak threads {threads} (limit {thread_limit}); RSS 2 s after: {:.1} MiB",
        ROUNDS,
        body.len(),
        hwm_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0
    );
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {}",
        failures.len(),
        failures[0]
    );
    assert!(
        hwm_kib < 128 * 1024,
        "peak RSS {:.1} MiB >= 128 MiB",
        hwm_kib as f64 / 1024.0
    );
    assert!(
        threads <= thread_limit,
        "peak thread count {threads} > {thread_limit} (2 x {cores} cores + 6)"
    );
}
