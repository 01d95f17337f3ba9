//! Decoding AdmissionReview / ConversionReview bodies, calling the engine, encoding answers.
//!
//! Pure functions of (body bytes, engine): the HTTP layer only moves bytes, and tests and
//! benchmarks call these directly. Client faults get a precise answer: HTTP 400 when no review
//! uid can be read, otherwise a review answer (`allowed: false`, code 400) echoing the uid.

use kube::core::Status;
use kube::core::admission::AdmissionResponse;
use kube::core::conversion::{ConversionRequest, ConversionResponse};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde_json::Value;

use super::patch;
use crate::api::{GROUP, Kind};
use crate::pipeline::{Admitted, Engine, Refused};
use crate::validate::Outcome;

/// Which admission endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// What to log and count about one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReviewInfo {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    /// patched, allowed, denied, converted, failed, bad_request
    pub result: &'static str,
    pub patch_bytes: usize,
    pub message: String,
}

/// An HTTP answer: status code and JSON (or text) body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub info: ReviewInfo,
}

fn bad_request(msg: String, info: ReviewInfo) -> Answer {
    Answer {
        status: 400,
        body: msg.clone().into_bytes(),
        info: ReviewInfo {
            result: "bad_request",
            message: msg,
            ..info
        },
    }
}

/// The AdmissionReview versions served.
fn admission_api_version(v: &str) -> bool {
    matches!(v, "admission.k8s.io/v1" | "admission.k8s.io/v1beta1")
}

use crate::model::json::str_or_empty as str_at;

/// One admission request, decoded.
#[derive(Debug, PartialEq)]
struct Request {
    api_version: String,
    uid: String,
    group: String,
    kind: String,
    namespace: String,
    name: String,
    operation: String,
    /// `Null` when absent.
    object: Value,
    /// Only decoded for `/validate` (mutation does not read it).
    old_object: Option<Value>,
}

/// The fast path: the review decoded straight into the fields we read; `oldObject` is skipped
/// without building a tree when mutating. `None` when the body does not have exactly the
/// expected shape (wrong types, duplicate fields, not JSON, ...): [`decode_checked`] then
/// decides, field by field, with its precise errors.
fn decode_fast(endpoint: Endpoint, body: &[u8]) -> Option<Request> {
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    #[derive(Deserialize)]
    struct Review<O> {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        request: Req<O>,
    }
    #[derive(Deserialize)]
    struct Req<O> {
        uid: String,
        kind: Gvk,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        name: Option<String>,
        operation: String,
        #[serde(default)]
        object: Value,
        #[serde(rename = "oldObject", default = "none")]
        old_object: Option<O>,
    }
    fn none<O>() -> Option<O> {
        None
    }
    #[derive(Deserialize)]
    struct Gvk {
        group: String,
        kind: String,
    }
    fn take<O>(r: Review<O>, old: Option<Value>) -> Option<Request> {
        (admission_api_version(&r.api_version)
            && r.kind == "AdmissionReview"
            && !r.request.uid.is_empty())
        .then(|| Request {
            api_version: r.api_version,
            uid: r.request.uid,
            group: r.request.kind.group,
            kind: r.request.kind.kind,
            namespace: r.request.namespace.unwrap_or_default(),
            name: r.request.name.unwrap_or_default(),
            operation: r.request.operation,
            object: r.request.object,
            old_object: old,
        })
    }
    match endpoint {
        Endpoint::Mutate => {
            let r: Review<IgnoredAny> = serde_json::from_slice(body).ok()?;
            take(r, None)
        }
        Endpoint::Validate => {
            let mut r: Review<Value> = serde_json::from_slice(body).ok()?;
            let old = r.request.old_object.take();
            take(r, old)
        }
    }
}

