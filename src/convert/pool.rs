//! The InferencePool spec at `spec.router.scheduler.pool.spec`.
//!
//! | `v1alpha1` (Inference Extension v1alpha2) | `v1alpha2` (Inference Extension v1)        |
//! |-------------------------------------------|--------------------------------------------|
//! | `selector: {k: v}`                        | `selector: {matchLabels: {k: v}}`          |
//! | `targetPortNumber: n`                     | `targetPorts: [{number: n}]`               |
//! | `extensionRef: {.., portNumber: n, ..}`   | `endpointPickerRef: {.., port: {number: n}, ..}` |
//! | (none)                                    | `appProtocol`, `targetPorts[1..]`          |
//!
//! Every field is optional (presets set only some of them); fields these functions do not know
//! are copied as they are, in their place. [`up`] and [`down`] are pure shape maps; what a map
//! cannot carry (an `appProtocol`, a second port, an empty `targetPorts: []`, a selector with
//! more than `matchLabels`, a name of the other version's shape) is kept by the caller, which
//! stashes the whole original spec whenever `up(down(x)) != x` (or `down(up(x)) != x`).
//!
//! Both maps are projections: `down(up(down(x))) == down(x)` and `up(down(up(x))) == up(x)`,
//! so a stashed original can be recognised as unchanged by comparing its image.

use serde_json::{Map, Value, json};

/// Names of the `v1alpha2` shape that are not in the `v1alpha1` shape.
const V2_NAMES: [&str; 3] = ["targetPorts", "endpointPickerRef", "appProtocol"];
/// Names of the `v1alpha1` shape that are not in the `v1alpha2` shape.
const V1_NAMES: [&str; 2] = ["targetPortNumber", "extensionRef"];

