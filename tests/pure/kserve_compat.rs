//! Every field path of KServe's published v1alpha1 and v1alpha2 schemas exists in ours with
//! the same JSON type. The fixture is derived from KServe's CRDs by
//! `tests/fixtures/derive_kserve_paths.py` (see its doc string).

use k8s_openapi::api::core::v1::PodSpec;
use llmisvc::api::Kind;
use llmisvc::api::crd::{CrdOptions, crd_json};
use llmisvc::api::schema::structural_schema_for;
use serde_json::Value;

/// Objects of other APIs that the CRD keeps verbatim (the webhook checks them): the Gateway API
/// HTTPRouteSpec and the endpoint picker config.
const OPAQUE_ROOTS: [&str; 2] = [
    "spec.router.route.http.spec",
    "spec.router.scheduler.config.inline",
];

const FIXTURE: &str = include_str!("../fixtures/kserve_paths.txt");

/// Splits `.a.b[]{}.c` into segments `a`, `b`, `[]`, `{}`, `c`.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' | '{' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let close = chars.next();
                out.push(format!("{c}{}", close.unwrap_or(' ')));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

enum Found<'a> {
    Node(&'a Value),
    /// Inside an object whose content we keep verbatim (x-kubernetes-preserve-unknown-fields),
    /// rooted at the given path.
    Opaque(String),
    Missing(String),
}

fn find<'a>(root: &'a Value, segs: &[String]) -> Found<'a> {
    let mut node = root;
    for (i, s) in segs.iter().enumerate() {
        if node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            && node
                .get("properties")
                .and_then(|p| p.get(s.as_str()))
                .is_none()
        {
            return Found::Opaque(segs[..i].join("."));
        }
        let next = match s.as_str() {
            "[]" => node.get("items"),
            "{}" => node.get("additionalProperties"),
            name => node.get("properties").and_then(|p| p.get(name)),
        };
        match next {
            Some(n) => node = n,
            None => return Found::Missing(segs[..=i].join(".")),
        }
    }
    Found::Node(node)
}

fn our_type(node: &Value) -> String {
    if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return "int-or-string".into();
    }
    match node.get("type").and_then(Value::as_str) {
        Some(t) => t.into(),
        None if node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) => {
            "any".into()
        }
        None => "none".into(),
    }
}

fn types_agree(kserve: &str, ours: &str) -> bool {
    kserve == ours || kserve == "any" || ours == "any"
}

#[test]
fn every_kserve_field_path_exists_with_the_same_type() {
    let podspec = structural_schema_for::<PodSpec>();
    let mut schemas = std::collections::HashMap::new();
    for kind in Kind::ALL {
        let crd = crd_json(kind, &CrdOptions::default());
        for v in crd["spec"]["versions"].as_array().unwrap() {
            schemas.insert(
                (
                    kind.name().to_string(),
                    v["name"].as_str().unwrap().to_string(),
                ),
                v["schema"]["openAPIV3Schema"].clone(),
            );
        }
    }
    let mut failures = Vec::new();
    let (mut checked, mut opaque, mut embedded) = (0, 0, 0);
    for line in FIXTURE.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [kind, version, path, ty] = parts[..] else {
            panic!("bad fixture line {line:?}")
        };
        let root = if kind == "PodSpec" {
            &podspec
        } else {
            &schemas[&(kind.to_string(), version.to_string())]
        };
        let segs = if path == "." { vec![] } else { segments(path) };
        checked += 1;
        match find(root, &segs) {
            Found::Missing(at) => {
                failures.push(format!("{kind} {version} {path}: missing (at {at})"))
            }
            Found::Opaque(root) => {
                opaque += 1;
                if !OPAQUE_ROOTS.contains(&root.as_str()) {
                    failures.push(format!(
                        "{kind} {version} {path}: unexpectedly opaque (under {root})"
                    ));
                }
            }
            Found::Node(n) if ty == "embedded-podspec" => {
                embedded += 1;
                if n.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
                    || n.get("type") != Some(&Value::String("object".into()))
                {
                    failures.push(format!(
                        "{kind} {version} {path}: expected an embedded PodSpec"
                    ));
                }
            }
            Found::Node(n) => {
                let ours = our_type(n);
                if !types_agree(ty, &ours) {
                    failures.push(format!("{kind} {version} {path}: KServe {ty}, ours {ours}"));
                }
            }
        }
    }
    assert!(checked > 3000, "fixture too small: {checked}");
    assert_eq!(embedded, 24, "six embedded PodSpecs per kind and version");
    assert!(opaque > 0);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn segments_split_arrays_and_maps() {
    assert_eq!(
        segments(".spec.a[].b{}"),
        vec!["spec", "a", "[]", "b", "{}"]
    );
}