/// The careful path: the body as a JSON tree, each field read on its own (a field of the wrong
/// type reads as absent), and an error message that says what is wrong with the envelope.
fn decode_checked(body: &[u8]) -> Result<Request, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let api_version = str_at(&v, "apiVersion").to_string();
    if !admission_api_version(&api_version) {
        return Err(format!(
            "expected apiVersion admission.k8s.io/v1, got {api_version:?}"
        ));
    }
    if str_at(&v, "kind") != "AdmissionReview" {
        return Err(format!(
            "expected kind AdmissionReview, got {:?}",
            str_at(&v, "kind")
        ));
    }
    let Some(Value::Object(_)) = v.get("request") else {
        return Err("AdmissionReview has no request".into());
    };
    let mut v = v;
    let mut req = v
        .as_object_mut()
        .and_then(|m| m.remove("request"))
        .unwrap_or(Value::Null);
    let kind_obj = req.get("kind").cloned().unwrap_or(Value::Null);
    let field = |k: &str| str_at(&req, k).to_string();
    let mut out = Request {
        api_version,
        uid: field("uid"),
        group: str_at(&kind_obj, "group").to_string(),
        kind: str_at(&kind_obj, "kind").to_string(),
        namespace: field("namespace"),
        name: field("name"),
        operation: field("operation"),
        object: Value::Null,
        old_object: None,
    };
    if out.uid.is_empty() {
        return Err("AdmissionReview request has no uid".into());
    }
    out.object = req
        .get_mut("object")
        .map(Value::take)
        .unwrap_or(Value::Null);
    out.old_object = req.get_mut("oldObject").map(Value::take);
    Ok(out)
}

/// Encodes the answer ourselves rather than with kube-core's `Serialize`: kube-core writes
/// `response.patch` (a `Vec<u8>`) as a JSON array of byte values (kube-rs/kube#1781), where
/// the admission API documents a base64 string (Go's `[]byte` in JSON). kube-core's types stay
/// the model everywhere else; only the wire shape is ours.
fn respond(api_version: &str, resp: AdmissionResponse) -> Vec<u8> {
    write_review(api_version, &resp, None).0
}

