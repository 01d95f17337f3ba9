//! Hostile input: against the pure review functions and the in-process TLS server.
//!
//! Every case must get a well-formed answer (200 with a review echoing the uid, or a 4xx with a
//! text body), never a panic, and the server must keep serving other clients. A proptest pass
//! feeds arbitrary bodies and arbitrary mutations of valid reviews through the same functions.

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llmisvc::certs::CertResolver;
use llmisvc::certs::localhost_bundle;
use llmisvc::pipeline::Engine;
use llmisvc::server::review::{self, Answer, Endpoint, sample_admission_review};
use llmisvc::server::{AppState, ServerOptions};
use proptest::prelude::*;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use support::client::{connector, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::builtin().expect("shipped presets load"))
}

fn yaml(rel: &str) -> Value {
    let p = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn review_of(object: Value, uid: &str, operation: &str) -> Value {
    let mut r = sample_admission_review(uid);
    r["request"]["operation"] = operation.into();
    r["request"]["name"] = object["metadata"]["name"].clone();
    r["request"]["namespace"] = object["metadata"]["namespace"].clone();
    if operation == "UPDATE" {
        r["request"]["oldObject"] = object.clone();
    }
    r["request"]["object"] = object;
    r
}

fn conversion_of(objects: Vec<Value>, uid: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
           "request": {"uid": uid, "desiredAPIVersion": "serving.kserve.io/v1alpha1", "objects": objects}})
}

/// A well-formed answer: 200 with a review of the right kind echoing `uid`, or 400 with a
/// non-empty text body (only when no uid could be read).
fn check(a: &Answer, kind: &str, uid: Option<&str>, what: &str) {
    match a.status {
        200 => {
            let v: Value = serde_json::from_slice(&a.body)
                .unwrap_or_else(|e| panic!("{what}: 200 body is not JSON: {e}"));
            assert_eq!(v["kind"], kind, "{what}: {v}");
            let resp = &v["response"];
            assert!(resp.is_object(), "{what}: no response: {v}");
            if let Some(uid) = uid {
                assert_eq!(resp["uid"], uid, "{what}: uid not echoed");
            }
            if kind == "AdmissionReview" {
                assert!(resp["allowed"].is_boolean(), "{what}: {v}");
                if let Some(p) = resp.get("patch") {
                    let p = p.as_str().unwrap_or_else(|| {
                        panic!("{what}: patch must be a base64 string, got {p}")
                    });
                    assert_eq!(resp["patchType"], "JSONPatch", "{what}: {v}");
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(p)
                        .unwrap_or_else(|e| panic!("{what}: patch is not base64: {e}"));
                    let _: json_patch::Patch = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{what}: patch is not JSON Patch: {e}"));
                }
            } else {
                assert!(resp["result"]["status"].is_string(), "{what}: {v}");
            }
        }
        400 => {
            assert!(!a.body.is_empty(), "{what}: empty 400 body");
            assert!(
                std::str::from_utf8(&a.body).is_ok(),
                "{what}: 400 body not UTF-8"
            );
        }
        s => panic!("{what}: status {s}"),
    }
}

fn admit_all(body: &[u8], uid: Option<&str>, what: &str) {
    for ep in [Endpoint::Mutate, Endpoint::Validate] {
        let a = review::admission(ep, body, engine());
        check(&a, "AdmissionReview", uid, &format!("{what} ({ep:?})"));
    }
}

/// 400 at the HTTP level (no uid readable), for both admission endpoints and conversion.
fn all_400(body: &[u8], what: &str) {
    for ep in [Endpoint::Mutate, Endpoint::Validate] {
        let a = review::admission(ep, body, engine());
        assert_eq!(a.status, 400, "{what} ({ep:?})");
        check(&a, "AdmissionReview", None, what);
    }
    let a = review::conversion(body, engine());
    assert_eq!(a.status, 400, "{what} (convert)");
}