/// `v1alpha1` shape to `v1alpha2` shape. A `v1alpha2` name found in the input is dropped (it
/// would clash with a converted field); a non-object is returned as it is.
pub fn up(spec: &Value) -> Value {
    let Value::Object(map) = spec else {
        return spec.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "selector" => {
                out.insert(k.clone(), json!({ "matchLabels": v }));
            }
            "targetPortNumber" => {
                out.insert("targetPorts".into(), json!([{ "number": v }]));
            }
            "extensionRef" => {
                out.insert("endpointPickerRef".into(), ref_up(v));
            }
            k if V2_NAMES.contains(&k) => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `v1alpha2` shape to `v1alpha1` shape. `selector` keeps only `matchLabels`, `targetPorts`
/// only the first port's number; `appProtocol` and `v1alpha1` names are dropped.
pub fn down(spec: &Value) -> Value {
    let Value::Object(map) = spec else {
        return spec.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "selector" => {
                if let Some(labels) = v.get("matchLabels").filter(|_| v.is_object()) {
                    out.insert(k.clone(), labels.clone());
                }
            }
            "targetPorts" => {
                if let Some(n) = v
                    .as_array()
                    .and_then(|ports| ports.first())
                    .and_then(|p| p.as_object())
                    .and_then(|p| p.get("number"))
                {
                    out.insert("targetPortNumber".into(), n.clone());
                }
            }
            "endpointPickerRef" => {
                out.insert("extensionRef".into(), ref_down(v));
            }
            "appProtocol" => {}
            k if V1_NAMES.contains(&k) => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `extensionRef` to `endpointPickerRef`: `portNumber: n` becomes `port: {number: n}`.
fn ref_up(r: &Value) -> Value {
    let Value::Object(map) = r else {
        return r.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "portNumber" => {
                out.insert("port".into(), json!({ "number": v }));
            }
            "port" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `endpointPickerRef` to `extensionRef`: `port: {number: n}` becomes `portNumber: n`.
fn ref_down(r: &Value) -> Value {
    let Value::Object(map) = r else {
        return r.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "port" => {
                if let Some(n) = v.as_object().and_then(|p| p.get("number")) {
                    out.insert("portNumber".into(), n.clone());
                }
            }
            "portNumber" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Best effort after a `v1alpha1` client edited a pool spec whose `v1alpha2` original was
/// stashed: `converted` is `up(edited)`, `original` the stashed spec. Keeps what `v1alpha1`
/// cannot show and the edit did not touch: `appProtocol`, the ports after the first (those
/// with a number other than the new first port's), and an empty `targetPorts: []` when the
/// edit set no port.
pub fn merge_v2_only(converted: &mut Value, original: &Value) {
    let (Value::Object(out), Value::Object(orig)) = (converted, original) else {
        return;
    };
    if let Some(proto) = orig.get("appProtocol")
        && !out.contains_key("appProtocol")
    {
        out.insert("appProtocol".into(), proto.clone());
    }
    let Some(Value::Array(orig_ports)) = orig.get("targetPorts") else {
        return;
    };
    match out.get_mut("targetPorts") {
        Some(Value::Array(ports)) if ports.len() == 1 => {
            let first = ports[0].get("number").cloned();
            for p in orig_ports.iter().skip(1) {
                if p.get("number").cloned() != first {
                    ports.push(p.clone());
                }
            }
        }
        None if orig_ports.is_empty() => {
            out.insert("targetPorts".into(), json!([]));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_v1() -> Value {
        json!({
            "selector": {"app": "llama"},
            "targetPortNumber": 8000,
            "extensionRef": {"group": "", "kind": "Service", "name": "epp", "portNumber": 9002, "failureMode": "FailOpen"}
        })
    }

    fn full_v2() -> Value {
        json!({
            "selector": {"matchLabels": {"app": "llama"}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"group": "", "kind": "Service", "name": "epp", "port": {"number": 9002}, "failureMode": "FailOpen"}
        })
    }

    #[test]
    fn full_spec_both_ways() {
        assert_eq!(up(&full_v1()), full_v2());
        assert_eq!(down(&full_v2()), full_v1());
    }

    #[test]
    fn partial_specs() {
        assert_eq!(
            up(&json!({"selector": {"a": "b"}})),
            json!({"selector": {"matchLabels": {"a": "b"}}})
        );
        assert_eq!(
            down(&json!({"selector": {"matchLabels": {"a": "b"}}})),
            json!({"selector": {"a": "b"}})
        );
        assert_eq!(
            up(&json!({"extensionRef": {"name": "epp"}})),
            json!({"endpointPickerRef": {"name": "epp"}})
        );
        assert_eq!(
            down(&json!({"endpointPickerRef": {"name": "epp"}})),
            json!({"extensionRef": {"name": "epp"}})
        );
        assert_eq!(
            up(&json!({"targetPortNumber": 8000})),
            json!({"targetPorts": [{"number": 8000}]})
        );
        assert_eq!(up(&json!({})), json!({}));
        assert_eq!(down(&json!({})), json!({}));
    }

    #[test]
    fn empty_target_ports_give_no_port_number() {
        assert_eq!(down(&json!({"targetPorts": []})), json!({}));
        // Not a projection of the input: the caller stashes the original.
        assert_ne!(
            up(&down(&json!({"targetPorts": []}))),
            json!({"targetPorts": []})
        );
    }

    #[test]
    fn down_drops_what_v1alpha1_cannot_hold() {
        let v2 = json!({
            "targetPorts": [{"number": 8000}, {"number": 8001}],
            "appProtocol": "http",
            "selector": {"matchLabels": {"a": "b"}, "matchExpressions": []},
        });
        assert_eq!(
            down(&v2),
            json!({"targetPortNumber": 8000, "selector": {"a": "b"}})
        );
    }

    #[test]
    fn unknown_fields_are_kept_in_place() {
        let v1 = json!({"x": 1, "extensionRef": {"name": "e", "y": 2}, "selector": {"a": "b"}});
        let v2 = up(&v1);
        assert_eq!(
            v2,
            json!({"x": 1, "endpointPickerRef": {"name": "e", "y": 2}, "selector": {"matchLabels": {"a": "b"}}})
        );
        assert_eq!(
            serde_json::to_string(&v2).unwrap(),
            r#"{"x":1,"endpointPickerRef":{"name":"e","y":2},"selector":{"matchLabels":{"a":"b"}}}"#
        );
        assert_eq!(down(&v2), v1);
    }

    #[test]
    fn other_version_names_are_dropped() {
        assert_eq!(up(&json!({"appProtocol": "http", "a": 1})), json!({"a": 1}));
        assert_eq!(
            down(&json!({"targetPortNumber": 1, "extensionRef": {}})),
            json!({})
        );
        assert_eq!(
            up(&json!({"extensionRef": {"port": 1, "portNumber": 2}})),
            json!({"endpointPickerRef": {"port": {"number": 2}}})
        );
    }

    #[test]
    fn maps_are_projections() {
        let samples = [
            full_v1(),
            full_v2(),
            json!({"targetPorts": [], "targetPortNumber": 3}),
            json!({"selector": {}, "extensionRef": {"port": {"number": 1, "x": 2}}}),
            json!({"selector": "not-a-map", "endpointPickerRef": 7}),
            json!("not-an-object"),
        ];
        for x in samples {
            assert_eq!(down(&up(&down(&x))), down(&x), "{x}");
            assert_eq!(up(&down(&up(&x))), up(&x), "{x}");
        }
    }

    #[test]
    fn merge_keeps_v1alpha2_only_parts() {
        let original =
            json!({"targetPorts": [{"number": 8000}, {"number": 8001}], "appProtocol": "http"});
        let mut converted = up(&json!({"targetPortNumber": 9000}));
        merge_v2_only(&mut converted, &original);
        assert_eq!(
            converted,
            json!({"targetPorts": [{"number": 9000}, {"number": 8001}], "appProtocol": "http"})
        );

        let mut converted = up(&json!({"targetPortNumber": 8001}));
        merge_v2_only(&mut converted, &original);
        assert_eq!(
            converted,
            json!({"targetPorts": [{"number": 8001}], "appProtocol": "http"})
        );

        let mut converted = up(&json!({"selector": {"a": "b"}}));
        merge_v2_only(&mut converted, &json!({"targetPorts": []}));
        assert_eq!(
            converted,
            json!({"selector": {"matchLabels": {"a": "b"}}, "targetPorts": []})
        );
    }
}