/// The AdmissionReview answer as the API server reads it (admission.k8s.io/v1
/// `AdmissionResponse`, members in this order): `apiVersion`, `kind`, `response` with `uid`,
/// `allowed`, `status`, then `patch` (base64) and `patchType: JSONPatch` exactly when there is
/// a patch, `auditAnnotations` and `warnings` when not empty.
///
/// `diff` = (object as received, mutated object): the JSON Patch between them is computed
/// while it is written ([`patch::write_diff`]: no operation list, no copied subtrees), and its
/// bytes are base64-encoded straight into the answer (no base64 string). Returns
/// the body, the patch's size in bytes before encoding and its number of operations (0, 0
/// without `diff`).
fn write_review(
    api_version: &str,
    resp: &AdmissionResponse,
    diff: Option<(&Value, &Value)>,
) -> (Vec<u8>, usize, usize) {
    fn write(
        out: &mut Vec<u8>,
        api_version: &str,
        resp: &AdmissionResponse,
        diff: Option<(&Value, &Value)>,
    ) -> std::io::Result<(usize, usize)> {
        use std::io::Write as _;
        out.write_all(b"{\"apiVersion\":")?;
        serde_json::to_writer(&mut *out, api_version)?;
        out.write_all(b",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":")?;
        serde_json::to_writer(&mut *out, resp.uid.as_str())?;
        out.write_all(if resp.allowed {
            b",\"allowed\":true,\"status\":"
        } else {
            b",\"allowed\":false,\"status\":"
        })?;
        serde_json::to_writer(&mut *out, &resp.result)?;
        let mut sizes = (0, 0);
        if let Some((object, mutated)) = diff {
            let mut bytes = Vec::with_capacity(4096);
            let ops = patch::write_diff(object, mutated, &mut bytes)?;
            sizes = (bytes.len(), ops);
            out.reserve(bytes.len().div_ceil(3) * 4 + 64);
            out.write_all(b",\"patch\":\"")?;
            patch::append_base64(out, &bytes);
            out.write_all(b"\",\"patchType\":\"JSONPatch\"")?;
        }
        if !resp.audit_annotations.is_empty() {
            out.write_all(b",\"auditAnnotations\":")?;
            let sorted: std::collections::BTreeMap<&str, &str> = resp
                .audit_annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            serde_json::to_writer(&mut *out, &sorted)?;
        }
        if let Some(w) = &resp.warnings {
            out.write_all(b",\"warnings\":")?;
            serde_json::to_writer(&mut *out, w)?;
        }
        out.write_all(b"}}")?;
        Ok(sizes)
    }
    let mut out = Vec::with_capacity(256);
    match write(&mut out, api_version, resp, diff) {
        Ok((bytes, ops)) => (out, bytes, ops),
        // Writing to a Vec and serialising our own types cannot fail; fall back to a minimal
        // body if it ever did.
        Err(_) => (b"{}".to_vec(), 0, 0),
    }
}

fn base_response(uid: &str) -> AdmissionResponse {
    let mut r = AdmissionResponse::invalid("");
    r.uid = uid.to_string();
    r.allowed = true;
    r.result = Status::default();
    r
}

fn rejected(uid: &str, code: u16, reason: &str, message: String) -> AdmissionResponse {
    let mut r = base_response(uid);
    r.allowed = false;
    r.result = Status {
        status: Some(StatusSummary::Failure),
        code,
        message,
        reason: reason.into(),
        metadata: None,
        details: None,
    };
    r
}

/// Handles an AdmissionReview body for `/mutate` or `/validate`, without a cluster to read
/// namespace labels from ([`admission_in`] with [`crate::policy::Offline`]).
pub fn admission(endpoint: Endpoint, body: &[u8], engine: &Engine) -> Answer {
    admission_in(endpoint, body, engine, &crate::policy::Offline)
}

/// Handles an AdmissionReview body; policies on `/validate` get namespace labels from
/// `namespaces` (the request's namespace: `request.namespace`, which is also put into the
/// object when it has none).
pub fn admission_in(
    endpoint: Endpoint,
    body: &[u8],
    engine: &Engine,
    namespaces: &dyn crate::policy::NamespaceLookup,
) -> Answer {
    let req = match decode_fast(endpoint, body) {
        Some(r) => r,
        None => match decode_checked(body) {
            Ok(r) => r,
            Err(msg) => return bad_request(msg, ReviewInfo::default()),
        },
    };
    let Request {
        api_version,
        uid,
        group,
        kind,
        namespace,
        name,
        operation,
        object,
        old_object,
    } = req;
    let mut info = ReviewInfo {
        uid: uid.clone(),
        kind,
        namespace,
        name,
        operation,
        ..Default::default()
    };
    let fail = |info: ReviewInfo, msg: String| {
        let body = respond(&api_version, rejected(&uid, 400, "BadRequest", msg.clone()));
        Answer {
            status: 200,
            body,
            info: ReviewInfo {
                result: "bad_request",
                message: msg,
                ..info
            },
        }
    };
    if group != GROUP || Kind::from_name(&info.kind).is_none() {
        let msg = format!(
            "llmisvc handles {GROUP} LLMInferenceService and LLMInferenceServiceConfig, not {}/{}",
            group, info.kind
        );
        return fail(info, msg);
    }
    let operation = info.operation.clone();
    match operation.as_str() {
        "CREATE" | "UPDATE" => {}
        // Nothing to do on DELETE/CONNECT: allow.
        "DELETE" | "CONNECT" => {
            info.result = "allowed";
            return Answer {
                status: 200,
                body: respond(&api_version, base_response(&uid)),
                info,
            };
        }
        other => return fail(info, format!("unknown operation {other:?}")),
    }
    // Moved out of the request, not cloned (nothing reads request.object after this).
    let mut object = match object {
        o @ Value::Object(_) => o,
        _ => return fail(info, "AdmissionReview request has no object".into()),
    };
    // On CREATE the object may not carry its namespace yet; presets are looked up in it.
    if !info.namespace.is_empty()
        && object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), Value::String(info.namespace.clone()));
    }
    let object = &object;
    if info.name.is_empty() {
        info.name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    match endpoint {
        Endpoint::Mutate => match engine.admit(object) {
            Ok(Admitted {
                object: mutated,
                warnings,
            }) => {
                // Most requests (every UPDATE of an expanded object) change nothing: an equality
                // walk settles that far cheaper than the diff.
                let changed = mutated != *object;
                let mut resp = base_response(&uid);
                if !warnings.is_empty() {
                    info.message = warnings.join("; ");
                    resp.warnings = Some(warnings);
                }
                let (body, patch_bytes, ops) =
                    write_review(&api_version, &resp, changed.then_some((object, &mutated)));
                info.patch_bytes = patch_bytes;
                info.result = if ops > 0 { "patched" } else { "allowed" };
                Answer {
                    status: 200,
                    body,
                    info,
                }
            }
            // A refusal that names fields (the service as written, a step's error with its
            // path, a placeholder of the user's own spec) is answered as validation answers:
            // 422 `Invalid` with one `details.causes` entry per field, which kubectl prints.
            Err(refused) => {
                let resp = match refused {
                    // Keeps its warnings.
                    Refused::Invalid(outcome) => validation_response(&uid, &info, outcome),
                    other => match other.field_errors() {
                        Some(errors) => validation_response(
                            &uid,
                            &info,
                            Outcome {
                                errors,
                                warnings: Vec::new(),
                            },
                        ),
                        None => rejected(&uid, 422, "Invalid", other.to_string()),
                    },
                };
                info.result = "denied";
                info.message = resp.result.message.clone();
                Answer {
                    status: 200,
                    body: respond(&api_version, resp),
                    info,
                }
            }
        },
        Endpoint::Validate => {
            let old = match (operation.as_str(), &old_object) {
                ("UPDATE", Some(o @ Value::Object(_))) => Some(o),
                _ => None,
            };
            let outcome = engine.validate_in(old, object, namespaces);
            let resp = validation_response(&uid, &info, outcome);
            info.result = if resp.allowed { "allowed" } else { "denied" };
            info.message = resp.result.message.clone();
            Answer {
                status: 200,
                body: respond(&api_version, resp),
                info,
            }
        }
    }
}