// ---------------------------------------------------------------------------------------------
// Pure functions
// ---------------------------------------------------------------------------------------------

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let n = 100_000;
    all_400("[".repeat(n).as_bytes(), "100k [");
    all_400("{\"a\":".repeat(n).as_bytes(), "100k {\"a\":");
    // Deep nesting inside an otherwise valid review.
    let prefix = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d","kind":{"group":"serving.kserve.io","version":"v1alpha2","kind":"LLMInferenceService"},"operation":"CREATE","object":{"apiVersion":"serving.kserve.io/v1alpha2","kind":"LLMInferenceService","metadata":{"name":"x"},"spec":{"template":"#;
    let mut body = prefix.to_vec();
    body.extend(std::iter::repeat_n(b'[', n));
    body.extend(std::iter::repeat_n(b']', n));
    body.extend_from_slice(b"}}}}");
    all_400(&body, "100k [ inside spec.template");
    let mut conv = br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"c","desiredAPIVersion":"serving.kserve.io/v1alpha1","objects":"#.to_vec();
    conv.extend(std::iter::repeat_n(b'[', n));
    assert_eq!(review::conversion(&conv, engine()).status, 400);
}

#[test]
fn nesting_just_under_the_parser_limit_is_answered() {
    // serde_json refuses depth > 128; 100 levels inside spec goes through every step.
    let mut deep = json!("leaf");
    for i in 0..100 {
        deep = if i % 2 == 0 {
            json!([deep])
        } else {
            json!({"k": deep})
        };
    }
    for (path, what) in [
        ("/spec/template", "template"),
        ("/spec/x-unknown", "unknown field"),
        ("/metadata/annotations", "annotations"),
    ] {
        let mut obj = yaml("examples/minimal.yaml");
        let (parent, key) = path.rsplit_once('/').unwrap();
        obj.pointer_mut(parent).unwrap()[key] = deep.clone();
        for op in ["CREATE", "UPDATE"] {
            let body = serde_json::to_vec(&review_of(obj.clone(), "n", op)).unwrap();
            admit_all(&body, Some("n"), &format!("deep {what} {op}"));
        }
        let body = serde_json::to_vec(&conversion_of(vec![obj], "n")).unwrap();
        check(
            &review::conversion(&body, engine()),
            "ConversionReview",
            Some("n"),
            what,
        );
    }
}

#[test]
fn huge_strings_are_answered() {
    let big = "x".repeat(2 * 1024 * 1024 + 512 * 1024);
    for (path, key) in [
        ("/spec/model", "uri"),
        ("/metadata/annotations", "huge"),
        ("/metadata", "name"),
        ("/spec", "x-unknown"),
    ] {
        let mut obj = yaml("examples/minimal.yaml");
        if obj.pointer(path).is_none() {
            obj["metadata"]["annotations"] = json!({});
        }
        obj.pointer_mut(path).unwrap()[key] = Value::String(big.clone());
        let mut r = review_of(obj.clone(), "h", "CREATE");
        r["request"]["name"] = "h".into();
        let body = serde_json::to_vec(&r).unwrap();
        assert!(body.len() < 3 * 1024 * 1024);
        admit_all(&body, Some("h"), &format!("huge {path}/{key}"));
        let body = serde_json::to_vec(&conversion_of(vec![obj], "h")).unwrap();
        check(
            &review::conversion(&body, engine()),
            "ConversionReview",
            Some("h"),
            path,
        );
    }
    // A huge uid is echoed as it came.
    let body = serde_json::to_vec(&sample_admission_review(&big)).unwrap();
    admit_all(&body, Some(&big), "huge uid");
}

#[test]
fn ten_thousand_containers_are_answered() {
    let with = |n: usize| {
        let containers: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "busybox", "env": [{"name": "A", "value": "b"}]}))
            .collect();
        let mut obj = yaml("examples/minimal.yaml");
        obj["spec"]["template"] = json!({ "containers": containers });
        obj
    };
    let obj = with(10_000);
    let body = serde_json::to_vec(&review_of(obj.clone(), "c", "CREATE")).unwrap();
    let started = Instant::now();
    check(
        &review::admission(Endpoint::Validate, &body, engine()),
        "AdmissionReview",
        Some("c"),
        "10k validate",
    );
    let body = serde_json::to_vec(&conversion_of(vec![obj], "c")).unwrap();
    check(
        &review::conversion(&body, engine()),
        "ConversionReview",
        Some("c"),
        "10k convert",
    );
    eprintln!(
        "10k containers, validate + convert: {:?}",
        started.elapsed()
    );
    // The preset merge indexes keyed lists (it was quadratic in the number of containers and
    // took minutes for 10k in a debug build; now under a second).
    let n = std::env::var("LLMISVC_HOSTILE_CONTAINERS").map_or(10_000, |v| v.parse().unwrap());
    let body = serde_json::to_vec(&review_of(with(n), "c", "CREATE")).unwrap();
    let started = Instant::now();
    check(
        &review::admission(Endpoint::Mutate, &body, engine()),
        "AdmissionReview",
        Some("c"),
        "mutate containers",
    );
    eprintln!("{n} containers, mutate: {:?}", started.elapsed());
}

