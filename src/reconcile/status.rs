//! The pure status computation: the service plus the live children in, the typed v1alpha2
//! status ([`LLMInferenceServiceStatus`], the CRD's own status type) out.
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
//! - `ScalingReady`: the autoscalers can scale (only for autoscaled services; informational).
//! - `GroupReady` (True, with a managed route in a `route.group`) and `GroupDegraded` (True,
//!   `MemberDivergence`, while members of the group serve other models): KServe's
//!   `applyGroupStatus` (router_group_status.go); informational, they do not affect `Ready`.
//! - `Ready`: `WorkloadsReady` and `RouterReady`.
//!
//! [`status_grouped`] runs the steps in order: [`WorkloadsStep`] (the workload objects and
//! `WorkloadsReady`), [`RouterStep`] (the routes and `RouterReady`), [`Addresses`] (URL,
//! gateways), then the conditions that follow from them. Being the CRD's type, only fields of
//! its status schema can be written (others would be pruned by the API server and look like a
//! perpetual change). The controller serialises it for the status subresource.

use serde_json::Value;

use super::build::{ChildRef, Plan, int32, names};
use crate::api::common::{
    Addressable, Condition, ObjectReference, ObservedGateway, ObservedSchedulerStatus,
};
use crate::api::v1alpha2::{
    AppliedConfigRef, LLMInferenceServiceStatus, ModelAddress, ObservedWorkload, RouterStatus,
    SourcedAddress, TypedLocalObjectReference, WorkloadStatus,
};
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
    /// `Unknown` stays `Unknown`, anything else not True becomes `False` (how a sub-condition
    /// that is not True reaches `Ready`).
    fn not_true(self) -> St {
        if self == St::Unknown {
            St::Unknown
        } else {
            St::False
        }
    }
}

/// A condition before its type and `lastTransitionTime` are known (see [`conditions`]).
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