/// Errors become a `Status` like the API server's own validation failures:
/// `reason: Invalid`, `code: 422`, one cause per field error; warnings go to `warnings`.
pub fn validation_response(uid: &str, info: &ReviewInfo, outcome: Outcome) -> AdmissionResponse {
    let mut resp = base_response(uid);
    if !outcome.warnings.is_empty() {
        resp.warnings = Some(outcome.warnings);
    }
    if outcome.errors.is_empty() {
        return resp;
    }
    let list: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    let message = format!(
        "{}.{} {:?} is invalid: {}",
        info.kind,
        GROUP,
        info.name,
        if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        }
    );
    resp.allowed = false;
    resp.result = Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message,
        reason: "Invalid".into(),
        metadata: None,
        details: Some(StatusDetails {
            name: info.name.clone(),
            group: GROUP.into(),
            kind: info.kind.clone(),
            uid: String::new(),
            causes: outcome
                .errors
                .iter()
                .map(|e| {
                    let full = e.to_string();
                    // The cause message is the error without its leading field path.
                    let msg = full
                        .strip_prefix(&format!("{}: ", e.field))
                        .unwrap_or(&full)
                        .to_string();
                    StatusCause {
                        reason: e.kind.cause_type().into(),
                        message: msg,
                        field: e.field.clone(),
                    }
                })
                .collect(),
            retry_after_seconds: 0,
        }),
    };
    resp
}

