//! KServe's managed DRA annotations (`serving.kserve.io/exp-dra-*`): with a device class the
//! controller makes a ResourceClaimTemplate and claims it in the pod templates. The rules are
//! KServe's admission rules (pkg/validation/managed_dra.go), with the same field paths
//! (`metadata.annotations[<key>]`); values are trimmed first, as KServe does.

use super::json::{Obj, Sink, key};
use super::kserve::is_dns_subdomain;

pub const DEVICE_CLASS: &str = "serving.kserve.io/exp-dra-device-class";
pub const DEVICE_COUNT: &str = "serving.kserve.io/exp-dra-device-count";
pub const CEL_SELECTOR: &str = "serving.kserve.io/exp-dra-cel-selector";
pub const CONTAINER_NAME: &str = "serving.kserve.io/exp-dra-container-name";

/// Checks the DRA annotations of `metadata`.
pub fn check_annotations(meta: &Obj, s: &mut Sink) {
    let ann = meta.obj("annotations", s);
    let Some(map) = ann.map else {
        return;
    };
    let path = |k: &str| key(&ann.path, k);
    let class = string_at(map, &ann.path, DEVICE_CLASS, s);
    let count = string_at(map, &ann.path, DEVICE_COUNT, s);
    let cel = string_at(map, &ann.path, CEL_SELECTOR, s);
    let container = string_at(map, &ann.path, CONTAINER_NAME, s);

    if !map.contains_key(DEVICE_CLASS)
        && (map.contains_key(DEVICE_COUNT)
            || map.contains_key(CEL_SELECTOR)
            || map.contains_key(CONTAINER_NAME))
    {
        s.required(
            path(DEVICE_CLASS),
            format!(
                "{DEVICE_CLASS} is required to enable managed DRA when {DEVICE_COUNT}, {CEL_SELECTOR}, or {CONTAINER_NAME} is set; add the DeviceClass name (e.g. gpu.nvidia.com) or remove the other exp-dra-* annotations"
            ),
        );
    }

    if let Some(raw) = class {
        let v = raw.trim();
        if v.is_empty() {
            s.invalid_str(
                path(DEVICE_CLASS),
                raw,
                "device class must not be empty; name a DeviceClass, e.g. gpu.nvidia.com",
            );
        } else if !is_dns_subdomain(v) {
            s.invalid_str(
                path(DEVICE_CLASS),
                raw,
                "device class must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters (e.g. gpu.nvidia.com)",
            );
        }
    }

    if let Some(raw) = count
        && let Err(why) = device_count(raw)
    {
        s.invalid_str(path(DEVICE_COUNT), raw, why);
    }

    if let Some(raw) = cel
        && raw.split('\n').all(|l| l.trim().is_empty())
    {
        s.invalid_str(
            path(CEL_SELECTOR),
            raw,
            "cel selector must contain at least one non-empty CEL expression (one per line), e.g. device.attributes['gpu.nvidia.com'].type == 'A100'; remove the annotation to select any device of the class",
        );
    }

    if let Some(raw) = container {
        let v = raw.trim();
        if v.is_empty() {
            s.invalid_str(
                path(CONTAINER_NAME),
                raw,
                "container name must not be empty; name a container of the pod template, or remove the annotation to use the first container",
            );
        } else if !is_dns_label(v) {
            s.invalid_str(
                path(CONTAINER_NAME),
                raw,
                "container name must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. main)",
            );
        }
    }
}

/// A present annotation with a string value (the API server only stores strings; anything
/// else is reported as a type error and then treated as absent).
fn string_at<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    ann_path: &str,
    k: &str,
    s: &mut Sink,
) -> Option<&'a str> {
    match map.get(k)? {
        serde_json::Value::String(v) => Some(v.as_str()),
        other => {
            s.wrong_type(&key(ann_path, k), other, "a string");
            None
        }
    }
}

/// The device count as KServe reads it: absent or blank means 1; otherwise a base-10 integer
/// (Go's `strconv.Atoi`: an optional sign, digits, within 64 bits) that is at least 1.
pub fn device_count(raw: &str) -> Result<i64, String> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(1);
    }
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{DEVICE_COUNT} must be a whole number of devices per pod, at least 1 (e.g. \"2\"); {v:?} is not an integer"
        ));
    }
    match v.strip_prefix('+').unwrap_or(v).parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err(format!(
            "{DEVICE_COUNT} must be >= 1 (each pod claims at least one device); remove the annotation for 1"
        )),
        Err(_) => Err(format!(
            "{DEVICE_COUNT} is out of range; give a whole number of devices per pod, e.g. \"2\""
        )),
    }
}

