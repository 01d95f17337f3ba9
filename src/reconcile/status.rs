//! The pure status computation: the service plus the live children in, `status` out.
//!
//! Conditions (Kubernetes conventions: `type`, `status` True/False/Unknown, CamelCase `reason`,
//! `message`, `lastTransitionTime` kept while `status` does not change):
//! - `WorkloadsReady`: the decode (and prefill) workload has its replicas ready. A
//!   LeaderWorkerSet is ready when it reports `Available=True` or enough ready groups
//!   (kserve#6043).
//! - `RouterReady`: the scheduler Deployment is ready and the HTTPRoute (when one is built) is
//!   accepted by a parent. A gateway ref without a route is not waited on (kserve#5986); with
//!   no router at all the condition is True (`RouterNotConfigured`).
//! - `PresetsUpToDate`: every preset in the `serving.kserve.io/applied-presets` annotation
//!   still has the version recorded there (informational; does not affect `Ready`).
//! - `GroupReady` (True, with a managed route in a `route.group`) and `GroupDegraded` (True,
//!   `MemberDivergence`, while members of the group serve other models): KServe's
//!   `applyGroupStatus` (router_group_status.go); informational, they do not affect `Ready`.
//! - `Ready`: `WorkloadsReady` and `RouterReady`.
//!
//! Only fields of the CRD's status schema are written (others would be pruned by the API
//! server and look like a perpetual change).

use serde_json::{Map, Value, json};

use super::build::{ChildRef, Plan, names};
use crate::presets::{APPLIED_PRESETS_ANNOTATION, PresetStore, parse_applied_annotation};

/// Condition status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    True,
    False,
    Unknown,
}

impl St {
    fn as_str(self) -> &'static str {
        match self {
            St::True => "True",
            St::False => "False",
            St::Unknown => "Unknown",
        }
    }
}

struct Cond {
    status: St,
    reason: String,
    message: String,
}

fn cond(status: St, reason: &str, message: impl Into<String>) -> Cond {
    Cond {
        status,
        reason: reason.into(),
        message: message.into(),
    }
}

fn find<'a>(observed: &'a [Value], r: &ChildRef) -> Option<&'a Value> {
    observed.iter().find(|o| {
        o["kind"] == r.kind
                && o["metadata"]["name"] == r.name.as_str()
                // Two InferencePools share a name (v1 and v1alpha2).
                && o.get("apiVersion").is_none_or(|a| a == r.api_version)
    })
}

fn group_of(api_version: &str) -> Option<String> {
    api_version.split_once('/').map(|(g, _)| g.to_string())
}

fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_i64()
}

/// Whether pod `p` belongs to workload `o` (named by `r`): a LeaderWorkerSet's pods carry its
/// name in `leaderworkerset.sigs.k8s.io/name`; a Deployment's match its `spec.selector`.
fn pod_of(p: &Value, o: &Value, r: &ChildRef) -> bool {
    let labels = &p["metadata"]["labels"];
    if r.kind == "LeaderWorkerSet" {
        return labels["leaderworkerset.sigs.k8s.io/name"] == r.name.as_str();
    }
    match o["spec"]["selector"]["matchLabels"].as_object() {
        Some(sel) if !sel.is_empty() => sel.iter().all(|(k, v)| &labels[k] == v),
        _ => false,
    }
}

/// Why the pods of workload `o` do not run, from the observed Pending pods: the scheduler's
/// verdict (`PodScheduled=False`, e.g. `Unschedulable: 0/7 nodes are available: 7 Insufficient
/// nvidia.com/gpu.`), once per distinct message with the number of pods it applies to.
fn pod_problems(o: &Value, r: &ChildRef, observed: &[Value]) -> Vec<String> {
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for p in observed
        .iter()
        .filter(|p| p["kind"] == "Pod" && pod_of(p, o, r))
    {
        let Some(c) = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
        else {
            continue;
        };
        let msg = format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("NotScheduled"),
            c["message"].as_str().unwrap_or_default()
        );
        match seen.iter_mut().find(|(_, m, _)| *m == msg) {
            Some((_, _, n)) => *n += 1,
            None => seen.push((
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                msg,
                1,
            )),
        }
    }
    seen.into_iter()
        .map(|(pod, msg, n)| match n {
            1 => format!("pod {pod} {msg}"),
            n => format!("pod {pod} (and {} more) {msg}", n - 1),
        })
        .collect()
}

/// Is a Deployment or LeaderWorkerSet ready? Returns the verdict and a message, which names
/// the scheduler's reason for pods that cannot be placed (from the Pods in `observed`).
fn workload_ready(o: &Value, r: &ChildRef, observed: &[Value]) -> (bool, i64, String) {
    let (ok, ready, mut msg) = workload_replicas_ready(o, r);
    if !ok {
        for problem in pod_problems(o, r, observed) {
            msg.push_str("; ");
            msg.push_str(&problem);
        }
    }
    (ok, ready, msg)
}