/// Handles a ConversionReview body for `/convert`.
pub fn conversion(body: &[u8], engine: &Engine) -> Answer {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                format!("request body is not JSON: {e}"),
                ReviewInfo::default(),
            );
        }
    };
    if str_at(&v, "apiVersion") != "apiextensions.k8s.io/v1"
        || str_at(&v, "kind") != "ConversionReview"
    {
        return bad_request(
            format!(
                "expected apiextensions.k8s.io/v1 ConversionReview, got {:?} {:?}",
                str_at(&v, "apiVersion"),
                str_at(&v, "kind")
            ),
            ReviewInfo::default(),
        );
    }
    let Some(req_v) = v.get("request").cloned() else {
        return bad_request(
            "ConversionReview has no request".into(),
            ReviewInfo::default(),
        );
    };
    let uid = str_at(&req_v, "uid").to_string();
    if uid.is_empty() {
        return bad_request(
            "ConversionReview request has no uid".into(),
            ReviewInfo::default(),
        );
    }
    let mut info = ReviewInfo {
        uid: uid.clone(),
        operation: "CONVERT".into(),
        ..Default::default()
    };
    let encode = |resp: ConversionResponse| {
        serde_json::to_vec(&resp.into_review()).unwrap_or_else(|_| b"{}".to_vec())
    };
    let req: ConversionRequest = match serde_json::from_value(req_v) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("ConversionReview request does not decode: {e}");
            let mut resp = ConversionResponse::invalid(Status::failure(&msg, "BadRequest"));
            resp.uid = uid;
            info.result = "bad_request";
            info.message = msg;
            return Answer {
                status: 200,
                body: encode(resp),
                info,
            };
        }
    };
    let desired = req.desired_api_version.clone();
    let mut converted = Vec::with_capacity(req.objects.len());
    let mut error = None;
    for (i, obj) in req.objects.iter().enumerate() {
        if info.kind.is_empty() {
            info.kind = str_at(obj, "kind").to_string();
        }
        match engine
            .convert(obj, &desired)
            .map_err(|e| e.to_string())
            .and_then(|o| check_converted(obj, &o, &desired).map(|()| o))
        {
            Ok(o) => converted.push(o),
            Err(e) => {
                error = Some(format!("object {i} ({}): {e}", describe(obj)));
                break;
            }
        }
    }
    let resp = ConversionResponse::for_request(req);
    let resp = match error {
        None => {
            info.result = "converted";
            resp.success(converted)
        }
        Some(msg) => {
            info.result = "failed";
            info.message = msg.clone();
            resp.failure(Status::failure(&msg, "ConversionFailed"))
        }
    };
    Answer {
        status: 200,
        body: encode(resp),
        info,
    }
}

/// `kind "name"` (or `namespace/name`) of an object, for messages; whatever it has.
fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{kind} \"{ns}/{name}\""),
        _ => format!("{kind} {name:?}"),
    }
}