/// An RFC 1123 label (a container name).
pub fn is_dns_label(n: &str) -> bool {
    n.len() <= 63 && !n.contains('.') && is_dns_subdomain(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn run(ann: Value) -> Vec<(String, String)> {
        let meta = json!({ "annotations": ann });
        let mut s = Sink::default();
        let o = Obj::of(Some(&meta), "metadata", &mut s);
        check_annotations(&o, &mut s);
        s.errors
            .iter()
            .map(|e| (e.field.clone(), e.to_string()))
            .collect()
    }

    fn field(k: &str) -> String {
        format!("metadata.annotations[{k}]")
    }

    /// (name, annotations, expected (annotation key, text) errors in order).
    type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);

    /// KServe's TestValidateManagedDRAAnnotations cases, plus the edges of its parsing.
    #[test]
    fn managed_dra_annotations_table() {
        let cases: Vec<Case> = vec![
            ("no annotations", json!({}), vec![]),
            ("null annotations", Value::Null, vec![]),
            ("unrelated", json!({"foo": "bar"}), vec![]),
            (
                "device class only",
                json!({DEVICE_CLASS: "gpu.nvidia.com"}),
                vec![],
            ),
            (
                "device class trimmed",
                json!({DEVICE_CLASS: " gpu.nvidia.com "}),
                vec![],
            ),
            (
                "full valid set",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "4",
                       CEL_SELECTOR: "device.attributes['gpu.nvidia.com']['type'] == 'A100'",
                       CONTAINER_NAME: "vllm"}),
                vec![],
            ),
            (
                "several CEL lines, blank lines skipped",
                json!({DEVICE_CLASS: "gpu.nvidia.com", CEL_SELECTOR: "a == 1\n\n  b == 2\n"}),
                vec![],
            ),
            (
                "blank count means 1",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "  "}),
                vec![],
            ),
            (
                "signed count",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "+2"}),
                vec![],
            ),
            (
                "empty device class",
                json!({DEVICE_CLASS: "   "}),
                vec![(
                    DEVICE_CLASS,
                    "Invalid value: \"   \": device class must not be empty",
                )],
            ),
            (
                "device class not a DNS subdomain",
                json!({DEVICE_CLASS: "GPU_Nvidia"}),
                vec![(DEVICE_CLASS, "device class must be a DNS subdomain")],
            ),
            (
                "device count without device class",
                json!({DEVICE_COUNT: "2"}),
                vec![(
                    DEVICE_CLASS,
                    "Required value: serving.kserve.io/exp-dra-device-class is required to enable managed DRA when",
                )],
            ),
            (
                "cel selector without device class",
                json!({CEL_SELECTOR: "a == 1"}),
                vec![(DEVICE_CLASS, "Required value")],
            ),
            (
                "container name without device class",
                json!({CONTAINER_NAME: "main"}),
                vec![(DEVICE_CLASS, "Required value")],
            ),
            (
                "device count non-numeric",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "abc"}),
                vec![(
                    DEVICE_COUNT,
                    "Invalid value: \"abc\": serving.kserve.io/exp-dra-device-count must be a whole number of devices per pod",
                )],
            ),
            (
                "device count zero",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "0"}),
                vec![(DEVICE_COUNT, "must be >= 1")],
            ),
            (
                "device count negative",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "-3"}),
                vec![(DEVICE_COUNT, "must be >= 1")],
            ),
            (
                "device count decimal",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "1.5"}),
                vec![(DEVICE_COUNT, "is not an integer")],
            ),
            (
                "device count overflow",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: "99999999999999999999"}),
                vec![(DEVICE_COUNT, "out of range")],
            ),
            (
                "empty cel selector",
                json!({DEVICE_CLASS: "gpu.nvidia.com", CEL_SELECTOR: "\n  \n"}),
                vec![(
                    CEL_SELECTOR,
                    "cel selector must contain at least one non-empty CEL expression",
                )],
            ),
            (
                "empty container name",
                json!({DEVICE_CLASS: "gpu.nvidia.com", CONTAINER_NAME: "   "}),
                vec![(CONTAINER_NAME, "container name must not be empty")],
            ),
            (
                "container name not a DNS label",
                json!({DEVICE_CLASS: "gpu.nvidia.com", CONTAINER_NAME: "my.container"}),
                vec![(CONTAINER_NAME, "container name must be a DNS label")],
            ),
            (
                "multiple errors surfaced",
                json!({DEVICE_CLASS: "BAD CLASS", DEVICE_COUNT: "abc"}),
                vec![
                    (DEVICE_CLASS, "DNS subdomain"),
                    (DEVICE_COUNT, "is not an integer"),
                ],
            ),
            (
                "not a string",
                json!({DEVICE_CLASS: "gpu.nvidia.com", DEVICE_COUNT: 2}),
                vec![(DEVICE_COUNT, "must be a string, not an integer")],
            ),
        ];
        for (name, ann, want) in cases {
            let got = run(ann);
            assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
            for ((gf, gt), (wk, wt)) in got.iter().zip(&want) {
                assert_eq!(gf, &field(wk), "{name}");
                assert!(gt.contains(wt), "{name}: {gt:?} lacks {wt:?}");
            }
        }
    }

    #[test]
    fn device_count_parses_like_kserve() {
        assert_eq!(device_count(""), Ok(1));
        assert_eq!(device_count(" 4 "), Ok(4));
        assert_eq!(device_count("+4"), Ok(4));
        assert!(device_count("0").is_err());
        assert!(device_count("-").is_err());
        assert!(device_count("0x2").is_err());
        assert!(is_dns_label("main"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(!is_dns_label("Main"));
    }
}