fn workload_replicas_ready(o: &Value, r: &ChildRef) -> (bool, i64, String) {
    let want = i64_at(o, &["spec", "replicas"]).unwrap_or(1);
    let ready = i64_at(o, &["status", "readyReplicas"]).unwrap_or(0);
    let what = format!("{} {}", r.kind, r.name);
    if r.kind == "LeaderWorkerSet" {
        let available = o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Available" && c["status"] == "True");
        if available || ready >= want {
            return (true, ready, format!("{what}: available"));
        }
        return (false, ready, format!("{what}: {ready}/{want} groups ready"));
    }
    let generation = i64_at(o, &["metadata", "generation"]);
    let observed = i64_at(o, &["status", "observedGeneration"]);
    if let (Some(g), Some(og)) = (generation, observed)
        && og < g
    {
        return (
            false,
            ready,
            format!("{what}: rollout of generation {g} not observed yet"),
        );
    }
    (
        ready >= want,
        ready,
        format!("{what}: {ready}/{want} replicas ready"),
    )
}

fn observed_workload(r: &ChildRef, ready: Option<i64>) -> Value {
    let mut m = Map::new();
    if let Some(g) = group_of(r.api_version) {
        m.insert("apiGroup".into(), g.into());
    }
    m.insert("kind".into(), r.kind.into());
    m.insert("name".into(), r.name.clone().into());
    if let Some(n) = ready {
        m.insert("readyReplicas".into(), n.into());
    }
    Value::Object(m)
}

