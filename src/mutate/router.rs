//! Step 7: router wiring (only when `spec.router` is set).
//!
//! - `gateway: {}` (no `refs`) gets `refs: [{name, namespace}]` of `cfg.default_gateway`.
//! - `scheduler` without `pool.ref` gets `pool.spec`, missing fields filled: v1alpha2
//!   `selector.matchLabels` (`app.kubernetes.io/name: <name>`, `kserve.io/component:
//!   workload`), `targetPorts: [{number: 8000}]`, `endpointPickerRef {name: <name>-epp-service,
//!   port: {number: 9002}, failureMode: FailOpen}`; v1alpha1 `selector`, `targetPortNumber`,
//!   `extensionRef {name, portNumber, failureMode}`.
//! - `route` without `http.refs` gets `http.spec` (missing `parentRefs` and `rules` filled):
//!   parentRefs from the gateway refs (the default gateway without any), one rule matching
//!   PathPrefix `/` with a backendRef to the InferencePool `<name>-inference-pool` (with a
//!   scheduler) or the Service `<name>-kserve-workload-svc` (without), port 8000, and timeouts
//!   `0s` (no timeout: generation can take minutes).

use serde_json::{Value, json};

use super::json::{self, Obj};
use super::{Ctx, MutateConfig, MutateError, podspec};

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    let Some(name) = ctx.name.clone() else {
        return Ok(());
    };
    let spec = podspec::spec_mut(obj)?;
    let Some(router) = json::child_mut(spec, "router", "spec.router")? else {
        return Ok(());
    };
    if let Some(gw) = json::child_mut(router, "gateway", "spec.router.gateway")? {
        let (ns, n) = &cfg.default_gateway;
        json::set_default(gw, "refs", json!([{ "name": n, "namespace": ns }]));
    }
    let has_scheduler = json::has(router, "scheduler");
    if let Some(sched) = json::child_mut(router, "scheduler", "spec.router.scheduler")? {
        let pool = json::ensure_obj(sched, "pool", "spec.router.scheduler.pool")?;
        if !json::has(pool, "ref") {
            let ps = json::ensure_obj(pool, "spec", "spec.router.scheduler.pool.spec")?;
            fill_pool(ps, &name, ctx.v1alpha1, cfg)?;
        }
    }
    let parents = parent_refs(router, cfg)?;
    if let Some(route) = json::child_mut(router, "route", "spec.router.route")? {
        let http = json::ensure_obj(route, "http", "spec.router.route.http")?;
        if !json::has(http, "refs") {
            let rs = json::ensure_obj(http, "spec", "spec.router.route.http.spec")?;
            json::set_default(rs, "parentRefs", Value::Array(parents));
            let backend = if has_scheduler {
                json!({ "group": "inference.networking.k8s.io", "kind": "InferencePool", "name": format!("{name}-inference-pool"), "port": cfg.vllm_port })
            } else {
                json!({ "group": "", "kind": "Service", "name": format!("{name}-kserve-workload-svc"), "port": cfg.vllm_port })
            };
            json::set_default(
                rs,
                "rules",
                json!([{
                    "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                    "backendRefs": [backend],
                    "timeouts": { "request": "0s", "backendRequest": "0s" },
                }]),
            );
        }
    }
    Ok(())
}

fn fill_pool(
    ps: &mut Obj,
    name: &str,
    v1alpha1: bool,
    cfg: &MutateConfig,
) -> Result<(), MutateError> {
    const P: &str = "spec.router.scheduler.pool.spec";
    let labels = json!({ "app.kubernetes.io/name": name, "kserve.io/component": "workload" });
    let epp = format!("{name}-epp-service");
    if v1alpha1 {
        json::set_default(ps, "selector", labels);
        json::set_default(ps, "targetPortNumber", json!(cfg.vllm_port));
        let ext = json::ensure_obj(ps, "extensionRef", &format!("{P}.extensionRef"))?;
        json::set_default(ext, "name", json!(epp));
        json::set_default(ext, "portNumber", json!(cfg.epp_port));
        json::set_default(ext, "failureMode", json!("FailOpen"));
    } else {
        let sel = json::ensure_obj(ps, "selector", &format!("{P}.selector"))?;
        json::set_default(sel, "matchLabels", labels);
        json::set_default(ps, "targetPorts", json!([{ "number": cfg.vllm_port }]));
        let epr = json::ensure_obj(ps, "endpointPickerRef", &format!("{P}.endpointPickerRef"))?;
        json::set_default(epr, "name", json!(epp));
        json::set_default(epr, "port", json!({ "number": cfg.epp_port }));
        json::set_default(epr, "failureMode", json!("FailOpen"));
    }
    Ok(())
}

fn parent_refs(router: &Obj, cfg: &MutateConfig) -> Result<Vec<Value>, MutateError> {
    let mut out = Vec::new();
    if let Some(gw) = json::child(router, "gateway", "spec.router.gateway")?
        && let Some(refs) = json::get_arr(gw, "refs", "spec.router.gateway.refs")?
    {
        for (i, r) in refs.iter().enumerate() {
            let p = format!("spec.router.gateway.refs[{i}]");
            let r = json::as_obj(r, &p)?;
            let mut pr = json::Obj::new();
            pr.insert("group".into(), json!("gateway.networking.k8s.io"));
            pr.insert("kind".into(), json!("Gateway"));
            for key in ["name", "namespace", "sectionName"] {
                if let Some(v) = json::get_str(r, key, &format!("{p}.{key}"))? {
                    pr.insert(key.into(), json!(v));
                }
            }
            out.push(Value::Object(pr));
        }
    }
    if out.is_empty() {
        let (ns, n) = &cfg.default_gateway;
        out.push(json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": n, "namespace": ns }));
    }
    Ok(out)
}
