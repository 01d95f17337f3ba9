//! Step 7: router wiring (only when `spec.router` is set), on the spec the presets were merged
//! into. Names come from [`crate::model::children`] (KServe's `ChildName` rule).
//!
//! - `gateway: {}` (no `refs`) gets `refs: [{name, namespace}]` of `cfg.default_gateway`.
//! - `scheduler` without `pool.ref` gets `pool.spec`, missing fields filled: v1alpha2
//!   `selector.matchLabels` (KServe's workload selector: `app.kubernetes.io/part-of:
//!   llminferenceservice`, `app.kubernetes.io/name: <name>`, `kserve.io/component: workload`),
//!   `targetPorts: [{number: 8000}]`, `endpointPickerRef {name: <name>-epp-service, port:
//!   {number: 9002}, failureMode: FailOpen}`; v1alpha1 `selector`, `targetPortNumber`,
//!   `extensionRef {name, portNumber, failureMode}`.
//! - `route` without `http.refs` gets `http.spec`, as KServe derives it after the merge:
//!   - `parentRefs`: with `gateway.refs`, always the gateways they name (a preset's default
//!     gateway is replaced); without, the default gateway when none are set;
//!   - `rules` when absent: one rule matching PathPrefix `/` to the InferencePool
//!     `<name>-inference-pool`, port 8000, timeouts `0s` (generation can take minutes);
//!   - every backendRef to the service's own InferencePool then goes, without a scheduler, to
//!     the workload Service `<name>-kserve-workload-svc` (the pool is never created), and with
//!     `scheduler.pool.ref` to the referenced pool.

use serde_json::{Value, json};

use super::{Ctx, MutateConfig, MutateError, podspec};
use crate::model::children as names;
use crate::model::json::{self, Obj, Path};
use crate::model::view::{Part, RouterView, Version};

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    let Some(name) = ctx.view.name.clone() else {
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
    let has_scheduler = RouterView::read(router).scheduler.present();
    if let Some(sched) = json::child_mut(router, "scheduler", &rp)? {
        let sp = rp.key("scheduler");
        let pool = json::ensure_obj(sched, "pool", &sp)?;
        if !json::has(pool, "ref") {
            let ps = json::ensure_obj(pool, "spec", &sp.key("pool"))?;
            fill_pool(ps, &name, ctx.view.version == Version::V1alpha1, cfg)?;
        }
    }
    // The shape after the gateway default above.
    let shape = RouterView::read(router);
    let gateway_refs = shape.gateway == Part::Refs;
    let parents = parent_refs(router, cfg)?;
    let pool_ref = shape.pool_ref;
    if let Some(route) = json::child_mut(router, "route", &rp)? {
        let routep = rp.key("route");
        let http = json::ensure_obj(route, "http", &routep)?;
        if !json::has(http, "refs") {
            let rs = json::ensure_obj(http, "spec", &routep.key("http"))?;
            // As KServe: the gateway refs (merged) decide the managed route's parents, over a
            // preset's default gateway.
            if gateway_refs {
                rs.insert("parentRefs".into(), Value::Array(parents));
            } else {
                json::set_default(rs, "parentRefs", Value::Array(parents));
            }
            json::set_default_with(rs, "rules", || {
                json!([{
                    "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                    "backendRefs": [{ "group": "inference.networking.k8s.io", "kind": "InferencePool", "name": names::pool(&name), "port": cfg.vllm_port }],
                    "timeouts": { "request": "0s", "backendRequest": "0s" },
                }])
            });
            retarget_default_backends(rs, &name, has_scheduler, pool_ref.as_deref())?;
        }
    }
    Ok(())
}

/// KServe's backend rewrite of the managed route: every backendRef to the service's own
/// InferencePool (kind `InferencePool`, name `ChildName(<name>, "-inference-pool")`, any group)
/// goes to the workload Service when there is no scheduler (that pool is never created), or to
/// the referenced pool with `scheduler.pool.ref`. Other backendRefs are the user's and stay.
fn retarget_default_backends(
    rs: &mut Obj,
    name: &str,
    has_scheduler: bool,
    pool_ref: Option<&str>,
) -> Result<(), MutateError> {
    if has_scheduler && pool_ref.is_none() {
        return Ok(());
    }
    let own_pool = names::pool(name);
    let rules_path = Path::Lit("spec.router.route.http.spec.rules");
    let Some(rules) = json::get_mut(rs, "rules") else {
        return Ok(());
    };
    let rules = match rules {
        Value::Array(r) => r,
        Value::Null => return Ok(()),
        other => return Err(json::wrong(&rules_path, json::LIST, other).into()),
    };
    for (i, rule) in rules.iter_mut().enumerate() {
        let rule_path = rules_path.idx(i);
        let rule = json::as_obj_mut(rule, &rule_path)?;
        let Some(Value::Array(backends)) = json::get_mut(rule, "backendRefs") else {
            continue;
        };
        for b in backends.iter_mut() {
            let Value::Object(b) = b else { continue };
            let is_default = b.get("kind").and_then(Value::as_str) == Some("InferencePool")
                && b.get("name").and_then(Value::as_str) == Some(own_pool.as_str());
            if !is_default {
                continue;
            }
            match pool_ref {
                Some(r) if has_scheduler => {
                    b.insert("name".into(), json!(r));
                }
                _ => {
                    b.insert("group".into(), json!(""));
                    b.insert("kind".into(), json!("Service"));
                    b.insert("name".into(), json!(names::workload_service(name)));
                }
            }
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
    let labels = || {
        json!({
            "app.kubernetes.io/part-of": "llminferenceservice",
            "app.kubernetes.io/name": name,
            "kserve.io/component": "workload",
        })
    };
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