/// Names of the user-managed HTTPRoutes of `svc` (`spec.router.route.http.refs[].name`, in the
/// service's namespace), non-empty ones, in order.
pub fn referenced_routes(svc: &Value) -> Vec<String> {
    svc["spec"]["router"]["route"]["http"]["refs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

fn route_accepted(route: &Value) -> Option<bool> {
    let parents = route["status"]["parents"].as_array()?;
    Some(parents.iter().any(|p| {
        p["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Accepted" && c["status"] == "True")
    }))
}

/// `PresetsUpToDate` for the annotation on `svc` against `presets`. A recorded
/// `fnv1a64:` version is compared with the preset's content hash, any other with its
/// resourceVersion.
fn presets_condition(svc: &Value, presets: &PresetStore) -> (Cond, Vec<Value>) {
    let Some(ann) = svc["metadata"]["annotations"][APPLIED_PRESETS_ANNOTATION].as_str() else {
        return (cond(St::True, "NoPresets", "no presets applied"), vec![]);
    };
    let applied = match parse_applied_annotation(ann) {
        Ok(a) => a,
        Err(e) => {
            return (
                cond(St::Unknown, "InvalidAnnotation", e.to_string()),
                vec![],
            );
        }
    };
    let refs = applied
        .iter()
        .map(|a| json!({"name": a.name, "namespace": a.namespace, "source": a.source.as_str()}))
        .collect();
    let mut changed = Vec::new();
    for a in &applied {
        let key = format!("{}/{}", a.namespace, a.name);
        match presets.get(&a.namespace, &a.name) {
            None => changed.push(format!("preset {key} no longer exists")),
            Some(p) => {
                let recorded = a.resource_version.as_deref().unwrap_or("");
                let current = if recorded.starts_with("fnv1a64:") {
                    Some(p.content_hash.clone())
                } else {
                    p.resource_version.clone()
                };
                if current.as_deref() != Some(recorded) {
                    changed.push(format!(
                        "preset {key} changed (applied {recorded}, now {})",
                        p.version()
                    ));
                }
            }
        }
    }
    let c = if changed.is_empty() {
        cond(St::True, "UpToDate", "the applied presets are current")
    } else {
        cond(
            St::False,
            "PresetsChanged",
            format!(
                "{}; re-apply the service to pick them up",
                changed.join("; ")
            ),
        )
    };
    (c, refs)
}

/// The status of a service that cannot be built: `Ready` is `False` with reason
/// `InvalidSpec` and `message`.
pub fn invalid_spec(svc: &Value, message: &str, now: &str) -> Value {
    let mut st = Map::new();
    if let Some(g) = svc["metadata"]["generation"].as_i64() {
        st.insert("observedGeneration".into(), g.into());
    }
    let conds = vec![("Ready", cond(St::False, "InvalidSpec", message.to_string()))];
    st.insert("conditions".into(), conditions(svc, conds, now));
    Value::Object(st)
}

/// The status of a service whose `baseRefs` name configs that do not exist yet, as KServe
/// reports it (controller_int_config_not_found_test.go): `PresetsCombined=False` and
/// `Ready=False`, both with reason `ConfigNotFound` and `message`.
pub fn config_not_found(svc: &Value, message: &str, now: &str) -> Value {
    let mut st = Map::new();
    if let Some(g) = svc["metadata"]["generation"].as_i64() {
        st.insert("observedGeneration".into(), g.into());
    }
    let conds = vec![
        (
            "Ready",
            cond(St::False, "ConfigNotFound", message.to_string()),
        ),
        (
            "PresetsCombined",
            cond(St::False, "ConfigNotFound", message.to_string()),
        ),
    ];
    st.insert("conditions".into(), conditions(svc, conds, now));
    Value::Object(st)
}

/// The status of `svc` given its live children `observed` (any kinds; a Gateway named by the
/// route may be included for the URL), the current presets and the time `now` (RFC 3339,
/// used only for conditions whose status changes).
pub fn status(svc: &Value, observed: &[Value], presets: &PresetStore, now: &str) -> Value {
    status_grouped(svc, observed, presets, now, &[])
}

/// [`status`] of a service of a `route.group`, given the other services of its namespace
/// (`others`, as for [`super::build::build_grouped`]): with a managed route, also
/// `status.router.group` and, as KServe's `applyGroupStatus`, `GroupReady` True and
/// `GroupDegraded` True (reason `MemberDivergence`) while members serve other models. Neither
/// gates `Ready`.
pub fn status_grouped(
    svc: &Value,
    observed: &[Value],
    presets: &PresetStore,
    now: &str,
    others: &[Value],
) -> Value {
    let mut st = Map::new();
    if let Some(g) = svc["metadata"]["generation"].as_i64() {
        st.insert("observedGeneration".into(), g.into());
    }
    if super::build::stopped(svc) {
        // As KServe: nothing runs, the workload (and router) conditions say Stopped.
        let stopped = || cond(St::False, "Stopped", "Service is stopped");
        let router = Plan::of(svc).ok().filter(|p| {
            p.scheduler_ref().is_some() || p.route_ref().is_some() || p.pool_ref().is_some()
        });
        let (presets_cond, applied) = presets_condition(svc, presets);
        let conds = vec![
            ("Ready", stopped()),
            ("WorkloadsReady", stopped()),
            (
                "RouterReady",
                match router {
                    Some(_) => stopped(),
                    None => cond(
                        St::True,
                        "RouterNotConfigured",
                        "no scheduler or route is managed for this service",
                    ),
                },
            ),
            ("PresetsUpToDate", presets_cond),
        ];
        st.insert("conditions".into(), conditions(svc, conds, now));
        if !applied.is_empty() {
            st.insert("appliedConfigs".into(), Value::Array(applied));
        }
        return Value::Object(st);
    }
    let plan = match Plan::of(svc) {
        Ok(p) => p,
        Err(e) => return invalid_spec(svc, &e.to_string(), now),
    };
    let n = &plan.meta.name;
    let ns = &plan.meta.namespace;

    // Workloads.
    let mut workloads = Map::new();
    let mut not_ready = Vec::new();
    let mut missing = Vec::new();
    let mut check = |r: &ChildRef, slot: &str, workloads: &mut Map<String, Value>| -> bool {
        match find(observed, r) {
            None => {
                missing.push(format!("{} {} not found", r.kind, r.name));
                workloads.insert(slot.into(), observed_workload(r, None));
                false
            }
            Some(o) => {
                let (ok, ready, msg) = workload_ready(o, r, observed);
                if !ok {
                    not_ready.push(msg);
                }
                workloads.insert(slot.into(), observed_workload(r, Some(ready)));
                ok
            }
        }
    };
    let mut all = check(&plan.decode_ref(), "primary", &mut workloads);
    if let Some(p) = plan.prefill_ref() {
        all &= check(&p, "prefill", &mut workloads);
    }
    let sched_ok = plan
        .scheduler_ref()
        .map(|r| check(&r, "scheduler", &mut workloads));
    workloads.insert(
        "service".into(),
        json!({"kind": "Service", "name": names::workload_service(n)}),
    );
    // `check` also saw the scheduler: split its messages back out.
    let sched_name = names::scheduler(n);
    let (sched_msgs, wl_msgs): (Vec<String>, Vec<String>) = missing
        .iter()
        .chain(not_ready.iter())
        .cloned()
        .partition(|m| m.contains(&format!(" {sched_name}")));
    let workloads_cond = if all {
        cond(St::True, "Ready", "all workloads are ready")
    } else if missing
        .iter()
        .any(|m| !m.contains(&format!(" {sched_name}")))
    {
        cond(St::Unknown, "Pending", wl_msgs.join("; "))
    } else {
        cond(St::False, "MinimumReplicasUnavailable", wl_msgs.join("; "))
    };

    // Router.
    let route = plan.route_ref();
    let route_obj = route.as_ref().and_then(|r| find(observed, r));
    // User-managed routes (`router.route.http.refs`, no managed route): as KServe's
    // `collectReferencedRoutes` / `validateHTTPRouteReferences` (router.go,
    // router_validation.go), each must exist in the service's namespace and be accepted by a
    // gateway; they give the gateways and the URL.
    let ref_routes: Vec<ChildRef> = if route.is_none() {
        referenced_routes(svc)
            .into_iter()
            .map(|name| ChildRef {
                api_version: "gateway.networking.k8s.io/v1",
                kind: "HTTPRoute",
                name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut router_problems = sched_msgs;
    let mut router_pending = false;
    for r in &ref_routes {
        match find(observed, r).map(route_accepted) {
            None => router_problems.push(format!("HTTPRoute {ns}/{} does not exist", r.name)),
            Some(None) => {
                router_pending = true;
                router_problems.push(format!(
                    "HTTPRoute {} not yet accepted by a gateway",
                    r.name
                ));
            }
            Some(Some(false)) => {
                router_problems.push(format!("HTTPRoute {} not accepted by a gateway", r.name))
            }
            Some(Some(true)) => {}
        }
    }
    if let Some(r) = &route {
        match route_obj.map(route_accepted) {
            None => {
                router_pending = true;
                router_problems.push(format!("HTTPRoute {} not found", r.name));
            }
            Some(None) => {
                router_pending = true;
                router_problems.push(format!(
                    "HTTPRoute {} not yet accepted by a gateway",
                    r.name
                ));
            }
            Some(Some(false)) => {
                router_problems.push(format!("HTTPRoute {} not accepted by a gateway", r.name))
            }
            Some(Some(true)) => {}
        }
    }
    let router_cond = if route.is_none() && ref_routes.is_empty() && sched_ok.is_none() {
        cond(
            St::True,
            "RouterNotConfigured",
            "no scheduler or route is managed for this service",
        )
    } else if router_problems.is_empty() {
        cond(St::True, "Ready", "the router is ready")
    } else if router_pending && sched_ok != Some(false) {
        cond(St::Unknown, "Pending", router_problems.join("; "))
    } else {
        cond(St::False, "RouterNotReady", router_problems.join("; "))
    };

    // Router status objects.
    let mut router = Map::new();
    if let Some(p) = plan.pool_ref() {
        router.insert(
            "scheduler".into(),
            json!({
                "inferencePool": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": p.name, "namespace": ns},
            }),
        );
    }
    // URL: the route's gateway address when the Gateway is known and has one, else the
    // workload Service.
    let mut url = format!(
        "http://{}.{ns}.svc.cluster.local:{}",
        names::workload_service(n),
        super::build::WORKLOAD_PORT
    );
    // `origin` (group required by the schema) is only set for a Gateway: a status with an
    // empty (core) group was refused by kube-apiserver v1.20 in the real-cluster test (the
    // value reached validation as null; cause not pinned down).
    let mut origin = Value::Null;
    // Each route (the managed one, else the referenced ones) with its spec.
    let mut routes: Vec<(&str, &Value)> = Vec::new();
    if let Some(r) = &route {
        routes.push((&r.name, &svc["spec"]["router"]["route"]["http"]["spec"]));
    }
    for r in &ref_routes {
        if let Some(o) = find(observed, r) {
            routes.push((&r.name, &o["spec"]));
        }
    }
    let mut gateways = Vec::new();
    for (rname, spec) in routes {
        for p in spec["parentRefs"].as_array().into_iter().flatten() {
            if p.get("kind").and_then(Value::as_str).unwrap_or("Gateway") != "Gateway" {
                continue;
            }
            let gname = p["name"].as_str().unwrap_or_default();
            let gns = p["namespace"].as_str().unwrap_or(ns);
            gateways.push(json!({
                "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gname, "namespace": gns,
                "httpRoutes": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": rname, "namespace": ns}],
            }));
            let gw = observed.iter().find(|o| {
                o["kind"] == "Gateway"
                    && o["metadata"]["name"] == gname
                    && o["metadata"]["namespace"] == gns
            });
            let addr = gw.and_then(|g| g["status"]["addresses"][0]["value"].as_str());
            if let Some(addr) = addr
                && origin.is_null()
            {
                let path = spec["rules"][0]["matches"][0]["path"]["value"]
                    .as_str()
                    .unwrap_or("")
                    .trim_end_matches('/');
                url = format!("http://{addr}{path}");
                origin = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gname, "namespace": gns});
            }
        }
    }
    if !gateways.is_empty() {
        router.insert("gateways".into(), Value::Array(gateways));
    }

    let scaling_cond = scaling_condition(&plan, observed);
    let (presets_cond, applied) = presets_condition(svc, presets);
    let ready_cond = match (workloads_cond.status, router_cond.status) {
        (St::True, St::True) => cond(St::True, "Ready", "the service is ready"),
        (St::True, s) => cond(
            if s == St::Unknown {
                St::Unknown
            } else {
                St::False
            },
            "RouterNotReady",
            router_cond.message.clone(),
        ),
        (s, _) => cond(
            if s == St::Unknown {
                St::Unknown
            } else {
                St::False
            },
            "WorkloadsNotReady",
            workloads_cond.message.clone(),
        ),
    };

    st.insert("url".into(), url.clone().into());
    st.insert("address".into(), json!({"url": url}));
    let model = svc["spec"]["model"]["name"].as_str().unwrap_or(n);
    let mut address = json!({"url": url, "models": [{"name": model}]});
    if !origin.is_null() {
        address["origin"] = origin;
    }
    st.insert("addresses".into(), json!([address]));
    let mut conds = vec![
        ("Ready", ready_cond),
        ("WorkloadsReady", workloads_cond),
        ("RouterReady", router_cond),
        ("PresetsUpToDate", presets_cond),
    ];
    if let Some(c) = scaling_cond {
        conds.push(("ScalingReady", c));
    }
    if route.is_some()
        && let Some(g) = super::group::resolve(svc, others)
    {
        conds.push((
            "GroupReady",
            cond(St::True, "Ready", "the group's backends are routed"),
        ));
        if let Some(msg) = super::group::divergence(&g) {
            conds.push(("GroupDegraded", cond(St::True, "MemberDivergence", msg)));
        }
        router.insert("group".into(), super::group::status(&g));
    }
    st.insert("conditions".into(), conditions(svc, conds, now));
    st.insert("workloads".into(), Value::Object(workloads));
    if !router.is_empty() {
        st.insert("router".into(), Value::Object(router));
    }
    if !applied.is_empty() {
        st.insert("appliedConfigs".into(), Value::Array(applied));
    }
    Value::Object(st)
}

/// `ScalingReady` when the service autoscales (None otherwise), from its autoscalers' own
/// conditions as KServe reads them: an HPA is ready when `AbleToScale` and `ScalingActive` are
/// not False (e.g. `FailedGetExternalMetric` when no adapter serves WVA's metric), a KEDA
/// ScaledObject when its `Ready` is True. It does not gate `Ready`: a service whose autoscaler
/// cannot scale still serves at its current size.
fn scaling_condition(plan: &Plan, observed: &[Value]) -> Option<Cond> {
    let refs = plan.autoscaler_refs();
    if refs.is_empty() {
        return None;
    }
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    for (_, r) in &refs {
        let Some(o) = find(observed, r) else {
            pending.push(format!("{} {} not found", r.kind, r.name));
            continue;
        };
        let conds = o["status"]["conditions"].as_array();
        let get = |t: &str| conds.into_iter().flatten().find(|c| c["type"] == t);
        let describe = |c: &Value| {
            format!(
                "{} {}: {} ({})",
                r.kind,
                r.name,
                c["reason"].as_str().unwrap_or("NotReady"),
                c["message"].as_str().unwrap_or("")
            )
        };
        if r.kind == "HorizontalPodAutoscaler" {
            let checks = [get("AbleToScale"), get("ScalingActive")];
            if let Some(bad) = checks.iter().flatten().find(|c| c["status"] == "False") {
                failed.push(describe(bad));
            } else if checks.iter().all(Option::is_none) {
                pending.push(format!(
                    "{} {}: conditions not yet reported",
                    r.kind, r.name
                ));
            }
        } else {
            match get("Ready") {
                Some(c) if c["status"] == "True" => {}
                Some(c) if c["status"] == "False" => failed.push(describe(c)),
                _ => pending.push(format!("{} {} not yet ready", r.kind, r.name)),
            }
        }
    }
    Some(if !failed.is_empty() {
        failed.extend(pending);
        cond(St::False, "AutoscalerNotReady", failed.join("; "))
    } else if !pending.is_empty() {
        cond(St::Unknown, "Pending", pending.join("; "))
    } else {
        cond(St::True, "Ready", "the autoscalers are active")
    })
}

/// Conditions with `lastTransitionTime` carried over from the service's current status when
/// the status of that type did not change.
fn conditions(svc: &Value, conds: Vec<(&str, Cond)>, now: &str) -> Value {
    let old = svc["status"]["conditions"].as_array();
    let list = conds
        .into_iter()
        .map(|(t, c)| {
            let prev = old
                .into_iter()
                .flatten()
                .find(|o| o["type"] == t && o["status"] == c.status.as_str());
            let ltt = prev
                .and_then(|p| p["lastTransitionTime"].as_str())
                .unwrap_or(now);
            let mut m = Map::new();
            m.insert("type".into(), t.into());
            m.insert("status".into(), c.status.as_str().into());
            m.insert("lastTransitionTime".into(), ltt.into());
            m.insert("reason".into(), c.reason.into());
            if !c.message.is_empty() {
                m.insert("message".into(), c.message.into());
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// The condition `type` of a status value, for callers and tests.
pub fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn store() -> PresetStore {
        PresetStore::embedded("llmisvc-system").unwrap()
    }

    fn svc(spec: Value) -> Value {
        json!({
            "apiVersion": "serving.kserve.io/v1alpha2",
            "kind": "LLMInferenceService",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u1", "generation": 3},
            "spec": spec,
        })
    }

    fn deploy(name: &str, replicas: i64, ready: Option<i64>) -> Value {
        let mut d = json!({"kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": replicas}});
        if let Some(r) = ready {
            d["status"] = json!({"readyReplicas": r});
        }
        d
    }

    fn st<'a>(s: &'a Value, t: &str) -> (&'a str, &'a str) {
        let c = condition(s, t).unwrap();
        (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
    }

    #[test]
    fn table() {
        let single = svc(json!({"template": {}}));
        let mn = svc(json!({"template": {}, "worker": {}, "parallelism": {"pipeline": 2}}));
        let pd = svc(json!({"template": {}, "prefill": {"template": {}}}));
        let gw_only =
            svc(json!({"template": {}, "router": {"gateway": {"refs": [{"name": "g"}]}}}));
        let sched = svc(
            json!({"template": {}, "router": {"scheduler": {"template": {}, "pool": {"spec": {}}}}}),
        );
        let lws_avail = json!({"kind": "LeaderWorkerSet", "metadata": {"name": "m-kserve-mn"}, "spec": {"replicas": 1},
            "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        let lws_not = json!({"kind": "LeaderWorkerSet", "metadata": {"name": "m-kserve-mn"}, "spec": {"replicas": 1}, "status": {}});
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            &Value,
            Vec<Value>,
            (&str, &str),
            (&str, &str),
            (&str, &str),
        )> = vec![
            (
                "single ready",
                &single,
                vec![deploy("m-kserve", 1, Some(1))],
                ("True", "Ready"),
                ("True", "Ready"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "single not ready",
                &single,
                vec![deploy("m-kserve", 2, Some(1))],
                ("False", "WorkloadsNotReady"),
                ("False", "MinimumReplicasUnavailable"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "single missing",
                &single,
                vec![],
                ("Unknown", "WorkloadsNotReady"),
                ("Unknown", "Pending"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "lws available",
                &mn,
                vec![lws_avail],
                ("True", "Ready"),
                ("True", "Ready"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "lws not",
                &mn,
                vec![lws_not],
                ("False", "WorkloadsNotReady"),
                ("False", "MinimumReplicasUnavailable"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "pd prefill not ready",
                &pd,
                vec![
                    deploy("m-kserve", 1, Some(1)),
                    deploy("m-kserve-prefill", 1, None),
                ],
                ("False", "WorkloadsNotReady"),
                ("False", "MinimumReplicasUnavailable"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "gateway ref, no route",
                &gw_only,
                vec![deploy("m-kserve", 1, Some(1))],
                ("True", "Ready"),
                ("True", "Ready"),
                ("True", "RouterNotConfigured"),
            ),
            (
                "scheduler not ready",
                &sched,
                vec![
                    deploy("m-kserve", 1, Some(1)),
                    deploy("m-kserve-router-scheduler", 1, Some(0)),
                ],
                ("False", "RouterNotReady"),
                ("True", "Ready"),
                ("False", "RouterNotReady"),
            ),
            (
                "scheduler ready",
                &sched,
                vec![
                    deploy("m-kserve", 1, Some(1)),
                    deploy("m-kserve-router-scheduler", 1, Some(1)),
                ],
                ("True", "Ready"),
                ("True", "Ready"),
                ("True", "Ready"),
            ),
        ];
        for (name, s, obs, ready, wl, router) in cases {
            let out = status(s, &obs, &store(), NOW);
            assert_eq!(st(&out, "Ready"), ready, "{name}: Ready");
            assert_eq!(st(&out, "WorkloadsReady"), wl, "{name}: WorkloadsReady");
            assert_eq!(st(&out, "RouterReady"), router, "{name}: RouterReady");
            assert_eq!(out["observedGeneration"], 3, "{name}");
        }
    }

    /// Pending pods the scheduler cannot place are named with its reason, per workload.
    #[test]
    fn unschedulable_pods_are_explained() {
        let single = svc(json!({"template": {}}));
        let mn = svc(json!({"template": {}, "worker": {}, "parallelism": {"pipeline": 2}}));
        let pending = |name: &str, labels: Value, msg: &str| {
            json!({"kind": "Pod", "metadata": {"name": name, "labels": labels},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": msg}]}})
        };
        let insufficient = "0/7 nodes are available: 7 Insufficient nvidia.com/gpu.";
        let mut d = deploy("m-kserve", 2, Some(0));
        d["spec"]["selector"] = json!({"matchLabels": {"app.kubernetes.io/name": "m", "kserve.io/component": "workload"}});
        let mine = json!({"app.kubernetes.io/name": "m", "kserve.io/component": "workload"});
        let other = json!({"app.kubernetes.io/name": "other", "kserve.io/component": "workload"});
        let lws = json!({"kind": "LeaderWorkerSet", "metadata": {"name": "m-kserve-mn"},
            "spec": {"replicas": 1}, "status": {"readyReplicas": 0}});
        let lws_pod = json!({"leaderworkerset.sigs.k8s.io/name": "m-kserve-mn"});
        // (name, service, observed, message must contain, must not contain)
        type Case<'a> = (&'a str, &'a Value, Vec<Value>, Vec<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "two pods of the Deployment, one message",
                &single,
                vec![
                    d.clone(),
                    pending("m-kserve-a", mine.clone(), insufficient),
                    pending("m-kserve-b", mine.clone(), insufficient),
                ],
                vec![
                    "pod m-kserve-a (and 1 more) Unschedulable: 0/7 nodes",
                    "Insufficient nvidia.com/gpu",
                ],
                vec![],
            ),
            (
                "another service's pod is not ours",
                &single,
                vec![d.clone(), pending("x", other, insufficient)],
                vec!["0/2 replicas ready"],
                vec!["Insufficient"],
            ),
            (
                "a LeaderWorkerSet's pods by its name label",
                &mn,
                vec![
                    lws.clone(),
                    pending("m-kserve-mn-0", lws_pod.clone(), insufficient),
                ],
                vec![
                    "pod m-kserve-mn-0 Unschedulable",
                    "Insufficient nvidia.com/gpu",
                ],
                vec![],
            ),
            (
                "a scheduled pending pod says nothing more",
                &single,
                vec![
                    d.clone(),
                    json!({"kind": "Pod", "metadata": {"name": "p", "labels": mine},
                    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}),
                ],
                vec!["0/2 replicas ready"],
                vec!["pod p"],
            ),
        ];
        for (name, s, observed, want, not) in cases {
            let out = status(s, &observed, &store(), "2026-01-01T00:00:00Z");
            let c = condition(&out, "WorkloadsReady").unwrap();
            assert_ne!(c["status"], "True", "{name}");
            let msg = c["message"].as_str().unwrap();
            for w in want {
                assert!(msg.contains(w), "{name}: {msg:?} lacks {w:?}");
            }
            for n in not {
                assert!(!msg.contains(n), "{name}: {msg:?} has {n:?}");
            }
        }
    }

    #[test]
    fn missing_configs_are_config_not_found_as_kserve() {
        let s = config_not_found(&svc(json!({})), "waiting for x", "2026-01-01T00:00:00Z");
        assert_eq!(st(&s, "Ready"), ("False", "ConfigNotFound"));
        assert_eq!(st(&s, "PresetsCombined"), ("False", "ConfigNotFound"));
    }

    #[test]
    fn route_and_url() {
        let s = svc(
            json!({"template": {}, "router": {"route": {"http": {"spec": {
                "parentRefs": [{"name": "gw", "namespace": "sys"}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/ns/m"}}]}],
            }}}}}),
        );
        let d = deploy("m-kserve", 1, Some(1));
        let out = status(&s, std::slice::from_ref(&d), &store(), NOW);
        assert_eq!(st(&out, "RouterReady"), ("Unknown", "Pending"));
        assert_eq!(
            out["url"],
            "http://m-kserve-workload-svc.ns.svc.cluster.local:8000"
        );
        let route = json!({"kind": "HTTPRoute", "metadata": {"name": "m-kserve-route"},
            "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}});
        let gw = json!({"kind": "Gateway", "metadata": {"name": "gw", "namespace": "sys"},
            "status": {"addresses": [{"value": "10.0.0.1"}]}});
        let out = status(&s, &[d, route, gw], &store(), NOW);
        assert_eq!(st(&out, "Ready"), ("True", "Ready"));
        assert_eq!(out["url"], "http://10.0.0.1/ns/m");
        assert_eq!(out["router"]["gateways"][0]["name"], "gw");
    }

    /// As KServe's `collectReferencedRoutes` / `validateHTTPRouteReferences`: with
    /// `route.http.refs` no route is built; a missing referenced route makes the router not
    /// ready ("does not exist"), an accepted one gives the gateways and the URL.
    #[test]
    fn referenced_routes_give_router_status_and_url() {
        let s = svc(
            json!({"template": {}, "router": {"route": {"http": {"refs": [{"name": "mine"}]}}}}),
        );
        let d = deploy("m-kserve", 1, Some(1));
        let out = status(&s, std::slice::from_ref(&d), &store(), NOW);
        assert_eq!(st(&out, "RouterReady"), ("False", "RouterNotReady"));
        let msg = condition(&out, "RouterReady").unwrap()["message"].clone();
        assert!(
            msg.as_str()
                .unwrap()
                .contains("HTTPRoute ns/mine does not exist"),
            "{msg}"
        );
        let route = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "mine", "namespace": "ns"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "sys"}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/mine/"}}]}]},
            "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "False"}]}]}});
        let gw = json!({"kind": "Gateway", "metadata": {"name": "gw", "namespace": "sys"},
            "status": {"addresses": [{"value": "10.0.0.2"}]}});
        let out = status(&s, &[d.clone(), route.clone(), gw.clone()], &store(), NOW);
        assert_eq!(st(&out, "RouterReady"), ("False", "RouterNotReady"));
        let mut accepted = route;
        accepted["status"]["parents"][0]["conditions"][0]["status"] = "True".into();
        let out = status(&s, &[d, accepted, gw], &store(), NOW);
        assert_eq!(st(&out, "Ready"), ("True", "Ready"));
        assert_eq!(out["url"], "http://10.0.0.2/mine");
        assert_eq!(
            out["router"]["gateways"][0]["httpRoutes"][0]["name"],
            "mine"
        );
    }

    #[test]
    fn scaling_ready_follows_the_autoscalers() {
        let s = svc(
            json!({"template": {}, "scaling": {"maxReplicas": 3, "wva": {"hpa": {}}},
            "prefill": {"template": {}, "scaling": {"maxReplicas": 2, "keda": {"triggers": [{"type": "cpu"}]}}}}),
        );
        let d = deploy("m-kserve", 1, Some(1));
        let p = deploy("m-kserve-prefill", 1, Some(1));
        let hpa = |able: &str, active: &str| {
            json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "m-kserve-hpa"},
                "status": {"conditions": [
                    {"type": "AbleToScale", "status": able, "reason": "SucceededGetScale"},
                    {"type": "ScalingActive", "status": active, "reason": "FailedGetExternalMetric",
                     "message": "no metric wva_desired_replicas"}]}})
        };
        let so = |ready: &str| {
            json!({"kind": "ScaledObject", "metadata": {"name": "m-kserve-prefill-keda"},
                "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "ScaledObjectReady"}]}})
        };
        let out = status(&s, &[d.clone(), p.clone()], &store(), NOW);
        assert_eq!(st(&out, "ScalingReady"), ("Unknown", "Pending"));
        let out = status(
            &s,
            &[d.clone(), p.clone(), hpa("True", "True"), so("True")],
            &store(),
            NOW,
        );
        assert_eq!(st(&out, "ScalingReady"), ("True", "Ready"));
        let out = status(
            &s,
            &[d.clone(), p.clone(), hpa("True", "False"), so("True")],
            &store(),
            NOW,
        );
        assert_eq!(st(&out, "ScalingReady"), ("False", "AutoscalerNotReady"));
        let msg = condition(&out, "ScalingReady").unwrap()["message"]
            .as_str()
            .unwrap();
        assert!(
            msg.contains("FailedGetExternalMetric") && msg.contains("m-kserve-hpa"),
            "{msg}"
        );
        assert_eq!(
            st(&out, "Ready"),
            ("True", "Ready"),
            "scaling does not gate Ready"
        );
        let out = status(
            &s,
            &[d.clone(), p.clone(), hpa("True", "True"), so("False")],
            &store(),
            NOW,
        );
        assert_eq!(st(&out, "ScalingReady"), ("False", "AutoscalerNotReady"));
        // Without autoscaling there is no such condition.
        let out = status(&svc(json!({"template": {}})), &[d], &store(), NOW);
        assert!(condition(&out, "ScalingReady").is_none());
    }

    #[test]
    fn stopped_services_say_so() {
        let mut s = svc(json!({"template": {}, "router": {"scheduler": {"template": {}}}}));
        s["metadata"]["annotations"] = json!({"serving.kserve.io/stop": "true"});
        let out = status(&s, &[], &store(), NOW);
        assert_eq!(st(&out, "Ready"), ("False", "Stopped"));
        assert_eq!(st(&out, "WorkloadsReady"), ("False", "Stopped"));
        assert_eq!(st(&out, "RouterReady"), ("False", "Stopped"));
        assert!(out.get("workloads").is_none() && out.get("url").is_none());
        assert_eq!(out["observedGeneration"], 3);
        let mut plain = svc(json!({"template": {}}));
        plain["metadata"]["annotations"] = json!({"serving.kserve.io/stop": "TRUE"});
        let out = status(&plain, &[], &store(), NOW);
        assert_eq!(st(&out, "RouterReady"), ("True", "RouterNotConfigured"));
        assert_eq!(st(&out, "Ready"), ("False", "Stopped"));
    }

    #[test]
    fn transition_time_kept() {
        let mut s = svc(json!({"template": {}}));
        let d = deploy("m-kserve", 1, Some(1));
        let first = status(&s, std::slice::from_ref(&d), &store(), NOW);
        s["status"] = first.clone();
        let again = status(
            &s,
            std::slice::from_ref(&d),
            &store(),
            "2030-01-01T00:00:00Z",
        );
        assert_eq!(first, again);
        let flipped = status(
            &s,
            &[deploy("m-kserve", 1, Some(0))],
            &store(),
            "2030-01-01T00:00:00Z",
        );
        assert_eq!(
            condition(&flipped, "Ready").unwrap()["lastTransitionTime"],
            "2030-01-01T00:00:00Z"
        );
        assert_eq!(
            condition(&flipped, "PresetsUpToDate").unwrap()["lastTransitionTime"],
            NOW
        );
    }

    #[test]
    fn presets_up_to_date() {
        let store = store();
        let p = store
            .get("llmisvc-system", "kserve-config-llm-template")
            .unwrap();
        let ann = |rv: &str| {
            format!(
                r#"[{{"name":"kserve-config-llm-template","namespace":"llmisvc-system","resourceVersion":"{rv}","source":"Preset"}}]"#
            )
        };
        let mut s = svc(json!({"template": {}}));
        s["metadata"]["annotations"] = json!({APPLIED_PRESETS_ANNOTATION: ann(&p.content_hash)});
        let out = status(&s, &[], &store, NOW);
        assert_eq!(st(&out, "PresetsUpToDate"), ("True", "UpToDate"));
        assert_eq!(out["appliedConfigs"][0]["source"], "Preset");
        s["metadata"]["annotations"] =
            json!({APPLIED_PRESETS_ANNOTATION: ann("fnv1a64:0000000000000000")});
        let out = status(&s, &[], &store, NOW);
        assert_eq!(st(&out, "PresetsUpToDate"), ("False", "PresetsChanged"));
        let msg = condition(&out, "PresetsUpToDate").unwrap()["message"]
            .as_str()
            .unwrap();
        assert!(
            msg.contains("llmisvc-system/kserve-config-llm-template"),
            "{msg}"
        );
        s["metadata"]["annotations"] = json!({APPLIED_PRESETS_ANNOTATION: "nope"});
        let out = status(&s, &[], &store, NOW);
        assert_eq!(
            st(&out, "PresetsUpToDate"),
            ("Unknown", "InvalidAnnotation")
        );
    }

    /// `status.router.group` and the group conditions (KServe's `applyGroupStatus`): the
    /// matching members with their declared weight, a stopped one marked `stopped`;
    /// `GroupDegraded` while a member serves another model; `Ready` not gated by either.
    #[test]
    fn route_group_status() {
        let member = |name: &str, weight: i64, model: &str| {
            json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"model": {"name": model}, "template": {}, "router": {
                    "route": {"group": "g", "weight": weight, "http": {"spec": {"rules": [{
                        "backendRefs": [{"kind": "Service", "name": names::workload_service(name), "port": 8000}]}]}}},
                }},
                "status": {
                    "conditions": [{"type": "RouterReady", "status": "True"}],
                    "workloads": {"primary": {"kind": "Deployment", "name": "x", "readyReplicas": 1}},
                    "addresses": [{"url": "http://x", "models": [{"name": model}]}],
                },
            })
        };
        let mut me = member("m", 60, "llama");
        me["metadata"]["uid"] = json!("u1");
        me.as_object_mut().unwrap().remove("status");
        let mut stopped = member("s", 10, "llama");
        stopped["metadata"]["annotations"] = json!({"serving.kserve.io/stop": "true"});
        let others = [member("a", 40, "llama"), stopped, member("z", 5, "mistral")];
        let out = status_grouped(&me, &[], &store(), NOW, &others);
        let backend =
            |n: &str| json!({"kind": "Service", "name": names::workload_service(n), "port": 8000});
        assert_eq!(
            out["router"]["group"],
            json!({"name": "g", "members": [
                {"name": "a", "weight": 40, "backendRef": backend("a")},
                {"name": "m", "weight": 60, "backendRef": backend("m")},
                {"name": "s", "weight": 10, "stopped": true, "backendRef": backend("s")},
            ]})
        );
        assert_eq!(st(&out, "GroupReady"), ("True", "Ready"));
        assert_eq!(st(&out, "GroupDegraded"), ("True", "MemberDivergence"));
        assert!(
            condition(&out, "GroupDegraded").unwrap()["message"]
                .as_str()
                .unwrap()
                .ends_with(": mistral")
        );
        // Not grouped: neither.
        me["spec"]["router"]["route"]
            .as_object_mut()
            .unwrap()
            .remove("group");
        let out = status_grouped(&me, &[], &store(), NOW, &others);
        assert!(out["router"].get("group").is_none());
        assert!(condition(&out, "GroupReady").is_none());
    }
}