/// `RouterReady` of a service without a managed scheduler or route.
fn router_not_configured() -> Cond {
    cond(
        St::True,
        "RouterNotConfigured",
        "no scheduler or route is managed for this service",
    )
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

/// The integer at the JSON pointer `at` of an observed object (`None` when absent or not an
/// integer: observed objects are read leniently).
fn i64_at(v: &Value, at: &str) -> Option<i64> {
    v.pointer(at).and_then(Value::as_i64)
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
    let want = i64_at(o, "/spec/replicas").unwrap_or(1);
    let ready = i64_at(o, "/status/readyReplicas").unwrap_or(0);
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
    let generation = i64_at(o, "/metadata/generation");
    let observed = i64_at(o, "/status/observedGeneration");
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

/// The status reference of workload `r` with its ready replicas (`None` when not found).
fn observed_workload(r: &ChildRef, ready: Option<i64>) -> ObservedWorkload {
    ObservedWorkload {
        api_group: group_of(r.api_version),
        kind: r.kind.into(),
        name: r.name.clone(),
        ready_replicas: ready.map(int32),
    }
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

/// `PresetsUpToDate` for the annotation on `svc` against `presets`, with the presets it names
/// (`status.appliedConfigs`). A recorded `fnv1a64:` version is compared with the preset's
/// content hash, any other with its resourceVersion.
fn presets_condition(svc: &Value, presets: &PresetStore) -> (Cond, Vec<AppliedConfigRef>) {
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
        .map(|a| AppliedConfigRef {
            name: a.name.clone(),
            namespace: a.namespace.clone(),
            source: a.source.as_str().into(),
        })
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

/// A status of `svc` with `observedGeneration` and the conditions `conds` (see
/// [`conditions`]), nothing else.
fn with_conditions(svc: &Value, conds: Vec<(&str, Cond)>, now: &str) -> LLMInferenceServiceStatus {
    LLMInferenceServiceStatus {
        observed_generation: svc["metadata"]["generation"].as_i64(),
        conditions: Some(conditions(svc, conds, now)),
        ..Default::default()
    }
}

/// `Some(list)` unless it is empty (optional status lists are left out when empty).
fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

/// The status of a service that cannot be built: `Ready` is `False` with reason
/// `InvalidSpec` and `message`.
pub fn invalid_spec(svc: &Value, message: &str, now: &str) -> LLMInferenceServiceStatus {
    let conds = vec![("Ready", cond(St::False, "InvalidSpec", message))];
    with_conditions(svc, conds, now)
}

/// The status of a service whose `baseRefs` name configs that do not exist yet, as KServe
/// reports it (controller_int_config_not_found_test.go): `PresetsCombined=False` and
/// `Ready=False`, both with reason `ConfigNotFound` and `message`.
pub fn config_not_found(svc: &Value, message: &str, now: &str) -> LLMInferenceServiceStatus {
    let conds = vec![
        ("Ready", cond(St::False, "ConfigNotFound", message)),
        (
            "PresetsCombined",
            cond(St::False, "ConfigNotFound", message),
        ),
    ];
    with_conditions(svc, conds, now)
}

/// The status of `svc` given its live children `observed` (any kinds; a Gateway named by the
/// route may be included for the URL), the current presets and the time `now` (RFC 3339,
/// used only for conditions whose status changes).
pub fn status(
    svc: &Value,
    observed: &[Value],
    presets: &PresetStore,
    now: &str,
) -> LLMInferenceServiceStatus {
    status_grouped(svc, observed, presets, now, &[])
}

/// [`status`] of a service of a `route.group`, given the other services of its namespace
/// (`others`, as [`super::group::resolve`] takes them): with a managed route it also has
/// `status.router.group` and the conditions `GroupReady` (True) and `GroupDegraded` (True,
/// `MemberDivergence`) while members serve other models. Neither gates `Ready`.
pub fn status_grouped(
    svc: &Value,
    observed: &[Value],
    presets: &PresetStore,
    now: &str,
    others: &[Value],
) -> LLMInferenceServiceStatus {
    if super::build::stopped(svc) {
        return stopped_status(svc, presets, now);
    }
    let plan = match Plan::of(svc) {
        Ok(p) => p,
        Err(e) => return invalid_spec(svc, &e.to_string(), now),
    };
    let workloads = WorkloadsStep::of(&plan, observed);
    let router = RouterStep::of(svc, &plan, observed, &workloads);
    let addresses = Addresses::of(svc, &plan, observed, &router);
    let (presets_cond, applied) = presets_condition(svc, presets);
    let ready_cond = ready_condition(&workloads.condition, &router.condition);

    let mut router_status = RouterStatus {
        scheduler: plan.pool_ref().map(|p| ObservedSchedulerStatus {
            inference_pool: Some(ObjectReference {
                group: names::INFERENCE_POOL_GROUP.into(),
                kind: "InferencePool".into(),
                name: p.name,
                namespace: Some(plan.meta.namespace.clone()),
            }),
            service: None,
        }),
        gateways: non_empty(addresses.gateways),
        group: None,
    };
    let mut conds = vec![
        ("Ready", ready_cond),
        ("WorkloadsReady", workloads.condition),
        ("RouterReady", router.condition),
        ("PresetsUpToDate", presets_cond),
    ];
    if let Some(c) = scaling_condition(&plan, observed) {
        conds.push(("ScalingReady", c));
    }
    if router.route.is_some()
        && let Some(g) = super::group::resolve(svc, others)
    {
        conds.push((
            "GroupReady",
            cond(St::True, "Ready", "the group's backends are routed"),
        ));
        if let Some(msg) = super::group::divergence(&g) {
            conds.push(("GroupDegraded", cond(St::True, "MemberDivergence", msg)));
        }
        router_status.group = Some(super::group::status(&g));
    }
    let url = addresses.url;
    let model = svc["spec"]["model"]["name"]
        .as_str()
        .unwrap_or(&plan.meta.name);
    LLMInferenceServiceStatus {
        address: Some(Addressable {
            url: Some(url.clone()),
            ..Default::default()
        }),
        addresses: Some(vec![SourcedAddress {
            address: Addressable {
                url: Some(url.clone()),
                ..Default::default()
            },
            origin: addresses.origin,
            models: Some(vec![ModelAddress { name: model.into() }]),
        }]),
        url: Some(url),
        workloads: Some(workloads.status),
        router: (router_status != RouterStatus::default()).then_some(router_status),
        applied_configs: non_empty(applied),
        ..with_conditions(svc, conds, now)
    }
}

/// A stopped service ([`super::build::STOP_ANNOTATION`]), as KServe: nothing runs, the
/// workload (and router) conditions say `Stopped`.
fn stopped_status(svc: &Value, presets: &PresetStore, now: &str) -> LLMInferenceServiceStatus {
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
                None => router_not_configured(),
            },
        ),
        ("PresetsUpToDate", presets_cond),
    ];
    LLMInferenceServiceStatus {
        applied_configs: non_empty(applied),
        ..with_conditions(svc, conds, now)
    }
}

/// Step 1: the workload objects (`status.workloads`) and `WorkloadsReady`.
struct WorkloadsStep {
    status: WorkloadStatus,
    condition: Cond,
    /// The scheduler Deployment's readiness, when one is built.
    scheduler_ready: Option<bool>,
    /// Why the scheduler is not ready (it gates `RouterReady`, not `WorkloadsReady`).
    scheduler_problems: Vec<String>,
}

/// One workload checked against the live objects.
struct Checked {
    status: ObservedWorkload,
    ready: bool,
    /// `<kind> <name> not found`, when it is not there.
    missing: Option<String>,
    /// Why it is not ready, when it is there.
    not_ready: Option<String>,
}

impl Checked {
    fn of(r: &ChildRef, observed: &[Value]) -> Checked {
        match find(observed, r) {
            None => Checked {
                status: observed_workload(r, None),
                ready: false,
                missing: Some(format!("{} {} not found", r.kind, r.name)),
                not_ready: None,
            },
            Some(o) => {
                let (ready, replicas, msg) = workload_ready(o, r, observed);
                Checked {
                    status: observed_workload(r, Some(replicas)),
                    ready,
                    missing: None,
                    not_ready: (!ready).then_some(msg),
                }
            }
        }
    }
}

impl WorkloadsStep {
    /// The decode and prefill workloads make `WorkloadsReady`: `True` when all are ready,
    /// `Unknown` (`Pending`) while one is not there yet, else `False`
    /// (`MinimumReplicasUnavailable`); the messages name what is missing first.
    fn of(plan: &Plan, observed: &[Value]) -> WorkloadsStep {
        let primary = Checked::of(&plan.decode_ref(), observed);
        let prefill = plan.prefill_ref().map(|r| Checked::of(&r, observed));
        let scheduler = plan.scheduler_ref().map(|r| Checked::of(&r, observed));
        let serving: Vec<&Checked> = std::iter::once(&primary).chain(prefill.as_ref()).collect();
        let messages: Vec<String> = serving
            .iter()
            .filter_map(|c| c.missing.clone())
            .chain(serving.iter().filter_map(|c| c.not_ready.clone()))
            .collect();
        let condition = if serving.iter().all(|c| c.ready) {
            cond(St::True, "Ready", "all workloads are ready")
        } else if serving.iter().any(|c| c.missing.is_some()) {
            cond(St::Unknown, "Pending", messages.join("; "))
        } else {
            cond(St::False, "MinimumReplicasUnavailable", messages.join("; "))
        };
        let scheduler_problems = scheduler
            .iter()
            .flat_map(|c| c.missing.iter().chain(&c.not_ready).cloned())
            .collect();
        WorkloadsStep {
            condition,
            scheduler_ready: scheduler.as_ref().map(|c| c.ready),
            scheduler_problems,
            status: WorkloadStatus {
                primary: Some(primary.status),
                prefill: prefill.map(|c| c.status),
                scheduler: scheduler.map(|c| c.status),
                service: Some(TypedLocalObjectReference {
                    api_group: None,
                    kind: "Service".into(),
                    name: names::workload_service(&plan.meta.name),
                }),
            },
        }
    }
}

/// Step 2: the routes and `RouterReady`.
struct RouterStep {
    /// The managed HTTPRoute, when one is built.
    route: Option<ChildRef>,
    /// The user-managed HTTPRoutes (`router.route.http.refs`), when no route is managed.
    referenced: Vec<ChildRef>,
    condition: Cond,
}

impl RouterStep {
    /// `RouterReady`: `True` (`RouterNotConfigured`) without a scheduler or route; else `True`
    /// when the scheduler is ready and every route accepted, `Unknown` (`Pending`) while a
    /// route is not there or not yet answered (and the scheduler is not failing), else `False`
    /// (`RouterNotReady`). User-managed routes, as KServe's `collectReferencedRoutes` /
    /// `validateHTTPRouteReferences` (router.go, router_validation.go), must exist in the
    /// service's namespace and be accepted by a gateway.
    fn of(svc: &Value, plan: &Plan, observed: &[Value], workloads: &WorkloadsStep) -> RouterStep {
        let ns = &plan.meta.namespace;
        let route = plan.route_ref();
        let referenced: Vec<ChildRef> = if route.is_none() {
            referenced_routes(svc)
                .into_iter()
                .map(|name| ChildRef {
                    api_version: names::HTTP_ROUTE_API_VERSION,
                    kind: "HTTPRoute",
                    name,
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut problems = workloads.scheduler_problems.clone();
        let mut pending = false;
        let routes = referenced
            .iter()
            .map(|r| (r, true))
            .chain(route.iter().map(|r| (r, false)));
        for (r, user_managed) in routes {
            let name = &r.name;
            match find(observed, r).map(route_accepted) {
                None if user_managed => {
                    problems.push(format!("HTTPRoute {ns}/{name} does not exist"))
                }
                None => {
                    pending = true;
                    problems.push(format!("HTTPRoute {name} not found"));
                }
                Some(None) => {
                    pending = true;
                    problems.push(format!("HTTPRoute {name} not yet accepted by a gateway"));
                }
                Some(Some(false)) => {
                    problems.push(format!("HTTPRoute {name} not accepted by a gateway"))
                }
                Some(Some(true)) => {}
            }
        }
        let scheduler = workloads.scheduler_ready;
        let condition = if route.is_none() && referenced.is_empty() && scheduler.is_none() {
            router_not_configured()
        } else if problems.is_empty() {
            cond(St::True, "Ready", "the router is ready")
        } else if pending && scheduler != Some(false) {
            cond(St::Unknown, "Pending", problems.join("; "))
        } else {
            cond(St::False, "RouterNotReady", problems.join("; "))
        };
        RouterStep {
            route,
            referenced,
            condition,
        }
    }
}

/// Step 3: where the service is reached.
struct Addresses {
    /// The route's gateway address when the Gateway is known and has one, else the workload
    /// Service's cluster URL.
    url: String,
    /// The Gateway the URL comes from. Only set for a Gateway (its group is required by the
    /// schema): a status with an empty (core) group was refused by kube-apiserver v1.20 in the
    /// real-cluster test (the value reached validation as null; cause not pinned down).
    origin: Option<ObjectReference>,
    /// Each Gateway a route names, with that route (`status.router.gateways`).
    gateways: Vec<ObservedGateway>,
}

impl Addresses {
    /// From the managed route's spec, else the referenced routes' live specs: every parent
    /// Gateway, and the first one with an address gives the URL (with the path of the route's
    /// first match).
    fn of(svc: &Value, plan: &Plan, observed: &[Value], router: &RouterStep) -> Addresses {
        let ns = &plan.meta.namespace;
        let mut out = Addresses {
            url: format!(
                "http://{}.{ns}.svc.cluster.local:{}",
                names::workload_service(&plan.meta.name),
                super::build::WORKLOAD_PORT
            ),
            origin: None,
            gateways: Vec::new(),
        };
        let managed = router
            .route
            .iter()
            .map(|r| (&r.name, &svc["spec"]["router"]["route"]["http"]["spec"]));
        let referenced = router
            .referenced
            .iter()
            .filter_map(|r| find(observed, r).map(|o| (&r.name, &o["spec"])));
        let gateway = |name: &str, namespace: &str| ObjectReference {
            group: names::GATEWAY_GROUP.into(),
            kind: "Gateway".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
        };
        for (rname, spec) in managed.chain(referenced) {
            for p in spec["parentRefs"].as_array().into_iter().flatten() {
                if p.get("kind").and_then(Value::as_str).unwrap_or("Gateway") != "Gateway" {
                    continue;
                }
                let gname = p["name"].as_str().unwrap_or_default();
                let gns = p["namespace"].as_str().unwrap_or(ns);
                out.gateways.push(ObservedGateway {
                    group: names::GATEWAY_GROUP.into(),
                    kind: "Gateway".into(),
                    name: gname.into(),
                    namespace: Some(gns.into()),
                    listeners: None,
                    http_routes: Some(vec![ObjectReference {
                        group: names::GATEWAY_GROUP.into(),
                        kind: "HTTPRoute".into(),
                        name: rname.clone(),
                        namespace: Some(ns.clone()),
                    }]),
                });
                if out.origin.is_some() {
                    continue;
                }
                let gw = observed.iter().find(|o| {
                    o["kind"] == "Gateway"
                        && o["metadata"]["name"] == gname
                        && o["metadata"]["namespace"] == gns
                });
                if let Some(addr) = gw.and_then(|g| g["status"]["addresses"][0]["value"].as_str()) {
                    let path = spec["rules"][0]["matches"][0]["path"]["value"]
                        .as_str()
                        .unwrap_or("")
                        .trim_end_matches('/');
                    out.url = format!("http://{addr}{path}");
                    out.origin = Some(gateway(gname, gns));
                }
            }
        }
        out
    }
}

/// `Ready`: `True` when workloads and router are; else the first that is not gives the reason
/// (`WorkloadsNotReady` before `RouterNotReady`), its message and its status (`Unknown`
/// stays, anything else is `False`).
fn ready_condition(workloads: &Cond, router: &Cond) -> Cond {
    match (workloads.status, router.status) {
        (St::True, St::True) => cond(St::True, "Ready", "the service is ready"),
        (St::True, s) => cond(s.not_true(), "RouterNotReady", router.message.clone()),
        (s, _) => cond(s.not_true(), "WorkloadsNotReady", workloads.message.clone()),
    }
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
/// the status of that type did not change (else `now`); an empty message is left out.
fn conditions(svc: &Value, conds: Vec<(&str, Cond)>, now: &str) -> Vec<Condition> {
    let old = svc["status"]["conditions"].as_array();
    conds
        .into_iter()
        .map(|(t, c)| {
            let prev = old
                .into_iter()
                .flatten()
                .find(|o| o["type"] == t && o["status"] == c.status.as_str());
            let ltt = prev
                .and_then(|p| p["lastTransitionTime"].as_str())
                .unwrap_or(now);
            Condition {
                type_: t.into(),
                status: c.status.as_str().into(),
                severity: None,
                last_transition_time: Some(ltt.into()),
                reason: Some(c.reason),
                message: (!c.message.is_empty()).then_some(c.message),
            }
        })
        .collect()
}

/// The condition `type_` of a status, for callers and tests.
pub fn condition<'a>(status: &'a LLMInferenceServiceStatus, type_: &str) -> Option<&'a Condition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The tests read the status as the controller writes it: serialised.
    fn json_of(s: LLMInferenceServiceStatus) -> Value {
        serde_json::to_value(s).unwrap()
    }
    fn status(svc: &Value, observed: &[Value], presets: &PresetStore, now: &str) -> Value {
        json_of(super::status(svc, observed, presets, now))
    }
    fn status_grouped(
        svc: &Value,
        observed: &[Value],
        presets: &PresetStore,
        now: &str,
        others: &[Value],
    ) -> Value {
        json_of(super::status_grouped(svc, observed, presets, now, others))
    }
    fn config_not_found(svc: &Value, message: &str, now: &str) -> Value {
        json_of(super::config_not_found(svc, message, now))
    }
    fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
        status["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
    }

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