#[test]
fn duplicate_keys_get_a_well_formed_answer() {
    let cases: [&[u8]; 5] = [
        br#"{"apiVersion":"admission.k8s.io/v1","apiVersion":"v1","kind":"AdmissionReview","request":{"uid":"d"}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d1","uid":"d2","kind":{"group":"serving.kserve.io","version":"v1alpha2","kind":"LLMInferenceService"},"operation":"CREATE","object":{"kind":"LLMInferenceService","apiVersion":"serving.kserve.io/v1alpha2","metadata":{"name":"a"},"spec":{"model":{"uri":"hf://a/b"}}}}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d","kind":{"group":"serving.kserve.io","version":"v1alpha2","kind":"LLMInferenceService"},"operation":"CREATE","object":{"kind":"LLMInferenceService","apiVersion":"serving.kserve.io/v1alpha2","metadata":{"name":"a","name":"b"},"spec":{"model":{"uri":"hf://a/b"},"spec":1,"model":{"uri":"hf://c/d"}}}}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d"},"request":{"uid":"e"}}"#,
        br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"d","uid":"e","desiredAPIVersion":"serving.kserve.io/v1alpha1","objects":[]}}"#,
    ];
    for (i, body) in cases.iter().enumerate() {
        for ep in [Endpoint::Mutate, Endpoint::Validate] {
            check(
                &review::admission(ep, body, engine()),
                "AdmissionReview",
                None,
                &format!("dup {i}"),
            );
        }
        check(
            &review::conversion(body, engine()),
            "ConversionReview",
            None,
            &format!("dup {i}"),
        );
    }
}

#[test]
fn invalid_utf8_and_bad_escapes_are_400() {
    let base = serde_json::to_string(&sample_admission_review("u")).unwrap();
    let bad_bytes = base.replace("hf://Qwen", "hf://\u{1}Qwen").into_bytes();
    let mut invalid = base.clone().into_bytes();
    let pos = base.find("Qwen").unwrap();
    invalid[pos] = 0xff;
    all_400(&invalid, "0xff in a string");
    all_400(&[0xef, 0xbb, 0xbf, b'{', b'}'], "BOM");
    all_400(&bad_bytes, "control character in a string");
    let lone = base.replace("Qwen", "\\ud800Qwen");
    all_400(lone.as_bytes(), "lone surrogate escape");
    all_400(b"", "empty body");
    all_400(b"\0\0\0\0", "NULs");
    all_400(&base.as_bytes()[..base.len() / 2], "truncated");
}

