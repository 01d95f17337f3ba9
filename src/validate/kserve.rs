//! The rules KServe's own webhook enforces (scaling, routing, scheduler, LoRA, KV cache
//! offloading, rollout, model URI, config presets), rewritten over JSON with hints.

use serde_json::Value;

use super::json::{Obj, Sink, index};

/// `replicas`/`scaling` of one workload (`spec` or `spec.prefill`).
pub fn check_scaling(w: &Obj, s: &mut Sink) {
    if let Some(r) = w.int("replicas", s)
        && r < 0
    {
        s.invalid_int(
            w.path_of("replicas"),
            r,
            "replicas must be greater than or equal to 0",
        );
    }
    let sc = w.obj("scaling", s);
    if !sc.present() {
        return;
    }
    if w.has("replicas") {
        s.forbidden(
            &sc.path,
            "scaling and replicas are mutually exclusive; remove replicas to autoscale, or remove scaling for a fixed number of replicas",
        );
    }
    let min = sc.int("minReplicas", s);
    let max = sc.int("maxReplicas", s);
    if let Some(m) = min
        && m < 0
    {
        s.invalid_int(
            sc.path_of("minReplicas"),
            m,
            "minReplicas must be greater than or equal to 0",
        );
    }
    match max {
        None if !sc.has("maxReplicas") => s.required(
            sc.path_of("maxReplicas"),
            "maxReplicas is required when scaling is set",
        ),
        Some(m) if m < 1 => s.invalid_int(
            sc.path_of("maxReplicas"),
            m,
            "maxReplicas must be at least 1",
        ),
        _ => {}
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        s.invalid_int(
            sc.path_of("minReplicas"),
            lo,
            format!("minReplicas ({lo}) cannot exceed maxReplicas ({hi}); lower minReplicas or raise maxReplicas"),
        );
    }
    let wva = sc.obj("wva", s);
    let keda = sc.obj("keda", s);
    match (wva.present(), keda.present()) {
        (true, true) => {
            s.forbidden(
                &sc.path,
                "wva and keda are mutually exclusive; choose one scaling mechanism",
            );
            return;
        }
        (false, false) => {
            s.required(
                &sc.path,
                "exactly one of scaling.wva or scaling.keda must be set",
            );
            return;
        }
        _ => {}
    }
    if keda.present() {
        match keda.list("triggers", s) {
            Some(t) if !t.is_empty() => {}
            Some(_) | None => s.required(
                keda.path_of("triggers"),
                "at least one KEDA trigger is required with scaling.keda",
            ),
        }
        check_keda(&keda, min, &sc, false, s);
    } else {
        let hpa = wva.obj("hpa", s);
        let wkeda = wva.obj("keda", s);
        s.exactly_one(
            &wva.path,
            [hpa.present(), wkeda.present()],
            "hpa and keda are mutually exclusive; choose one actuator backend",
            "either wva.hpa or wva.keda must be set as the actuator backend",
        );
        if let Some(cost) = wva.str("variantCost", s)
            && !cost.is_empty()
            && !is_decimal(cost)
        {
            s.invalid_str(
                wva.path_of("variantCost"),
                cost,
                "variantCost must be a non-negative decimal string such as \"10\" or \"0.5\"",
            );
        }
        if wkeda.present() {
            check_keda(&wkeda, min, &sc, true, s);
        }
    }
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn check_keda(keda: &Obj, min: Option<i64>, sc: &Obj, under_wva: bool, s: &mut Sink) {
    if let Some(idle) = keda.int("idleReplicaCount", s) {
        match min {
            None => s.required(
                sc.path_of("minReplicas"),
                format!("minReplicas is required when idleReplicaCount is set; idleReplicaCount ({idle}) must be less than minReplicas"),
            ),
            Some(m) if idle >= m => s.invalid_int(
                keda.path_of("idleReplicaCount"),
                idle,
                format!("idleReplicaCount ({idle}) must be less than minReplicas ({m}); it is the replica count when no trigger is active"),
            ),
            _ => {}
        }
    }
    let adv = keda.obj("advanced", s);
    let hpa = adv.obj("horizontalPodAutoscalerConfig", s);
    if hpa.str("name", s).is_some_and(|n| !n.is_empty()) {
        s.forbidden(hpa.path_of("name"), "horizontalPodAutoscalerConfig.name must not be set; the controller manages the HPA name");
    }
    if under_wva {
        let sm = adv.obj("scalingModifiers", s);
        if sm
            .map
            .is_some_and(|m| m.values().any(|v| !v.is_null() && v != ""))
        {
            s.forbidden(&sm.path, "scalingModifiers must not be set with wva; WVA controls the scaling metric formula");
        }
    }
}

/// The router: route refs/spec, gateway, scheduler. A service is validated after the mutating
/// webhook wrote the route's parentRefs from the gateway refs, so only a preset (`is_config`,
/// validated as written) is warned about parentRefs that repeat them.
pub fn check_router(spec: &Obj, is_config: bool, s: &mut Sink) {
    let router = spec.obj("router", s);
    let route = router.obj("route", s);
    let gateway = router.obj("gateway", s);
    let http = route.obj("http", s);
    let route_refs = http.list("refs", s).map(|l| l.len()).unwrap_or(0);
    let gw_refs = gateway.objs("refs", s);
    let inline = http.obj("spec", s);
    if route_refs > 0 && inline.present() {
        s.forbidden(
            &http.path,
            format!(
                "custom HTTPRoute refs ({}) and an inline route spec ({}) are exclusive; choose one",
                http.path_of("refs"),
                http.path_of("spec")
            ),
        );
    }
    check_refs_with_managed_gateway(&router, s);
    let parents = inline.objs("parentRefs", s);
    if !parents.is_empty() && !gw_refs.is_empty() {
        let key = |o: &Obj, s: &mut Sink| {
            (
                o.str("namespace", s).unwrap_or("").to_string(),
                o.str("name", s).unwrap_or("").to_string(),
                o.str("sectionName", s).unwrap_or("").to_string(),
            )
        };
        let mut p: Vec<_> = parents.iter().map(|(_, o)| key(o, s)).collect();
        let mut g: Vec<_> = gw_refs.iter().map(|(_, o)| key(o, s)).collect();
        p.sort();
        g.sort();
        if p == g {
            if is_config {
                s.warn(format!(
                "{}: parentRefs only repeat {}; they can be omitted, the route's parents are derived from the gateway refs",
                    inline.path_of("parentRefs"),
                    gateway.path_of("refs")
                ));
            }
        } else {
            s.forbidden(
                inline.path_of("parentRefs"),
                format!(
                    "the inline route's parentRefs conflict with {}; remove parentRefs (they are derived from the gateway refs) or make them match",
                    gateway.path_of("refs")
                ),
            );
        }
    }
    check_traffic_splitting(&router, route_refs, s);

    let sched = router.obj("scheduler", s);
    if let Some(r) = sched.int("replicas", s)
        && r <= 0
    {
        s.invalid_int(
            sched.path_of("replicas"),
            r,
            "scheduler replicas must be greater than 0",
        );
    }
    check_scheduler_config(&sched, s);
}

/// KServe's `validateTrafficFields`: `route.group` / `route.weight` split traffic between
/// services through the HTTPRoutes the controller manages, so they need each other, Gateway API
/// routing (not `router.ingress`) and a managed route (not `route.http.refs`).
fn check_traffic_splitting(router: &Obj, route_refs: usize, s: &mut Sink) {
    let route = router.obj("route", s);
    let group = route.str("group", s);
    let weight = route.int("weight", s);
    // As KServe: present means set, even to "" or 0.
    let has_group = group.is_some() || route.has("group");
    let has_weight = weight.is_some() || route.has("weight");
    if !has_group && !has_weight {
        return;
    }
    if router.has("ingress") {
        s.invalid_str(
            route.path_of("group"),
            group.unwrap_or(""),
            format!(
                "traffic splitting requires Gateway API routing; the controller manages HTTPRoutes, not Ingress resources: remove {} or route.group/route.weight",
                router.path_of("ingress")
            ),
        );
        return;
    }
    if has_weight && !has_group {
        s.required(route.path_of("group"), "weight requires group");
    }
    if has_group && !has_weight {
        s.required(route.path_of("weight"), "group requires weight");
    }
    if has_group != has_weight {
        return;
    }
    if let Some(g) = group
        && route_refs > 0
    {
        s.invalid_str(
            route.path_of("group"),
            g,
            "traffic splitting cannot be used with custom HTTPRoute refs; use a managed route (route.http.spec or route.http: {})",
        );
    }
}

/// KServe's rule: user-defined routes (`route.http.refs`) cannot be used with a managed
/// gateway (`gateway` set without `refs`).
fn check_refs_with_managed_gateway(router: &Obj, s: &mut Sink) {
    let mut quiet = Sink::default();
    let gateway = router.obj("gateway", &mut quiet);
    let http = router.obj("route", &mut quiet).obj("http", &mut quiet);
    let route_refs = http.list("refs", &mut quiet).map_or(0, Vec::len);
    let gw_refs = gateway.list("refs", &mut quiet).map_or(0, Vec::len);
    if route_refs > 0 && gateway.present() && gw_refs == 0 {
        s.forbidden(
            http.path_of("refs"),
            format!(
                "custom HTTPRoutes cannot be used with a managed gateway ({}); remove {} or set {}",
                gateway.path,
                http.path_of("refs"),
                gateway.path_of("refs")
            ),
        );
    }
}

/// KServe's `validateSchedulerConfig` on `scheduler.config`: exactly one of `inline` / `ref`,
/// a non-empty inline configuration, a named ConfigMap.
fn check_scheduler_config(sched: &Obj, s: &mut Sink) {
    let conf = sched.obj("config", s);
    if !conf.present() {
        return;
    }
    let inline = conf.obj("inline", s);
    let reference = conf.obj("ref", s);
    s.exactly_one(
        &conf.path,
        [inline.present(), reference.present()],
        "config.inline and config.ref are exclusive; set one",
        "either config.inline (an EndpointPickerConfig) or config.ref (a ConfigMap key holding one) is required; remove config to use the default scheduler configuration",
    );
    if inline.map.is_some_and(|m| m.is_empty()) {
        s.invalid(
            &inline.path,
            &Value::Object(Default::default()),
            "inline configuration is invalid: it is empty; give an EndpointPickerConfig (apiVersion, kind, plugins, schedulingProfiles) or remove config to use the default",
        );
    }
    if reference.present() && reference.str("name", s).unwrap_or("").is_empty() {
        s.required(reference.path_of("name"), "the ConfigMap name is required");
    }
    if reference.present() && reference.str("key", s).unwrap_or("").is_empty() {
        s.required(reference.path_of("key"), "the ConfigMap key is required");
    }
}

/// KServe's rules that see the service as the user wrote it: its webhook validates the object
/// before presets are merged (that happens in its controller), while llmisvc's validating
/// webhook sees the expanded object, where a preset can fill an empty scheduler `config` and
/// the router step fills a managed gateway's `refs`. Run by `/mutate` before expansion.
pub fn check_as_written(obj: &Value, s: &mut Sink) {
    // KServe renders the merged spec, the user's own strings included, as one Go template
    // (`config_merge.go`, `ReplaceVariables`); the mutating webhook renders them in place.
    if let Some(spec) = obj.get("spec") {
        for (field, value, e) in crate::presets::user_template_errors(spec) {
            s.err(
                super::ErrorKind::Invalid,
                field,
                value.map(|v| super::json::render(&Value::String(v))),
                format!(
                    "{e}: strings of the spec are rendered as Go templates, as KServe renders them ({{{{ .ObjectMeta.Name }}}}, {{{{ ChildName .ObjectMeta.Name `-epp-service` }}}})"
                ),
            );
        }
    }
    let mut quiet = Sink::default();
    let top = Obj {
        map: obj.as_object(),
        path: String::new(),
    };
    let router = top.obj("spec", &mut quiet).obj("router", &mut quiet);
    if !router.present() {
        return;
    }
    check_refs_with_managed_gateway(&router, s);
    let sched = router.obj("scheduler", &mut quiet);
    // Only the config rules: the type errors are reported by validation, on the result.
    let mut conf = Sink::default();
    check_scheduler_config(&sched, &mut conf);
    s.errors.extend(conf.errors);
}

/// `spec.model`: URI and LoRA.
pub fn check_model(spec: &Obj, meta_name: &str, is_config: bool, s: &mut Sink) {
    let model = spec.obj("model", s);
    match model.str("uri", s) {
        Some(uri) => check_uri(&model.path_of("uri"), uri, s),
        None if !is_config && !model.has("uri") && !spec.has("baseRefs") => {
            s.required(model.path_of("uri"), "the model URI is required (hf://org/model, pvc://claim/path, oci://image, s3://bucket/path, ...)")
        }
        None => {}
    }
    check_confidential(&model, s);
    let base = model
        .str("name", s)
        .filter(|n| !n.is_empty())
        .unwrap_or(meta_name);
    let lora = model.obj("lora", s);
    for k in ["maxRank", "maxAdapters", "maxCpuAdapters"] {
        if let Some(v) = lora.int(k, s)
            && v < 1
        {
            s.invalid_int(lora.path_of(k), v, format!("{k} must be at least 1"));
        }
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, a) in lora.objs("adapters", s) {
        let npath = a.path_of("name");
        if let Some(uri) = a.str("uri", s) {
            check_uri(&a.path_of("uri"), uri, s);
        }
        let Some(name) = a.str("name", s).filter(|n| !n.is_empty()) else {
            if !a.has("name") {
                s.required(
                    npath,
                    "every adapter needs a name (the model name clients request)",
                );
            }
            continue;
        };
        if name == "." || name == ".." || name.contains('/') {
            s.invalid_str(
                &npath,
                name,
                "adapter name must not be \".\" or \"..\" or contain \"/\" (path traversal)",
            );
            continue;
        }
        if let Some((_, j)) = seen.iter().find(|(n, _)| n == name) {
            s.err(
                super::ErrorKind::Duplicate,
                &npath,
                Some(Value::String(name.into()).to_string()),
                format!(
                    "duplicate adapter name (same as {}); give every adapter a unique name",
                    index(&lora.path_of("adapters"), *j)
                ),
            );
        } else {
            seen.push((name.to_string(), i));
        }
        if name == base {
            s.invalid_str(
                &npath,
                name,
                format!("adapter name must differ from the base model name {base:?} (model.name, or metadata.name when absent); rename the adapter"),
            );
        }
    }
}

/// Model URI: scheme and a well-formed remainder.
pub fn check_uri(path: &str, uri: &str, s: &mut Sink) {
    const SCHEMES: &[&str] = &["hf", "pvc", "oci", "oci+native", "s3", "gs", "https"];
    let Some((scheme, rest)) = uri.split_once("://") else {
        s.invalid_str(
            path,
            uri,
            format!(
                "the model URI needs a scheme, one of {}; e.g. hf://org/model",
                SCHEMES.join(", ")
            ),
        );
        return;
    };
    if !SCHEMES.contains(&scheme) {
        s.err(
            super::ErrorKind::NotSupported,
            path,
            Some(Value::String(uri.into()).to_string()),
            format!(
                "unsupported model URI scheme {scheme:?}; supported: {}",
                SCHEMES.join(", ")
            ),
        );
        return;
    }
    let bad = |s: &mut Sink, why: &str| s.invalid_str(path, uri, why.to_string());
    match scheme {
        "hf" => {
            // KServe's admission takes any hf:// URI; Hugging Face ids come with or without an
            // organisation (`gpt2`, `bert-base-uncased` are canonical ids).
            let (repo, rev) = match rest.split_once(':') {
                Some((r, v)) => (r, Some(v)),
                None => (rest, None),
            };
            let parts: Vec<&str> = repo.split('/').collect();
            let ok_part = |p: &str| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if !(1..=2).contains(&parts.len()) || !parts.iter().all(|p| ok_part(p)) {
                bad(
                    s,
                    "a Hugging Face URI is hf://[<org>/]<model>[:<revision>], e.g. hf://meta-llama/Llama-3.1-8B-Instruct or hf://gpt2",
                );
            } else if rev.is_some_and(|r| r.is_empty() || r.contains('/')) {
                bad(
                    s,
                    "the revision after \":\" must be a non-empty branch, tag or commit, e.g. hf://org/model:main",
                );
            } else if parts.len() == 1 {
                s.warn(format!(
                    "{path}: {uri:?} has no organisation; Hugging Face resolves it, but KServe's storage initializer downloads only hf://<owner>/<model>: give the full id (e.g. hf://openai-community/gpt2) if the storage initializer fetches this model"
                ));
            }
        }
        "pvc" => {
            let claim = rest.split('/').next().unwrap_or("");
            if !is_dns_subdomain(claim) {
                bad(
                    s,
                    "a PVC URI is pvc://<claim-name>[/<path>] with a valid claim name (lowercase letters, digits, '-', '.')",
                );
            }
        }
        _ => {
            if rest.trim_matches('/').is_empty() {
                bad(
                    s,
                    &format!(
                        "the URI has nothing after {scheme}://; name the bucket, image or host and path"
                    ),
                );
            }
        }
    }
}

pub fn is_dns_subdomain(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `kvCacheOffloading` of one workload.
pub fn check_kv_cache(w: &Obj, s: &mut Sink) {
    let kv = w.obj("kvCacheOffloading", s);
    if !kv.present() {
        return;
    }
    match kv.raw("cpu") {
        None => s.required(kv.path_of("cpu"), "cpu (the CPU memory for the KV cache per pod, e.g. 100Gi) is required with kvCacheOffloading"),
        Some(v @ Value::String(q)) if is_zero_quantity(q) => s.invalid(kv.path_of("cpu"), v, "cpu must be greater than zero, e.g. 100Gi"),
        Some(v @ Value::Number(n)) if n.as_f64().unwrap_or(0.0) <= 0.0 => s.invalid(kv.path_of("cpu"), v, "cpu must be greater than zero, e.g. 100Gi"),
        Some(Value::String(_) | Value::Number(_)) => {}
        Some(v) => s.wrong_type(&kv.path_of("cpu"), v, "a quantity"),
    }
    if let Some(p) = kv.str("evictionPolicy", s)
        && p != "lru"
        && p != "arc"
    {
        s.err(
            super::ErrorKind::NotSupported,
            kv.path_of("evictionPolicy"),
            Some(Value::String(p.into()).to_string()),
            "supported values: \"lru\", \"arc\"",
        );
    }
    for (_, tier) in kv.objs("secondary", s) {
        let fs = tier.obj("fileSystem", s);
        if !fs.present() {
            s.required(
                tier.path_of("fileSystem"),
                "only fileSystem tiers are supported; set fileSystem",
            );
            continue;
        }
        let ed = fs.obj("emptyDir", s);
        let pvc = fs.obj("pvc", s);
        s.exactly_one(
            &fs.path,
            [ed.present(), pvc.present()],
            "exactly one of emptyDir or pvc must be set; both are",
            "exactly one of emptyDir or pvc must be set",
        );
        if ed.present() && !ed.has("size") {
            s.required(
                ed.path_of("size"),
                "the emptyDir size is required, e.g. 500Gi",
            );
        }
        if pvc.present() {
            let spec = pvc.obj("spec", s);
            let r = pvc.obj("ref", s);
            s.exactly_one(
                &pvc.path,
                [spec.present(), r.present()],
                "exactly one of pvc.spec or pvc.ref must be set; both are",
                "exactly one of pvc.spec (a new claim) or pvc.ref (an existing claim) must be set",
            );
            if r.present() && r.str("name", s).unwrap_or("").is_empty() {
                s.required(
                    r.path_of("name"),
                    "the name of the existing claim is required",
                );
            }
        }
    }
}

/// A quantity that is not greater than zero (one that is no quantity is left to the API server).
fn is_zero_quantity(q: &str) -> bool {
    crate::model::json::Quantity::parse(q).is_some_and(|q| !q.is_positive())
}

/// `rolloutStrategy` of one workload.
pub fn check_rollout(w: &Obj, s: &mut Sink) {
    let rs = w.obj("rolloutStrategy", s);
    if !rs.present() {
        return;
    }
    let mut vals = [None, None];
    for (i, k) in ["maxUnavailable", "maxSurge"].into_iter().enumerate() {
        let p = rs.path_of(k);
        match rs.raw(k) {
            None => {}
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if v >= 0 => vals[i] = Some(v),
                _ => s.invalid(
                    &p,
                    &Value::Number(n.clone()),
                    "must be a non-negative integer or a percentage such as \"25%\"",
                ),
            },
            Some(Value::String(st)) => {
                match st.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) {
                    Some(v) if (0..=100).contains(&v) => vals[i] = Some(v),
                    Some(_) => s.invalid_str(&p, st, "a percentage must be between 0% and 100%"),
                    None => s.invalid_str(
                        &p,
                        st,
                        "must be a non-negative integer or a percentage such as \"25%\"",
                    ),
                }
            }
            Some(v) => s.wrong_type(&p, v, "an integer or a percentage string"),
        }
    }
    if let [Some(0), Some(0)] = vals {
        s.forbidden(&rs.path, "maxUnavailable and maxSurge cannot both be zero: no rolling update could progress; raise one of them");
    }
    if w.has("worker") && vals[0] == Some(0) && !rs.has("maxSurge") {
        s.required(rs.path_of("maxSurge"), "maxSurge is required for multi-node workloads when maxUnavailable is 0, otherwise no rolling update can progress");
    }
}

