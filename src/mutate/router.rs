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

use super::json::{self, Obj, Path};
use super::{Ctx, MutateConfig, MutateError, podspec};
use crate::names;

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    let Some(name) = ctx.name.clone() else {
        return Ok(());
    };
    let spec = podspec::spec_mut(obj)?;
    let Some(router) = json::child_mut(spec, "router", &Path::Lit("spec"))? else {
        return Ok(());
    };
    let rp = Path::Lit("spec.router");
    if let Some(gw) = json::child_mut(router, "gateway", &rp)? {
        let (ns, n) = &cfg.default_gateway;
        json::set_default_with(gw, "refs", || json!([{ "name": n, "namespace": ns }]));
    }
    let has_scheduler = json::has(router, "scheduler");
    if let Some(sched) = json::child_mut(router, "scheduler", &rp)? {
        let sp = rp.key("scheduler");
        let pool = json::ensure_obj(sched, "pool", &sp)?;
        if !json::has(pool, "ref") {
            let ps = json::ensure_obj(pool, "spec", &sp.key("pool"))?;
            fill_pool(ps, &name, ctx.v1alpha1, cfg)?;
        }
    }
    let parents = parent_refs(router, cfg)?;
    if let Some(route) = json::child_mut(router, "route", &rp)? {
        let routep = rp.key("route");
        let http = json::ensure_obj(route, "http", &routep)?;
        if !json::has(http, "refs") {
            let rs = json::ensure_obj(http, "spec", &routep.key("http"))?;
            json::set_default(rs, "parentRefs", Value::Array(parents));
            json::set_default_with(rs, "rules", || {
                let backend = if has_scheduler {
                    json!({ "group": "inference.networking.k8s.io", "kind": "InferencePool", "name": names::pool(&name), "port": cfg.vllm_port })
                } else {
                    json!({ "group": "", "kind": "Service", "name": names::workload_service(&name), "port": cfg.vllm_port })
                };
                json!([{
                    "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                    "backendRefs": [backend],
                    "timeouts": { "request": "0s", "backendRequest": "0s" },
                }])
            });
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
    const P: Path<'static> = Path::Lit("spec.router.scheduler.pool.spec");
    let labels = || json!({ "app.kubernetes.io/name": name, "kserve.io/component": "workload" });
    let epp = || json!(names::epp_service(name));
    if v1alpha1 {
        json::set_default_with(ps, "selector", labels);
        json::set_default_with(ps, "targetPortNumber", || json!(cfg.vllm_port));
        let ext = json::ensure_obj(ps, "extensionRef", &P)?;
        json::set_default_with(ext, "name", epp);
        json::set_default_with(ext, "portNumber", || json!(cfg.epp_port));
        json::set_default_with(ext, "failureMode", || json!("FailOpen"));
    } else {
        let sel = json::ensure_obj(ps, "selector", &P)?;
        json::set_default_with(sel, "matchLabels", labels);
        json::set_default_with(ps, "targetPorts", || json!([{ "number": cfg.vllm_port }]));
        let epr = json::ensure_obj(ps, "endpointPickerRef", &P)?;
        json::set_default_with(epr, "name", epp);
        json::set_default_with(epr, "port", || json!({ "number": cfg.epp_port }));
        json::set_default_with(epr, "failureMode", || json!("FailOpen"));
    }
    Ok(())
}

fn parent_refs(router: &Obj, cfg: &MutateConfig) -> Result<Vec<Value>, MutateError> {
    let mut out = Vec::new();
    let rp = Path::Lit("spec.router");
    if let Some(gw) = json::child(router, "gateway", &rp)?
        && let Some(refs) = json::get_arr(gw, "refs", &rp.key("gateway"))?
    {
        let refs_path = Path::Lit("spec.router.gateway.refs");
        for (i, r) in refs.iter().enumerate() {
            let p = refs_path.idx(i);
            let r = json::as_obj(r, &p)?;
            let mut pr = json::Obj::new();
            pr.insert("group".into(), json!("gateway.networking.k8s.io"));
            pr.insert("kind".into(), json!("Gateway"));
            for key in ["name", "namespace", "sectionName"] {
                if let Some(v) = json::get_str(r, key, &p)? {
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
