//! The children a service gets, through the whole pipeline (shipped presets, mutation,
//! validation, the reconciler's builder): names, routes, scheduler, RBAC, labels as KServe.

use llmisvc::model::children::is_dns1035_label;
use llmisvc::pipeline::Engine;
use llmisvc::reconcile::build::build;
use serde_json::{Value, json};

fn engine() -> Engine {
    Engine::builtin().expect("shipped presets load")
}

fn service(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["model"] = json!({"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"});
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec,
    })
}

/// Mutated (as stored) and validated without errors; the warnings are returned.
fn admit(svc: &Value) -> (Value, Vec<String>) {
    let e = engine();
    let mut m = e.mutate(svc).expect("mutates");
    let out = e.validate(None, &m);
    assert!(out.errors.is_empty(), "refused: {:?}", out.errors);
    m["metadata"]["uid"] = json!("uid-1");
    (m, out.warnings)
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    let v = find(objs, kind);
    assert_eq!(v.len(), 1, "one {kind} expected: {v:?}");
    v[0]
}

fn backends(route: &Value) -> Vec<&Value> {
    route["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
        .collect()
}

const LONG: &str = "customer-support-assistant-llama-31-70b-instruct";

#[test]
fn long_name_gives_valid_children_and_the_route_reaches_the_pool() {
    let svc = service(
        LONG,
        json!({"router": {"gateway": {}, "route": {}, "scheduler": {}}}),
    );
    let (stored, _) = admit(&svc);
    let objs = build(&stored).expect("builds");
    for o in &objs {
        let n = o["metadata"]["name"].as_str().unwrap();
        assert!(is_dns1035_label(n), "{} {n}", o["kind"]);
    }
    // The v1 pool (the v1alpha2 one beside it has the same name), which the route names.
    let pools = find(&objs, "InferencePool");
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0]["metadata"]["name"], pools[1]["metadata"]["name"]);
    let pool = pools
        .into_iter()
        .find(|p| p["apiVersion"] == "inference.networking.k8s.io/v1")
        .unwrap();
    let pool_name = pool["metadata"]["name"].as_str().unwrap();
    let route = one(&objs, "HTTPRoute");
    let to_pools: Vec<_> = backends(route)
        .into_iter()
        .filter(|b| b["kind"] == "InferencePool")
        .collect();
    assert!(!to_pools.is_empty());
    for b in to_pools {
        assert_eq!(b["name"], pool_name);
    }
    // The pool's endpoint picker is the scheduler's Service, the scheduler serves the pool.
    let services: Vec<&str> = find(&objs, "Service")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(services.contains(&pool["spec"]["endpointPickerRef"]["name"].as_str().unwrap()));
    for b in backends(route)
        .into_iter()
        .filter(|b| b["kind"] == "Service")
    {
        assert!(services.contains(&b["name"].as_str().unwrap()), "{b}");
    }
    let sched = find(&objs, "Deployment")
        .into_iter()
        .find(|d| {
            d["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-router-scheduler")
        })
        .expect("scheduler");
    let args = &sched["spec"]["template"]["spec"]["containers"][0]["args"];
    let i = args
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a == "--pool-name")
        .unwrap();
    assert_eq!(args[i + 1], pool_name);
}

#[test]
fn dotted_name_is_refused_on_metadata_name() {
    let e = engine();
    let svc = service("llama-3.2-3b-instruct", json!({}));
    let m = e.mutate(&svc).unwrap();
    let out = e.validate(None, &m);
    assert!(
        out.errors.iter().any(|e| e.field == "metadata.name"),
        "{:?}",
        out.errors
    );
}

#[test]
fn route_without_scheduler_goes_to_the_workload_service() {
    let svc = service("m", json!({"router": {"route": {}}}));
    let (stored, _) = admit(&svc);
    let objs = build(&stored).unwrap();
    assert!(find(&objs, "InferencePool").is_empty());
    let route = one(&objs, "HTTPRoute");
    let b = backends(route);
    assert!(!b.is_empty());
    for b in b {
        assert_eq!(b["kind"], "Service", "{b}");
        assert_eq!(b["name"], "m-kserve-workload-svc");
    }
    one(&objs, "Service");
}