/// `LLMInferenceServiceConfig` may not set `baseRefs`.
pub fn check_config_base_refs(spec: &Obj, s: &mut Sink) {
    if spec.has("baseRefs") {
        s.forbidden(
            spec.path_of("baseRefs"),
            "baseRefs is not permitted in an LLMInferenceServiceConfig (configs cannot reference other configs); merge the referenced presets into this one",
        );
    }
}

/// `metadata.name` (for messages).
pub fn meta_name(obj: &Value) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `model.confidential` (v1alpha2): warnings where it has no effect, resourceId format.
fn check_confidential(model: &Obj, s: &mut Sink) {
    let c = model.obj("confidential", s);
    if c.bool("enabled", s) != Some(true) {
        return;
    }
    let uri = model.raw("uri").and_then(Value::as_str).unwrap_or("");
    if uri.starts_with("oci://") {
        s.warn(format!(
            "{}: confidential has no effect with OCI URIs; OCI image decryption is handled by the container runtime via runtimeClassName",
            c.path
        ));
    }
    if uri.starts_with("pvc://") {
        s.warn(format!(
            "{}: confidential has no effect with PVC URIs; the storage initializer is not injected for PVC volumes",
            c.path
        ));
    }
    if let Some(id) = c.str("resourceId", s)
        && !id.is_empty()
    {
        let parts: Vec<&str> = id
            .strip_prefix("kbs:///")
            .map(|r| r.split('/').collect())
            .unwrap_or_default();
        let ok = parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            s.invalid_str(
                c.path_of("resourceId"),
                id,
                "must be in the format kbs:///<repo>/<type>/<tag>",
            );
        }
    }
}

