//! Traffic splitting between the LLMInferenceServices of one `spec.router.route.group`
//! (KServe `pkg/controller/v1alpha2/llmisvc/router_group*.go`). Pure: the controller passes the
//! other services of the namespace (from its watch cache) as plain JSON.
//!
//! - Members: the services of the same namespace whose `route.group` is the same, self always,
//!   others only when not terminating and either force-stopped or routable (`RouterReady`
//!   True and at least one ready replica in each of `status.workloads.primary` / `prefill` /
//!   `scheduler` present: KServe's `filterEligibleMembers` / `isMemberRoutable`).
//! - Each member's backend: the controller-managed backendRef of its own (admitted) route,
//!   i.e. its InferencePool, its `scheduler.pool.ref` pool, or without a scheduler its workload
//!   Service (KServe's `resolveMemberBackendRef`; [`names::WORKLOAD_PORT`] when the route has none).
//! - Members serving other models than self (`status.addresses[].models`, else
//!   `spec.model.name` + LoRA adapter names; a stopped member matches when it lists self's
//!   `spec.model.name`) are "divergent": left out of the route, reported by `GroupDegraded`.
//! - Every rule of the route with a controller-managed backendRef, except the per-participant
//!   `/<namespace>/<name>[/...]` rules, gets one backendRef per matching member that is not
//!   stopped (a `weight: 0` backendRef still leaks traffic on some gateways, KServe's
//!   `rewriteRulesForGroup`), `weight` = the member's `route.weight` (0 when unset).
//! - `status.router.group`: `{name, members: [{name, weight, stopped, backendRef}]}` of the
//!   matching members, stopped ones included with their declared weight (KServe's
//!   `updateGroupStatus`).

use serde_json::{Map, Value, json};

use crate::api::v1alpha2::{BackendObjectReference, GroupMemberStatus, GroupStatus};
use crate::model::children as names;
use crate::model::view::RouterView;

/// KServe's `constants.LLMRoutingGroupLabelKey`: on the grouped service's HTTPRoute.
pub const ROUTING_GROUP_LABEL: &str = "serving.kserve.io/routing-group";

/// `spec.router.route.group` when set and non-empty.
pub fn group_of(svc: &Value) -> Option<&str> {
    svc["spec"]["router"]["route"]["group"]
        .as_str()
        .filter(|g| !g.is_empty())
}

/// One member of a routing group as another member sees it (KServe's `resolvedMember`).
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub name: String,
    pub namespace: String,
    pub group: String,
    /// `spec.router.route.weight` (0 when unset, as KServe).
    pub weight: i64,
    /// Carries `serving.kserve.io/stop: "true"`.
    pub stopped: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// KServe's `isMemberRoutable`, from the member's status.
    pub routable: bool,
    /// `spec.model.name`, else the service name.
    pub spec_model: String,
    /// KServe's `resolvedModelNames`: sorted, without duplicates.
    pub model_names: Vec<String>,
    /// `{group?, kind, name, port}` of the member's own backend.
    pub backend_ref: Value,
}

impl Member {
    /// The member view of a service; `None` when it has no `route.group` or no name.
    pub fn of(svc: &Value) -> Option<Member> {
        let group = group_of(svc)?.to_string();
        let meta = &svc["metadata"];
        let name = meta["name"].as_str().filter(|n| !n.is_empty())?.to_string();
        let namespace = meta["namespace"].as_str().unwrap_or_default().to_string();
        let spec_model = svc["spec"]["model"]["name"]
            .as_str()
            .filter(|m| !m.is_empty())
            .unwrap_or(&name)
            .to_string();
        Some(Member {
            weight: svc["spec"]["router"]["route"]["weight"]
                .as_i64()
                .unwrap_or(0),
            stopped: super::build::stopped(svc),
            terminating: !meta["deletionTimestamp"].is_null(),
            routable: routable(svc),
            model_names: model_names(svc, &spec_model),
            backend_ref: backend_ref(svc, &name),
            spec_model,
            name,
            namespace,
            group,
        })
    }
}

/// KServe's `isMemberRoutable`.
fn routable(svc: &Value) -> bool {
    let st = &svc["status"];
    let router_ready = st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "RouterReady" && c["status"] == "True");
    let w = &st["workloads"];
    router_ready
        && w["primary"].is_object()
        && ["primary", "prefill", "scheduler"]
            .iter()
            .all(|k| !w[k].is_object() || w[k]["readyReplicas"].as_i64().is_some_and(|r| r > 0))
}