/// What the API server requires of a converted object (it fails the whole request
/// otherwise): `metadata` present, `apiVersion` the desired one, `kind` unchanged, and of the
/// metadata only labels and annotations changed (name, namespace, uid, ... as sent).
fn check_converted(input: &Value, output: &Value, desired: &str) -> Result<(), String> {
    let meta = |v: &Value| match v.get("metadata") {
        Some(Value::Object(m)) => Some(m.clone()),
        _ => None,
    };
    let (Some(mut before), Some(mut after)) = (meta(input), meta(output)) else {
        return Err(
            "has no metadata: the API server sends every object with its metadata and requires it back unchanged"
                .into(),
        );
    };
    if output.get("apiVersion").and_then(Value::as_str) != Some(desired) {
        return Err(format!("was not converted to {desired}"));
    }
    if output.get("kind") != input.get("kind") {
        return Err("conversion changed its kind".into());
    }
    for m in [&mut before, &mut after] {
        m.remove("labels");
        m.remove("annotations");
    }
    if before != after {
        let changed: std::collections::BTreeSet<&str> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(String::as_str)
            .collect();
        return Err(format!(
            "conversion changed metadata other than labels and annotations ({})",
            changed.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// A sample AdmissionReview for the README's curl and for tests.
pub fn sample_admission_review(uid: &str) -> Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": GROUP, "version": "v1alpha2", "kind": "LLMInferenceService"},
            "resource": {"group": GROUP, "version": "v1alpha2", "resource": "llminferenceservices"},
            "name": "demo",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "demo"},
            "object": {
                "apiVersion": "serving.kserve.io/v1alpha2",
                "kind": "LLMInferenceService",
                "metadata": {"name": "demo", "namespace": "default"},
                "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}}
            },
            "dryRun": false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn fast_and_checked_decoding_agree() {
        let mut update = sample_admission_review("u-1");
        update["request"]["operation"] = json!("UPDATE");
        update["request"]["oldObject"] = update["request"]["object"].clone();
        let mut no_ns = sample_admission_review("u-2");
        no_ns["request"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        for v in [sample_admission_review("u-0"), update, no_ns] {
            let b = body(&v);
            let checked = decode_checked(&b).unwrap();
            let fast = decode_fast(Endpoint::Validate, &b).expect("fast path takes it");
            assert_eq!(fast, checked);
            let fast = decode_fast(Endpoint::Mutate, &b).expect("fast path takes it");
            assert_eq!(
                fast,
                Request {
                    old_object: None,
                    ..checked
                }
            );
        }
        // Shapes the fast path leaves to the checked one.
        let mut odd = sample_admission_review("u-3");
        odd["request"]["namespace"] = json!(7);
        assert_eq!(decode_fast(Endpoint::Mutate, &body(&odd)), None);
        assert_eq!(decode_checked(&body(&odd)).unwrap().namespace, "");
        let dup = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b","kind":{"group":"g","kind":"k"},"operation":"CREATE"}}"#;
        assert_eq!(decode_fast(Endpoint::Mutate, dup), None);
        assert_eq!(decode_checked(dup).unwrap().uid, "b");
    }

    /// The first apply of a prefill/decode service: the patch adds each new subtree with one
    /// `add` (never an op below a path it adds, never a write of a value equal to the old
    /// one), and the whole answer stays small (issue 22: <= 60 KB).
    #[test]
    fn create_patch_is_minimal_and_the_answer_small() {
        use base64::Engine as _;
        let root = env!("CARGO_MANIFEST_DIR");
        let pd: Value = serde_norway::from_str(
            &std::fs::read_to_string(format!("{root}/examples/prefill-decode-multinode.yaml"))
                .unwrap(),
        )
        .unwrap();
        let mut req = sample_admission_review("u-c");
        req["request"]["object"] = pd.clone();
        let engine = Engine::builtin().unwrap();
        let a = admission(Endpoint::Mutate, &body(&req), &engine);
        assert_eq!(a.info.result, "patched", "{}", a.info.message);
        assert!(a.body.len() <= 60_000, "answer {} bytes", a.body.len());
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let ops: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        let mut original = pd;
        if original["metadata"].get("namespace").is_none() {
            original["metadata"]["namespace"] = json!("default");
        }
        let mut paths: Vec<&str> = Vec::new();
        for op in &ops {
            let path = op["path"].as_str().unwrap();
            match op["op"].as_str().unwrap() {
                "add" => {
                    assert!(original.pointer(path).is_none(), "add over a value: {path}");
                    let parent = &path[..path.rfind('/').unwrap()];
                    assert!(
                        original.pointer(parent).is_some(),
                        "add below a new path: {path}"
                    );
                }
                "replace" => assert_ne!(original.pointer(path), Some(&op["value"]), "{path}"),
                _ => {}
            }
            paths.push(path);
        }
        for p in &paths {
            assert!(
                !paths
                    .iter()
                    .any(|q| q != p && p.starts_with(&format!("{q}/"))),
                "{p} is below another op's path"
            );
        }
        let mut obj = original.clone();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
        assert_eq!(obj, engine.mutate(&original).unwrap());
    }

    /// kube-rs/kube#1781: kube-core writes `patch` as an array of byte values; the API server
    /// documents (and decodes) a base64 string.
    #[test]
    fn mutate_patch_is_base64_json_patch_as_the_api_documents() {
        use base64::Engine as _;
        let req = sample_admission_review("u-p");
        let a = admission(Endpoint::Mutate, &body(&req), &Engine::default());
        assert_eq!(a.info.result, "patched", "{}", a.info.message);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        let resp = &v["response"];
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(resp["uid"], "u-p");
        assert_eq!(resp["allowed"], true);
        assert_eq!(resp["patchType"], "JSONPatch");
        let p = resp["patch"]
            .as_str()
            .unwrap_or_else(|| panic!("patch must be a base64 JSON string, got {}", resp["patch"]));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p)
            .expect("standard base64");
        assert_eq!(a.info.patch_bytes, bytes.len());
        let ops: Value = serde_json::from_slice(&bytes).expect("a JSON document");
        assert!(ops.as_array().is_some_and(|o| !o.is_empty()), "{ops}");
        let patch: json_patch::Patch = serde_json::from_value(ops).expect("a JSON Patch");
        // Applying it to the request's object gives the mutated object.
        let mut obj = req["request"]["object"].clone();
        json_patch::patch(&mut obj, &patch).unwrap();
        assert_eq!(
            obj,
            Engine::default().mutate(&req["request"]["object"]).unwrap()
        );

        // No change: neither patch nor patchType.
        let mut again = req.clone();
        again["request"]["object"] = obj;
        let a = admission(Endpoint::Mutate, &body(&again), &Engine::default());
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(a.info.result, "allowed");
        assert!(v["response"].get("patch").is_none(), "{v}");
        assert!(v["response"].get("patchType").is_none(), "{v}");
    }

    #[test]
    fn garbage_gets_400() {
        let a = admission(Endpoint::Mutate, b"not json", &Engine::default());
        assert_eq!(a.status, 400);
        assert!(String::from_utf8_lossy(&a.body).contains("not JSON"));
        let a = admission(
            Endpoint::Mutate,
            br#"{"apiVersion":"v1","kind":"Pod"}"#,
            &Engine::default(),
        );
        assert_eq!(a.status, 400);
        let a = conversion(b"[]", &Engine::default());
        assert_eq!(a.status, 400);
    }

    #[test]
    fn wrong_kind_with_uid_gets_a_review_answer_echoing_the_uid() {
        let mut r = sample_admission_review("u-1");
        r["request"]["kind"]["kind"] = "Pod".into();
        let a = admission(Endpoint::Validate, &body(&r), &Engine::default());
        assert_eq!(a.status, 200);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["response"]["uid"], "u-1");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 400);
    }

    #[test]
    fn missing_object_is_a_400_review_answer() {
        let mut r = sample_admission_review("u-2");
        r["request"].as_object_mut().unwrap().remove("object");
        let a = admission(Endpoint::Mutate, &body(&r), &Engine::default());
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["response"]["uid"], "u-2");
        assert_eq!(v["response"]["allowed"], false);
        assert!(
            v["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("no object")
        );
    }

    #[test]
    fn validation_errors_become_a_422_status_with_causes() {
        use crate::validate::{ErrorKind, FieldError};
        let info = ReviewInfo {
            kind: "LLMInferenceService".into(),
            name: "x".into(),
            ..Default::default()
        };
        let outcome = Outcome {
            errors: vec![FieldError {
                kind: ErrorKind::Invalid,
                field: "spec.parallelism.tensor".into(),
                value: Some("4".into()),
                detail: "needs 4 GPUs".into(),
            }],
            warnings: vec!["w".into()],
        };
        let r = validation_response("u", &info, outcome);
        assert!(!r.allowed);
        assert_eq!(r.result.code, 422);
        assert_eq!(r.result.reason, "Invalid");
        assert_eq!(
            r.result.message,
            "LLMInferenceService.serving.kserve.io \"x\" is invalid: spec.parallelism.tensor: Invalid value: 4: needs 4 GPUs"
        );
        let causes = &r.result.details.as_ref().unwrap().causes;
        assert_eq!(causes[0].field, "spec.parallelism.tensor");
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        assert_eq!(causes[0].message, "Invalid value: 4: needs 4 GPUs");
        assert_eq!(r.warnings.as_deref(), Some(&["w".to_string()][..]));
    }

    /// The API server requires every converted object back with its metadata (name,
    /// namespace, uid as sent): an object without it fails the whole review, naming it, and
    /// no half-converted list is sent.
    #[test]
    fn conversion_without_metadata_fails_naming_the_object() {
        let good = json!({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u-a"}, "spec": {}});
        let cases = [
            ("absent", {
                let mut o = good.clone();
                o.as_object_mut().unwrap().remove("metadata");
                o
            }),
            ("null", {
                let mut o = good.clone();
                o["metadata"] = Value::Null;
                o
            }),
        ];
        for (what, bad) in cases {
            for desired in ["serving.kserve.io/v1alpha2", "serving.kserve.io/v1alpha1"] {
                let review = json!({
                    "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                    "request": {"uid": "c-2", "desiredAPIVersion": desired, "objects": [good, bad]}
                });
                let a = conversion(&body(&review), &Engine::default());
                let v: Value = serde_json::from_slice(&a.body).unwrap();
                let r = &v["response"];
                assert_eq!(r["uid"], "c-2");
                assert_eq!(
                    r["result"]["status"], "Failure",
                    "metadata {what} -> {desired}: {v}"
                );
                let msg = r["result"]["message"].as_str().unwrap();
                assert!(
                    msg.starts_with("object 1 (LLMInferenceService \"\"): has no metadata"),
                    "{msg}"
                );
                assert!(
                    r.get("convertedObjects")
                        .is_none_or(|o| o.as_array().is_some_and(Vec::is_empty)),
                    "half-converted list sent: {v}"
                );
                assert_eq!(a.info.result, "failed");
            }
        }
        // The good one alone converts, identity kept.
        let review = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "c-3", "desiredAPIVersion": "serving.kserve.io/v1alpha2", "objects": [good]}
        });
        let v: Value =
            serde_json::from_slice(&conversion(&body(&review), &Engine::default()).body).unwrap();
        assert_eq!(v["response"]["result"]["status"], "Success");
        let o = &v["response"]["convertedObjects"][0];
        assert_eq!(o["metadata"], good["metadata"]);
        assert_eq!(o["kind"], "LLMInferenceService");
    }

    #[test]
    fn converted_objects_keep_their_identity() {
        let input = json!({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "labels": {"x": "1"}}});
        let desired = "serving.kserve.io/v1alpha2";
        let mut ok = input.clone();
        ok["apiVersion"] = desired.into();
        ok["metadata"]["annotations"] = json!({"k": "v"});
        ok["metadata"]["labels"] = json!({"x": "2"});
        assert_eq!(check_converted(&input, &ok, desired), Ok(()));
        let mut renamed = ok.clone();
        renamed["metadata"]["name"] = "b".into();
        renamed["metadata"]["uid"] = "other".into();
        assert_eq!(
            check_converted(&input, &renamed, desired),
            Err("conversion changed metadata other than labels and annotations (name, uid)".into())
        );
        let mut rekinded = ok.clone();
        rekinded["kind"] = "LLMInferenceServiceConfig".into();
        assert!(check_converted(&input, &rekinded, desired).is_err());
        assert!(check_converted(&input, &input, desired).is_err());
        assert_eq!(describe(&input), "LLMInferenceService \"ns/a\"");
    }

    #[test]
    fn conversion_echoes_uid_and_keeps_order() {
        let review = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "c-1", "desiredAPIVersion": "serving.kserve.io/v1alpha2",
              "objects": [
                {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService", "metadata": {"name": "a"}, "spec": {}},
                {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService", "metadata": {"name": "b"}, "spec": {}}
              ]}
        });
        let a = conversion(&body(&review), &Engine::default());
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["response"]["uid"], "c-1");
        assert_eq!(v["response"]["result"]["status"], "Success");
        let objs = v["response"]["convertedObjects"].as_array().unwrap();
        assert_eq!(objs[0]["metadata"]["name"], "a");
        assert_eq!(objs[1]["metadata"]["name"], "b");
        assert_eq!(objs[1]["apiVersion"], "serving.kserve.io/v1alpha2");
    }
}