#[test]
fn numbers_out_of_range_are_answered() {
    // Unrepresentable as f64 where it is read (in the object): a parse error, 400.
    let body = serde_json::to_string(&sample_admission_review("n")).unwrap();
    assert!(body.contains("\"model\":{"), "{body}");
    all_400(
        body.replacen("\"model\":{", "\"replicas\":1e400,\"model\":{", 1)
            .as_bytes(),
        "1e400 in the object",
    );
    // In a field llmisvc never reads (dryRun) it is skipped unread: a normal answer.
    let skipped = body.replace("\"dryRun\":false", "\"dryRun\":1e400");
    assert_ne!(skipped, body);
    admit_all(skipped.as_bytes(), Some("n"), "1e400 in dryRun");
    let spec = |s: &str| {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"n","kind":{{"group":"serving.kserve.io","version":"v1alpha2","kind":"LLMInferenceService"}},"operation":"CREATE","namespace":"d","object":{{"apiVersion":"serving.kserve.io/v1alpha2","kind":"LLMInferenceService","metadata":{{"name":"a"}},"spec":{s}}}}}}}"#
        )
    };
    for n in [
        "18446744073709551616",
        "-9223372036854775809",
        "4294967296",
        "2147483648",
        "-1",
        "0",
        "1.5",
        "1e300",
        "-0",
        "1E-300",
    ] {
        for s in [
            format!(r#"{{"model":{{"uri":"hf://a/b"}},"replicas":{n}}}"#),
            format!(
                r#"{{"model":{{"uri":"hf://a/b"}},"parallelism":{{"tensor":{n},"data":{n},"dataLocal":{n},"dataRPCPort":{n}}},"worker":{{}}}}"#
            ),
            format!(
                r#"{{"model":{{"uri":"hf://a/b","lora":{{"maxRank":{n},"maxAdapters":{n}}}}}}}"#
            ),
            format!(
                r#"{{"model":{{"uri":"hf://a/b"}},"template":{{"containers":[{{"name":"main","resources":{{"limits":{{"nvidia.com/gpu":{n}}}}}}}]}}}}"#
            ),
        ] {
            admit_all(
                spec(&s).as_bytes(),
                Some("n"),
                &format!("number {n} in {s}"),
            );
        }
    }
}

/// Every path of `v`, as JSON pointers (the root excluded).
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        _ => {}
    }
}

fn wrong_types() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-7),
        json!(1.5),
        json!("str"),
        json!([]),
        json!({}),
        json!([{}]),
        json!({"": null}),
    ]
}

#[test]
fn wrong_types_at_every_level_of_a_service_and_of_the_review() {
    let wrong = wrong_types();
    let mut cases = 0;
    // The user-written prefill/decode service (spec, template, worker, prefill, parallelism,
    // router...) and the envelope around it, on CREATE and UPDATE.
    for op in ["CREATE", "UPDATE"] {
        let review = review_of(yaml("examples/prefill-decode-multinode.yaml"), "w", op);
        let mut ps = Vec::new();
        paths(&review, String::new(), &mut ps);
        for p in &ps {
            for w in &wrong {
                let mut r = review.clone();
                *r.pointer_mut(p).unwrap() = w.clone();
                let body = serde_json::to_vec(&r).unwrap();
                // The uid is echoed unless the mutation destroyed it.
                let uid = r
                    .pointer("/request/uid")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty());
                for ep in [Endpoint::Mutate, Endpoint::Validate] {
                    let a = review::admission(ep, &body, engine());
                    check(
                        &a,
                        "AdmissionReview",
                        uid,
                        &format!("{op} {p} = {w} ({ep:?})"),
                    );
                }
                cases += 1;
            }
        }
    }
    // The stored, expanded object: containers, probes, env, volumes... (one level of wrong
    // type per path, fewer kinds to keep the test fast).
    let expanded = engine()
        .mutate(&yaml("examples/prefill-decode-multinode.yaml"))
        .unwrap();
    let review = review_of(expanded, "w", "UPDATE");
    let mut ps = Vec::new();
    paths(
        &review["request"]["object"],
        "/request/object".into(),
        &mut ps,
    );
    for (i, p) in ps.iter().enumerate() {
        let w = &wrong[i % wrong.len()];
        let mut r = review.clone();
        *r.pointer_mut(p).unwrap() = w.clone();
        let body = serde_json::to_vec(&r).unwrap();
        admit_all(&body, Some("w"), &format!("expanded {p} = {w}"));
        cases += 1;
    }
    // Conversion: wrong types in the objects and the envelope.
    let conv = conversion_of(vec![yaml("tests/fixtures/v1alpha2-full.yaml")], "c");
    let mut ps = Vec::new();
    paths(&conv, String::new(), &mut ps);
    for (i, p) in ps.iter().enumerate() {
        for w in [&wrong[i % wrong.len()], &wrong[(i + 3) % wrong.len()]] {
            let mut r = conv.clone();
            *r.pointer_mut(p).unwrap() = w.clone();
            let uid = r
                .pointer("/request/uid")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty());
            let body = serde_json::to_vec(&r).unwrap();
            check(
                &review::conversion(&body, engine()),
                "ConversionReview",
                uid,
                &format!("convert {p} = {w}"),
            );
            cases += 1;
        }
    }
    assert!(cases > 500, "{cases}");
}