/// Decode and prefill must scale the same way (both direct KEDA or both WVA, and under WVA the
/// same actuator backend).
pub fn check_actuator_consistency(spec: &Obj, prefill: &Obj, s: &mut Sink) {
    let mut quiet = Sink::default();
    let d = spec.obj("scaling", &mut quiet);
    let p = prefill.obj("scaling", &mut quiet);
    if !d.present() || !p.present() {
        return;
    }
    let mode = |o: &Obj| if o.has("keda") { "direct keda" } else { "wva" };
    if mode(&d) != mode(&p) {
        s.forbidden(
            &p.path,
            format!(
                "decode and prefill must use the same scaling mode; decode uses {} but prefill uses {}",
                mode(&d),
                mode(&p)
            ),
        );
        return;
    }
    let dw = d.obj("wva", &mut quiet);
    let pw = p.obj("wva", &mut quiet);
    if dw.present() && pw.present() {
        let backend = |o: &Obj| if o.has("hpa") { "hpa" } else { "keda" };
        if backend(&dw) != backend(&pw) {
            s.forbidden(
                &pw.path,
                format!(
                    "decode and prefill must use the same actuator backend; decode uses {} but prefill uses {}: mixed backends scale independently",
                    backend(&dw),
                    backend(&pw)
                ),
            );
        }
    }
}