#[test]
fn route_with_a_pool_ref_goes_to_the_referenced_pool() {
    let svc = service(
        "m",
        json!({"router": {"route": {}, "scheduler": {"pool": {"ref": {"name": "shared-pool"}}}}}),
    );
    let (stored, _) = admit(&svc);
    let objs = build(&stored).unwrap();
    assert!(find(&objs, "InferencePool").is_empty());
    let route = one(&objs, "HTTPRoute");
    let pools: Vec<_> = backends(route)
        .into_iter()
        .filter(|b| b["kind"] == "InferencePool")
        .collect();
    assert!(!pools.is_empty());
    for b in pools {
        assert_eq!(b["name"], "shared-pool");
    }
}

#[test]
fn gateway_refs_replace_the_presets_parent_refs() {
    let svc = service(
        "m",
        json!({"router": {"gateway": {"refs": [{"name": "team-gateway", "namespace": "gateway-system"}]}, "route": {}}}),
    );
    let (stored, warnings) = admit(&svc);
    assert_eq!(
        stored["spec"]["router"]["route"]["http"]["spec"]["parentRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "team-gateway", "namespace": "gateway-system"}])
    );
    assert!(
        !warnings.iter().any(|w| w.contains("parentRefs")),
        "the user wrote no parentRefs: {warnings:?}"
    );
    // Idempotent: the stored object admitted again is unchanged.
    let mut again = stored.clone();
    again["metadata"].as_object_mut().unwrap().remove("uid");
    let (twice, _) = admit(&again);
    assert_eq!(twice, stored);
}

#[test]
fn a_users_config_ref_drops_the_presets_inline_config() {
    let svc = service(
        "m",
        json!({"router": {"route": {}, "scheduler": {"config": {"ref": {"name": "epp-cm", "key": "epp.yaml"}}}}}),
    );
    let (stored, _) = admit(&svc);
    let c = &stored["spec"]["router"]["scheduler"]["config"];
    assert!(c.get("inline").is_none(), "{c}");
    assert_eq!(c["ref"]["name"], "epp-cm");
}

/// As KServe, a prefill/decode service's default scheduler config is the P/D disaggregation
/// profile; a single-pool service keeps the single profile; a user's config is kept.
#[test]
fn prefill_decode_scheduler_uses_the_pd_profile() {
    let pd = json!({"prefill": {"replicas": 1}, "router": {"route": {}, "scheduler": {}}});
    let (stored, _) = admit(&service("m", pd.clone()));
    let inline = &stored["spec"]["router"]["scheduler"]["config"]["inline"];
    let types: Vec<&str> = inline["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"pd-profile-handler"), "{types:?}");
    let profiles: Vec<&str> = inline["schedulingProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["prefill", "decode"]);
    let objs = build(&stored).unwrap();
    let sched = find(&objs, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "m-kserve-router-scheduler")
        .unwrap();
    let args = sched["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("pd-profile-handler"), "{args}");

    let (single, _) = admit(&service(
        "m",
        json!({"router": {"route": {}, "scheduler": {}}}),
    ));
    let inline = &single["spec"]["router"]["scheduler"]["config"]["inline"];
    assert_eq!(inline["plugins"][0]["type"], "single-profile-handler");

    let mut own = pd;
    own["router"]["scheduler"]["config"] =
        json!({"inline": {"kind": "EndpointPickerConfig", "plugins": [{"type": "mine"}]}});
    let (stored, _) = admit(&service("m", own));
    assert_eq!(
        stored["spec"]["router"]["scheduler"]["config"]["inline"]["plugins"][0]["type"],
        "mine"
    );
}