/// KServe's `resolvedModelNames`: the models of `status.addresses`, else `spec.model.name`
/// (or the service name) and the LoRA adapter names; sorted, deduplicated.
fn model_names(svc: &Value, spec_model: &str) -> Vec<String> {
    let mut out: Vec<String> = svc["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["models"].as_array().into_iter().flatten())
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    if out.is_empty() {
        out.push(spec_model.to_string());
        out.extend(
            svc["spec"]["model"]["lora"]["adapters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["name"].as_str().map(str::to_string)),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// The shape of the service's `spec.router` ([`RouterView`]: scheduler managed or by
/// `pool.ref`; absent when `spec.router` is not an object).
fn router_of(svc: &Value) -> RouterView {
    svc.get("spec")
        .and_then(|s| s.get("router"))
        .and_then(Value::as_object)
        .map(RouterView::read)
        .unwrap_or_default()
}

/// KServe's `isExpectedBackendRef`: the service's default InferencePool, its
/// `scheduler.pool.ref` pool, or its workload Service (kind defaults to `Service`).
fn is_managed_backend(router: &RouterView, name: &str, b: &Value) -> bool {
    let kind = b["kind"].as_str().unwrap_or("Service");
    let n = b["name"].as_str().unwrap_or_default();
    (kind == "InferencePool" && (n == names::pool(name) || Some(n) == router.pool_ref.as_deref()))
        || (kind == "Service" && n == names::workload_service(name))
}

/// The member's backend: the first controller-managed backendRef of its admitted route
/// (group, kind, name, port), else computed as KServe's `resolveMemberBackendRef` does.
fn backend_ref(svc: &Value, name: &str) -> Value {
    let router = router_of(svc);
    let rules = &svc["spec"]["router"]["route"]["http"]["spec"]["rules"];
    let found = rules
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
        .find(|b| is_managed_backend(&router, name, b));
    let mut out = Map::new();
    if let Some(b) = found {
        for k in ["group", "kind", "name", "namespace"] {
            if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
                out.insert(k.into(), v.clone());
            }
        }
        out.insert(
            "port".into(),
            b.get("port")
                .cloned()
                .unwrap_or(names::WORKLOAD_PORT.into()),
        );
        return Value::Object(out);
    }
    let sched = router.scheduler.present();
    match router.pool_ref.as_deref() {
        Some(r) if sched => {
            json!({"group": names::INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": r, "port": names::WORKLOAD_PORT})
        }
        _ if sched => {
            json!({"group": names::INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool(name), "port": names::WORKLOAD_PORT})
        }
        _ => {
            json!({"kind": "Service", "name": names::workload_service(name), "port": names::WORKLOAD_PORT})
        }
    }
}

/// The resolved group of `svc` given the other services `others` (any namespace, any group;
/// self among them is ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub name: String,
    /// Members serving self's models, sorted by name, self included.
    pub matching: Vec<Member>,
    /// Members serving other models (KServe's `MemberDivergence`).
    pub divergent: Vec<Member>,
}

/// KServe's `listGroupMembers` + `filterEligibleMembers` + the matching split of
/// `injectGroupBackendRefs`. `None` when `svc` has no group.
pub fn resolve(svc: &Value, others: &[Value]) -> Option<Resolved> {
    let me = Member::of(svc)?;
    let mut members: Vec<Member> = others
        .iter()
        .filter_map(Member::of)
        .filter(|m| m.namespace == me.namespace && m.group == me.group && m.name != me.name)
        .filter(|m| !m.terminating && (m.stopped || m.routable))
        .collect();
    members.push(me.clone());
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members.dedup_by(|a, b| a.name == b.name);
    let (matching, divergent) = members.into_iter().partition(|m| {
        if m.stopped {
            m.model_names.contains(&me.spec_model)
        } else {
            m.model_names == me.model_names
        }
    });
    Some(Resolved {
        name: me.group,
        matching,
        divergent,
    })
}

/// KServe's `isPerParticipantRule`: a path match `/<ns>/<name>` or below.
fn per_participant(rule: &Value, prefix: &str) -> bool {
    rule["matches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["path"]["value"].as_str())
        .any(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
}

/// KServe's `rewriteRulesForGroup` on the route `spec` of `svc`: every rule with a
/// controller-managed backendRef (not a per-participant rule) gets the weighted backendRefs
/// of the matching members that are not stopped; rules with only the user's backends stay.
pub fn rewrite_rules(route_spec: &mut Value, svc: &Value, g: &Resolved) {
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
    let prefix = format!("/{ns}/{name}");
    let refs: Vec<Value> = g
        .matching
        .iter()
        .filter(|m| !m.stopped)
        .map(|m| {
            let mut b = m.backend_ref.clone();
            b["weight"] = m.weight.into();
            b
        })
        .collect();
    let Some(rules) = route_spec.get_mut("rules").and_then(Value::as_array_mut) else {
        return;
    };
    let router = router_of(svc);
    for rule in rules {
        if per_participant(rule, &prefix) {
            continue;
        }
        let managed = rule["backendRefs"]
            .as_array()
            .is_some_and(|bs| bs.iter().any(|b| is_managed_backend(&router, name, b)));
        if managed {
            rule["backendRefs"] = Value::Array(refs.clone());
        }
    }
}

/// `status.router.group` (KServe's `updateGroupStatus`): the matching members with their
/// declared weight, `stopped` when force-stopped, and their backend (its `group`, `kind`,
/// `name`, `namespace` and `port` as far as they are set).
pub fn status(g: &Resolved) -> GroupStatus {
    let int32 = |n: i64| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
    let members = g
        .matching
        .iter()
        .map(|m| {
            let b = &m.backend_ref;
            let text = |k: &str| b[k].as_str().map(str::to_string);
            GroupMemberStatus {
                name: m.name.clone(),
                weight: int32(m.weight),
                stopped: m.stopped.then_some(true),
                backend_ref: Some(BackendObjectReference {
                    group: text("group"),
                    kind: text("kind"),
                    name: text("name").unwrap_or_default(),
                    namespace: text("namespace"),
                    port: b["port"].as_i64().map(int32),
                }),
            }
        })
        .collect();
    GroupStatus {
        name: g.name.clone(),
        members: Some(members),
    }
}

/// KServe's `divergenceMessage`, `None` when every member serves self's models.
pub fn divergence(g: &Resolved) -> Option<String> {
    if g.divergent.is_empty() {
        return None;
    }
    let mut models: Vec<String> = g
        .divergent
        .iter()
        .map(|m| m.model_names.join("+"))
        .collect();
    models.sort();
    models.dedup();
    Some(format!(
        "group has members with different model sets: {}",
        models.join(", ")
    ))
}