// ---------------------------------------------------------------------------------------------
// Property pass: arbitrary bodies and arbitrary mutations of valid reviews
// ---------------------------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9:/._-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("LLMInferenceService"),
            Just("serving.kserve.io/v1alpha2"),
            Just("UPDATE"),
            Just("main"),
            Just("hf://a/b"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z]{1,8}".boxed(),
                        prop_oneof![
                            Just("spec"),
                            Just("template"),
                            Just("containers"),
                            Just("worker"),
                            Just("prefill"),
                            Just("parallelism"),
                            Just("tensor"),
                            Just("router"),
                            Just("model"),
                            Just("uri"),
                            Just("metadata"),
                            Just("name")
                        ]
                        .prop_map(String::from)
                        .boxed()
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn valid_reviews() -> Vec<Value> {
    let pd = yaml("examples/prefill-decode-multinode.yaml");
    let expanded = engine().mutate(&pd).unwrap();
    vec![
        review_of(yaml("examples/minimal.yaml"), "p", "CREATE"),
        review_of(pd, "p", "CREATE"),
        review_of(expanded, "p", "UPDATE"),
    ]
}

fn all_paths(v: &Value) -> Vec<String> {
    let mut ps = Vec::new();
    paths(v, String::new(), &mut ps);
    ps
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        admit_all(&body, None, "bytes");
        check(&review::conversion(&body, engine()), "ConversionReview", None, "bytes");
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let body = serde_json::to_vec(&v).unwrap();
        admit_all(&body, None, "json");
        check(&review::conversion(&body, engine()), "ConversionReview", None, "json");
        // The same value as a service inside a valid envelope, and as a converted object.
        let mut r = sample_admission_review("q");
        r["request"]["object"]["spec"] = v.clone();
        admit_all(&serde_json::to_vec(&r).unwrap(), Some("q"), "json spec");
        let c = conversion_of(vec![json!({"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService", "metadata": {"name": "q"}, "spec": v})], "q");
        check(&review::conversion(&serde_json::to_vec(&c).unwrap(), engine()), "ConversionReview", Some("q"), "json conv");
    }

    #[test]
    fn mutated_valid_reviews_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), arb_json(), 0u8..3), 1..4),
    ) {
        static REVIEWS: OnceLock<Vec<(Value, Vec<String>)>> = OnceLock::new();
        let reviews = REVIEWS.get_or_init(|| valid_reviews().into_iter().map(|r| { let p = all_paths(&r); (r, p) }).collect());
        let (base, ps) = &reviews[which];
        let mut r = base.clone();
        for (idx, v, how) in edits {
            let p = idx.get(ps);
            let Some(slot) = r.pointer_mut(p) else { continue };
            match how {
                0 => *slot = v,
                1 => if let Some(m) = slot.as_object_mut() { m.insert("x".into(), v); } else { *slot = v },
                _ => if let Some(a) = slot.as_array_mut() { a.push(v); } else if let Some(m) = slot.as_object_mut() { m.clear(); } else { *slot = Value::Null },
            }
        }
        let uid = r.pointer("/request/uid").and_then(Value::as_str).filter(|u| !u.is_empty()).map(String::from);
        admit_all(&serde_json::to_vec(&r).unwrap(), uid.as_deref(), "mutated review");
        // The mutated object through conversion, both ways.
        if let Some(obj) = r.pointer("/request/object").cloned() {
            for to in ["serving.kserve.io/v1alpha1", "serving.kserve.io/v1alpha2"] {
                let mut c = conversion_of(vec![obj.clone()], "k");
                c["request"]["desiredAPIVersion"] = to.into();
                check(&review::conversion(&serde_json::to_vec(&c).unwrap(), engine()), "ConversionReview", Some("k"), "mutated conv");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The TLS server
// ---------------------------------------------------------------------------------------------

struct Srv {
    addr: SocketAddr,
    state: Arc<AppState>,
    ca: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Srv {
    async fn start(opts: ServerOptions) -> Srv {
        let bundle = localhost_bundle(Duration::from_secs(86400)).unwrap();
        let resolver =
            Arc::new(CertResolver::new(&bundle.serving.cert, &bundle.serving.key).unwrap());
        let state = AppState::new(engine().clone(), resolver);
        let (addr, stop, handle) = support::server::in_process(state.clone(), opts).await;
        Srv {
            addr,
            state,
            ca: bundle.ca.cert,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// A normal client still gets a correct answer.
    async fn assert_serves(&self, uid: &str) {
        let body = serde_json::to_vec(&sample_admission_review(uid)).unwrap();
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            request(self.addr, &self.ca, "POST", "/mutate", body, false),
        )
        .await
        .expect("served in time")
        .expect("served");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["response"]["uid"], uid);
        assert_eq!(self.state.metrics.panics.get(), 0);
    }

    async fn stop(mut self) {
        assert_eq!(self.state.metrics.panics.get(), 0, "no handler panicked");
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.handle.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }
}

fn quick() -> ServerOptions {
    ServerOptions {
        handshake_timeout: Duration::from_millis(1000),
        request_timeout: Duration::from_millis(1500),
        shutdown_grace: Duration::from_secs(1),
        ..Default::default()
    }
}

async fn tls_stream(srv: &Srv, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    connector(&srv.ca, &[alpn])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until EOF or error; returns what was read. Panics if the peer keeps it open longer
/// than `within`.
async fn read_until_closed<S: AsyncReadExt + Unpin>(
    s: &mut S,
    within: Duration,
    what: &str,
) -> Vec<u8> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: the server kept the connection open");
    got
}

#[tokio::test]
async fn hostile_bodies_over_tls_get_well_formed_answers() {
    let srv = Srv::start(quick()).await;
    let big = "y".repeat(2 * 1024 * 1024 + 256 * 1024);
    let mut huge = sample_admission_review("big");
    huge["request"]["object"]["metadata"]["annotations"] = json!({ "a": big });
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("/mutate", "[".repeat(100_000).into_bytes(), &[400]),
        ("/validate", vec![0xff, 0xfe, 0x00], &[400]),
        ("/convert", b"{\"apiVersion\":1e400}".to_vec(), &[400]),
        ("/mutate", serde_json::to_vec(&huge).unwrap(), &[200]),
        ("/validate", serde_json::to_vec(&huge).unwrap(), &[200]),
        ("/mutate", vec![b' '; 4 * 1024 * 1024], &[413]),
        ("/nope", vec![], &[404]),
    ];
    for h2 in [false, true] {
        for (path, body, want) in &cases {
            let r = request(srv.addr, &srv.ca, "POST", path, body.clone(), h2)
                .await
                .unwrap();
            assert!(
                want.contains(&r.status),
                "{path} h2={h2}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            );
        }
    }
    // GET on a POST route.
    let r = request(srv.addr, &srv.ca, "GET", "/mutate", vec![], false)
        .await
        .unwrap();
    assert_eq!(r.status, 405);
    srv.assert_serves("after-bodies").await;
    srv.stop().await;
}

#[tokio::test]
async fn slow_loris_headers_are_cut_off() {
    let srv = Srv::start(quick()).await;
    let started = Instant::now();
    let mut tls = tls_stream(&srv, b"http/1.1").await;
    let head = b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let mut cut = false;
    for b in head.iter() {
        if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
            cut = true;
            break;
        }
        // One byte per 250 ms: the whole header would take ~20 s.
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(250), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(n)) => {
                // A 408 answer before closing is fine too.
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            }
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "slow headers were not cut off"
        );
    }
    assert!(cut, "the slow client sent its whole request");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    srv.assert_serves("after-slowloris").await;
    srv.stop().await;
}

#[tokio::test]
async fn slow_and_silent_tls_handshakes_are_cut_off() {
    let srv = Srv::start(quick()).await;
    // Silent after connect.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    read_until_closed(&mut tcp, Duration::from_secs(4), "silent client").await;
    // A ClientHello trickled one byte per 200 ms.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let started = Instant::now();
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    hello.extend_from_slice(&[0x42; 190]);
    for b in hello {
        if tcp.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    read_until_closed(&mut tcp, Duration::from_secs(4), "trickled ClientHello").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Completed TLS, then nothing at all (neither HTTP/1.1 nor the HTTP/2 preface).
    let mut tls = tls_stream(&srv, b"http/1.1").await;
    read_until_closed(
        &mut tls,
        Duration::from_secs(4),
        "idle after TLS (http/1.1)",
    )
    .await;
    srv.assert_serves("after-handshakes").await;
    srv.stop().await;
}

#[tokio::test]
async fn slow_bodies_time_out() {
    let srv = Srv::start(quick()).await;
    let mut tls = tls_stream(&srv, b"http/1.1").await;
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{").await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        if tls.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(200), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // A body that claims more than the limit is refused before it is sent.
    let mut tls = tls_stream(&srv, b"http/1.1").await;
    tls.write_all(
        b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let got = read_until_closed(&mut tls, Duration::from_secs(4), "huge Content-Length").await;
    let text = String::from_utf8_lossy(&got);
    // 413 up front, or 408 when the request timeout ends the wait for the body.
    assert!(
        text.starts_with("HTTP/1.1 413") || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    srv.assert_serves("after-slow-bodies").await;
    srv.stop().await;
}

#[tokio::test]
async fn tls_garbage_is_dropped() {
    let srv = Srv::start(quick()).await;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut payloads: Vec<Vec<u8>> = vec![
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        vec![0x16, 0x03, 0x03, 0xff, 0xff],
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0xff, 0xff, 0xff, 0xff],
        vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        vec![0x17; 64],
    ];
    for len in [1usize, 5, 64, 4096, 70_000] {
        payloads.push((0..len).map(|_| rnd() as u8).collect());
    }
    for p in payloads {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        let _ = tcp.write_all(&p).await;
        read_until_closed(&mut tcp, Duration::from_secs(4), "garbage").await;
    }
    // Garbage after a completed handshake: the HTTP layer answers 400 or closes.
    let mut tls = tls_stream(&srv, b"http/1.1").await;
    tls.write_all(b"\x00\x01\x02 not http\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut tls, Duration::from_secs(4), "garbage over TLS").await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    let mut tls = tls_stream(&srv, b"h2").await;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x99\x00\x00\x00\x00\x00garbage")
        .await
        .unwrap();
    read_until_closed(&mut tls, Duration::from_secs(4), "garbage h2 frames").await;
    srv.assert_serves("after-garbage").await;
    srv.stop().await;
}

#[tokio::test]
async fn connection_flood_is_bounded_and_others_still_get_served() {
    let opts = ServerOptions {
        max_connections: 4,
        handshake_timeout: Duration::from_millis(400),
        ..quick()
    };
    let srv = Srv::start(opts).await;
    // The bound: 4 silent connections hold all permits; a fifth TLS handshake does not complete
    // until they are cut off (handshake timeout).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fifth = {
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        tokio::time::timeout(
            Duration::from_millis(250),
            connector(&srv.ca, &[b"http/1.1"])
                .connect(ServerName::try_from("localhost").unwrap(), tcp),
        )
        .await
    };
    assert!(
        fifth.is_err(),
        "a fifth connection was served beyond max_connections"
    );
    drop(held);

    // A flood of 40 silent connections: each is cut after the handshake timeout, so a normal
    // client queued behind them is served after a few rounds.
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    let started = Instant::now();
    srv.assert_serves("during-flood").await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(flood);
    srv.assert_serves("after-flood").await;
    srv.stop().await;
}

/// An HTTP/2 connection that completed TLS and then sends nothing is cut off by the idle
/// timeout (hyper's HTTP/2 server has no preface or idle timeout of its own).
#[tokio::test]
async fn idle_http2_connections_are_cut_off() {
    let srv = Srv::start(ServerOptions {
        idle_timeout: Duration::from_millis(2000),
        ..quick()
    })
    .await;
    let mut tls = tls_stream(&srv, b"h2").await;
    read_until_closed(&mut tls, Duration::from_secs(4), "idle after TLS (h2)").await;
    srv.stop().await;
}
