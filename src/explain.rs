//! Provenance: for every field that mutation set or changed, which source set it — a
//! well-known preset or a baseRef (by name), a default rule, GPU injection, vLLM templating,
//! storage wiring, worker/prefill expansion, router wiring — and, for values the user wrote that
//! a preset also sets, "user, over preset X". Pure: runs the pipeline stage by stage and
//! attributes each leaf to the last stage that changed it.

use serde::Serialize;
use serde_json::Value;

use crate::mutate::Stage;
use crate::pipeline::{Engine, Refused, StopAfter};
use crate::presets::{APPLIED_PRESETS_ANNOTATION, PresetSource, parse_applied_annotation};

/// One explained field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Field path; list items are named by their merge key (`containers[name=main]`).
    pub path: String,
    /// Who set it.
    pub source: String,
}

/// List items are identified by the key presets merge them by, else by index.
fn merge_key(list_field: &str) -> &'static str {
    match list_field {
        "volumeMounts" => "mountPath",
        "ports" => "containerPort",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        _ => "name",
    }
}

/// Leaves of `v` (scalars, and lists of scalars as a whole) with their identity paths, in
/// document order.
fn leaves(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(c, &p, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            let field = path.rsplit(['.', ']']).next().unwrap_or("");
            let key = merge_key(field);
            let ids: Vec<Option<String>> = a
                .iter()
                .map(|c| {
                    c.get(key)
                        .filter(|v| !v.is_object() && !v.is_array())
                        .map(|v| format!("{key}={}", scalar(v)))
                })
                .collect();
            let distinct: std::collections::HashSet<&String> = ids.iter().flatten().collect();
            let unique = distinct.len() == a.len();
            for (i, c) in a.iter().enumerate() {
                let id = match &ids[i] {
                    Some(id) if unique => id.clone(),
                    _ => i.to_string(),
                };
                leaves(c, &format!("{path}[{id}]"), out);
            }
        }
        other => out.push((path.to_string(), other.clone())),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn leaf_map(v: &Value) -> std::collections::HashMap<String, Value> {
    let mut out = Vec::new();
    for top in ["metadata", "spec"] {
        if let Some(x) = v.get(top) {
            leaves(x, top, &mut out);
        }
    }
    out.into_iter().collect()
}

/// Explains how `obj` becomes what the webhook stores. Errors: mutation's refusal (the
/// service as written, its presets or a step, naming the field), or an unreadable
/// applied-presets annotation ([`Refused::Preset`]).
pub fn explain(engine: &Engine, obj: &Value) -> Result<Vec<Entry>, Refused> {
    let presets_out = engine.mutate_until(obj, StopAfter::Presets)?;
    let mut stages: Vec<(String, Value)> = vec![("presets".into(), presets_out.clone())];
    for stage in Stage::ALL {
        let label = match stage {
            Stage::Defaults => "default rule",
            Stage::Gpus => "GPU injection",
            Stage::Vllm => "vLLM templating",
            Stage::Storage => "storage wiring (model URI)",
            Stage::Worker => "worker expansion",
            Stage::Prefill => "prefill expansion",
            Stage::Router => "router wiring",
        };
        stages.push((
            label.into(),
            engine.mutate_until(obj, StopAfter::Step(stage))?,
        ));
    }

    // The presets that were applied, in order, with their raw specs (for presence of a path).
    let applied = presets_out
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(APPLIED_PRESETS_ANNOTATION))
        .and_then(Value::as_str)
        .map(parse_applied_annotation)
        .transpose()?
        .unwrap_or_default();
    let preset_leaves: Vec<(String, std::collections::HashMap<String, Value>)> = applied
        .iter()
        .filter_map(|a| {
            let p = engine.presets.get(&a.namespace, &a.name)?;
            let label = match a.source {
                PresetSource::WellKnown => format!("preset {}", a.name),
                PresetSource::BaseRef => format!("baseRef {}", a.name),
            };
            let mut out = Vec::new();
            leaves(&p.spec, "spec", &mut out);
            Some((label, out.into_iter().collect()))
        })
        .collect();
    let preset_for = |path: &str| {
        preset_leaves
            .iter()
            .rev()
            .find(|(_, l)| l.contains_key(path))
            .map(|(label, _)| label.clone())
    };

    let user = leaf_map(obj);
    let maps: Vec<(String, std::collections::HashMap<String, Value>)> = stages
        .iter()
        .map(|(l, v)| (l.clone(), leaf_map(v)))
        .collect();
    let mut final_leaves = Vec::new();
    let last = &stages.last().map(|(_, v)| v.clone()).unwrap_or(Value::Null);
    for top in ["metadata", "spec"] {
        if let Some(x) = last.get(top) {
            leaves(x, top, &mut final_leaves);
        }
    }

    let mut entries = Vec::new();
    for (path, value) in final_leaves {
        // The last stage that changed this leaf (walking back from the end).
        let mut source = None;
        for i in (0..maps.len()).rev() {
            let here = maps[i].1.get(&path);
            let before = if i == 0 {
                user.get(&path)
            } else {
                maps[i - 1].1.get(&path)
            };
            if here != before {
                source = Some(if i == 0 {
                    preset_for(&path).unwrap_or_else(|| "preset resolution".into())
                } else {
                    maps[i].0.clone()
                });
                break;
            }
        }
        let source = match source {
            Some(s) => s,
            None if user.get(&path) == Some(&value) => match preset_for(&path) {
                Some(p) => format!("user, over {p}"),
                None => continue, // the user's own value, untouched: nothing to explain
            },
            None => continue,
        };
        entries.push(Entry { path, source });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_mutation_sets_names_a_source() {
        let engine = Engine::builtin().unwrap();
        let obj = json!({"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "parallelism": {"tensor": 2},
                "template": {"containers": [{"name": "main", "image": "my/vllm:1"}]}}});
        let e = explain(&engine, &obj).unwrap();
        let find = |p: &str| e.iter().find(|x| x.path == p).map(|x| x.source.clone());
        assert_eq!(find("spec.model.name").as_deref(), Some("default rule"));
        assert_eq!(
            find("spec.template.containers[name=main].resources.limits.nvidia.com/gpu").as_deref(),
            Some("GPU injection")
        );
        assert_eq!(
            find("spec.template.containers[name=main].args").as_deref(),
            Some("vLLM templating")
        );
        assert_eq!(
            find("spec.template.containers[name=main].image").as_deref(),
            Some("user, over preset kserve-config-llm-template")
        );
        assert_eq!(
            find("spec.template.containers[name=main].readinessProbe.httpGet.path").as_deref(),
            Some("preset kserve-config-llm-template")
        );
        assert!(e.iter().all(|x| !x.source.is_empty()));
        // A path lists once.
        let mut paths: Vec<&str> = e.iter().map(|x| x.path.as_str()).collect();
        let n = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), n);
        // The user's own untouched value is not listed.
        assert!(find("spec.model.uri").is_none());
    }
}
