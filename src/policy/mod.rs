//! Platform policies: declarative YAML rules evaluated by the validating webhook after the
//! built-in checks. See `policies/README.md` for the file format.
//!
//! A [`PolicySet`] is loaded once (CEL programs compiled at load time) and is cheap to share:
//! it is `Send + Sync` and cloning it clones an `Arc`. The server reloads by calling
//! [`PolicySet::load_dir`] again and swapping the set.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::validate::json::{Obj, Sink, child, index, key};
use crate::validate::parallelism::{Parallelism, pod_gpus};
use crate::validate::podspec::templates;
use crate::validate::{
    DEFAULT_ACCELERATORS, ErrorKind, FieldError, KIND_SERVICE, Outcome, ValidateConfig,
};

mod cel_rule;
mod scope;

pub use scope::{
    InScope, LabelSelector, NamespaceLabels, NamespaceLookup, OFFLINE_REASON, Offline, Scope,
};

/// An error loading policies: names the file, the policy and the rule where known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub file: Option<PathBuf>,
    pub policy: Option<String>,
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(p) = &self.policy {
            write!(f, "policy {p:?}: ")?;
        }
        if let Some(r) = &self.rule {
            write!(f, "rule {r:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    fn new(message: impl Into<String>) -> Self {
        PolicyError {
            file: None,
            policy: None,
            rule: None,
            message: message.into(),
        }
    }
}

/// What a rule does when it matches a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Reject the object.
    Deny,
    /// Admit it with a warning.
    Warn,
}

/// A loaded set of policies.
#[derive(Clone, Default)]
pub struct PolicySet {
    policies: Arc<Vec<Policy>>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.policies
                    .iter()
                    .map(|p| (&p.name, p.rules.iter().map(|r| &r.name).collect::<Vec<_>>())),
            )
            .finish()
    }
}

struct Policy {
    name: String,
    rules: Vec<Rule>,
}

struct Rule {
    name: String,
    action: Action,
    message: String,
    scope: Scope,
    check: Check,
}

enum Check {
    MaxGpus(MaxGpus),
    ModelSources(ModelSources),
    ImageRegistries(ImageRegistries),
    RequiredLabels(RequiredLabels),
    ForbiddenPodSettings(ForbiddenPodSettings),
    GpuResources(GpuResources),
    Cel(cel_rule::CelRule),
}

/// The rule kinds, as written in YAML.
pub const RULE_KINDS: &[&str] = &[
    "maxGpus",
    "modelSources",
    "imageRegistries",
    "requiredLabels",
    "forbiddenPodSettings",
    "gpuResources",
    "cel",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    rules: Vec<serde_norway::Mapping>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MaxGpus {
    per_pod: Option<i64>,
    per_service: Option<i64>,
    #[serde(default)]
    resource_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModelSources {
    schemes: Option<Vec<String>>,
    hugging_face_orgs: Option<Vec<String>>,
    pvc_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImageRegistries {
    allowed: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequiredLabels {
    /// Label key -> allowed values (empty: any value).
    labels: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForbiddenPodSettings {
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    host_network: bool,
    #[serde(default, rename = "hostPID")]
    host_pid: bool,
    #[serde(default, rename = "hostIPC")]
    host_ipc: bool,
    #[serde(default)]
    host_path: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GpuResources {
    /// Accelerator resource names pods may request.
    allowed: Option<Vec<String>>,
    /// nodeSelector key -> allowed values; a pod template setting the key must use one.
    node_selectors: Option<BTreeMap<String, Vec<String>>>,
}

/// One violation found by a check.
struct Violation {
    field: String,
    kind: ErrorKind,
    text: String,
}

fn v(field: impl Into<String>, text: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        kind: ErrorKind::Forbidden,
        text: text.into(),
    }
}

impl PolicySet {
    /// No policies.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Number of policies (files or YAML documents).
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// `(policy, rule)` names, in order.
    pub fn rule_names(&self) -> Vec<(String, String)> {
        self.policies
            .iter()
            .flat_map(|p| p.rules.iter().map(|r| (p.name.clone(), r.name.clone())))
            .collect()
    }

    /// Loads every `*.yaml` / `*.yml` file of `dir` (not recursive), in file name order.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let dir = dir.as_ref();
        let with_file = |e: PolicyError, f: &Path| PolicyError {
            file: Some(f.to_path_buf()),
            ..e
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| with_file(PolicyError::new(format!("cannot read directory: {e}")), dir))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        files.sort();
        let mut policies = Vec::new();
        let mut names: HashMap<String, PathBuf> = HashMap::new();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| with_file(PolicyError::new(format!("cannot read: {e}")), &f))?;
            let stem = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("policy")
                .to_string();
            let loaded = parse_policies(&text, &stem).map_err(|e| with_file(e, &f))?;
            for p in loaded {
                if let Some(prev) = names.insert(p.name.clone(), f.clone()) {
                    return Err(PolicyError {
                        file: Some(f.clone()),
                        policy: Some(p.name.clone()),
                        rule: None,
                        message: format!("duplicate policy name (also in {})", prev.display()),
                    });
                }
                policies.push(p);
            }
        }
        Ok(PolicySet {
            policies: Arc::new(policies),
        })
    }

    /// Parses policies from YAML text (one or more `---` documents). A document without `name`
    /// is named `policy`.
    pub fn from_yaml_str(text: &str) -> Result<Self, PolicyError> {
        Ok(PolicySet {
            policies: Arc::new(parse_policies(text, "policy")?),
        })
    }

    /// Whether some rule's `scope.namespaceSelector` reads namespace labels other than
    /// `kubernetes.io/metadata.name` (`serve` then waits for its namespace cache before it
    /// reports ready).
    pub fn needs_namespace_labels(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.rules.iter().any(|r| r.scope.reads_namespace_labels()))
    }

    /// [`PolicySet::evaluate_in`] with the namespace's labels when the caller has them
    /// (`Some`), or none known (`None`: as [`Offline`]).
    pub fn evaluate(
        &self,
        old: Option<&Value>,
        new: &Value,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Outcome {
        match namespace_labels {
            Some(labels) => {
                self.evaluate_in(old, new, &|_: &str| NamespaceLabels::Known(labels.clone()))
            }
            None => self.evaluate_in(old, new, &Offline),
        }
    }

    /// Evaluates every rule in scope. Namespace labels come from `namespaces`, asked only when
    /// a rule that otherwise applies selects namespaces on labels other than
    /// `kubernetes.io/metadata.name` (which is the namespace's name, always known). When the
    /// labels are not known ([`NamespaceLabels::Unknown`]) such a rule fails closed: it is
    /// applied, and its findings say why (the reason given by the lookup) and how to select
    /// namespaces without labels.
    pub fn evaluate_in(
        &self,
        old: Option<&Value>,
        new: &Value,
        namespaces: &dyn NamespaceLookup,
    ) -> Outcome {
        let mut out = Outcome::default();
        if self.policies.is_empty() {
            return out;
        }
        let vars = cel_rule::Vars::new(old, new);
        let ns = new
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Asked once, on the first rule that needs it.
        let mut labels: Option<NamespaceLabels> = None;
        for p in self.policies.iter() {
            for r in &p.rules {
                let unknown = match r.scope.in_scope(new, None) {
                    scope::InScope::No => continue,
                    scope::InScope::Yes => None,
                    scope::InScope::Unknown(keys) => {
                        let known = &*labels.get_or_insert_with(|| {
                            if ns.is_empty() {
                                NamespaceLabels::Unknown("the object names no namespace".into())
                            } else {
                                namespaces.labels(ns)
                            }
                        });
                        match known {
                            NamespaceLabels::Known(m) => match r.scope.in_scope(new, Some(m)) {
                                scope::InScope::No => continue,
                                _ => None,
                            },
                            NamespaceLabels::Unknown(why) => Some((keys, why.clone())),
                        }
                    }
                };
                for viol in r.check.run(&vars, new) {
                    let mut detail =
                        format!("policy {:?} rule {:?}: {}", p.name, r.name, viol.text);
                    if !r.message.is_empty() {
                        detail.push_str("; ");
                        detail.push_str(&r.message);
                    }
                    if let Some((keys, why)) = &unknown {
                        detail.push_str(&format!(
                            " (applied because its scope.namespaceSelector reads namespace labels {keys:?} and the labels of namespace {ns:?} are not known: {why}; the rule fails closed. Select namespaces by name, with scope.namespaces or the kubernetes.io/metadata.name label, to decide without them)"
                        ));
                    }
                    match r.action {
                        Action::Deny => out.errors.push(FieldError {
                            kind: viol.kind,
                            field: viol.field,
                            value: None,
                            detail,
                        }),
                        Action::Warn => out.warnings.push(format!("{}: {detail}", viol.field)),
                    }
                }
            }
        }
        out
    }
}

fn parse_policies(text: &str, default_name: &str) -> Result<Vec<Policy>, PolicyError> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(doc)
            .map_err(|e| PolicyError::new(format!("invalid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let raw: RawPolicy = serde_norway::from_value(value)
            .map_err(|e| PolicyError::new(format!("invalid policy: {e}")))?;
        let name = raw.name.unwrap_or_else(|| default_name.to_string());
        if name.is_empty() {
            return Err(PolicyError::new("policy name must not be empty"));
        }
        let mut rules = Vec::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let rule = parse_rule(r, i).map_err(|e| PolicyError {
                policy: Some(name.clone()),
                ..e
            })?;
            if rules.iter().any(|x: &Rule| x.name == rule.name) {
                return Err(PolicyError {
                    policy: Some(name.clone()),
                    rule: Some(rule.name),
                    ..PolicyError::new("duplicate rule name")
                });
            }
            rules.push(rule);
        }
        out.push(Policy { name, rules });
    }
    Ok(out)
}

fn parse_rule(mut m: serde_norway::Mapping, i: usize) -> Result<Rule, PolicyError> {
    use serde_norway::Value as Y;
    let take = |m: &mut serde_norway::Mapping, k: &str| m.remove(Y::String(k.to_string()));
    let name = match take(&mut m, "name") {
        Some(Y::String(n)) if !n.is_empty() => n,
        _ => {
            return Err(PolicyError::new(format!(
                "rules[{i}]: every rule needs a non-empty string name"
            )));
        }
    };
    let err = |msg: String| PolicyError {
        rule: Some(name.clone()),
        ..PolicyError::new(msg)
    };
    let action: Action = match take(&mut m, "action") {
        None => return Err(err("action is required (deny or warn)".into())),
        Some(a) => serde_norway::from_value(a)
            .map_err(|e| err(format!("action must be deny or warn: {e}")))?,
    };
    let message = match take(&mut m, "message") {
        None => String::new(),
        Some(Y::String(s)) => s,
        Some(_) => return Err(err("message must be a string".into())),
    };
    let scope: Scope = match take(&mut m, "scope") {
        None => Scope::default(),
        Some(s) => serde_norway::from_value(s).map_err(|e| err(format!("invalid scope: {e}")))?,
    };
    scope.check().map_err(err)?;
    take(&mut m, "description");
    let mut kinds = m.into_iter();
    let (kind, body) = match (kinds.next(), kinds.next()) {
        (Some((Y::String(k), body)), None) => (k, body),
        (None, _) => {
            return Err(err(format!(
                "the rule needs one rule kind: one of {}",
                RULE_KINDS.join(", ")
            )));
        }
        (Some(_), Some(_)) => {
            return Err(err(format!(
                "the rule has more than one rule kind or unknown keys; use exactly one of {}",
                RULE_KINDS.join(", ")
            )));
        }
        (Some((k, _)), None) => return Err(err(format!("unknown rule kind {k:?}"))),
    };
    fn body_of<T: serde::de::DeserializeOwned>(
        kind: &str,
        body: serde_norway::Value,
    ) -> Result<T, String> {
        serde_norway::from_value(body).map_err(|e| format!("invalid {kind}: {e}"))
    }
    let check = match kind.as_str() {
        "maxGpus" => {
            let b: MaxGpus = body_of(&kind, body).map_err(err)?;
            if b.per_pod.is_none() && b.per_service.is_none() {
                return Err(err("maxGpus needs perPod and/or perService".into()));
            }
            Check::MaxGpus(b)
        }
        "modelSources" => Check::ModelSources(body_of(&kind, body).map_err(err)?),
        "imageRegistries" => {
            let b: ImageRegistries = body_of(&kind, body).map_err(err)?;
            if b.allowed.is_empty() {
                return Err(err("imageRegistries.allowed must not be empty".into()));
            }
            Check::ImageRegistries(b)
        }
        "requiredLabels" => Check::RequiredLabels(body_of(&kind, body).map_err(err)?),
        "forbiddenPodSettings" => Check::ForbiddenPodSettings(body_of(&kind, body).map_err(err)?),
        "gpuResources" => Check::GpuResources(body_of(&kind, body).map_err(err)?),
        "cel" => Check::Cel(cel_rule::CelRule::parse(body).map_err(err)?),
        other => {
            return Err(err(format!(
                "unknown rule kind {other:?}; known kinds: {}",
                RULE_KINDS.join(", ")
            )));
        }
    };
    Ok(Rule {
        name,
        action,
        message,
        scope,
        check,
    })
}

/// Every container (containers, initContainers, ephemeralContainers) of every pod template:
/// (container path, container).
fn all_containers(new: &Value) -> Vec<(String, &Value)> {
    let mut s = Sink::default();
    let spec = Obj::of(new.get("spec"), "spec", &mut s);
    let mut out = Vec::new();
    for (path, tpl) in templates(&spec, &mut s) {
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(cs) = tpl.get(list).and_then(Value::as_array) {
                for (i, c) in cs.iter().enumerate() {
                    out.push((index(&child(&path, list), i), c));
                }
            }
        }
    }
    out
}

impl Check {
    fn run(&self, vars: &cel_rule::Vars, new: &Value) -> Vec<Violation> {
        match self {
            Check::MaxGpus(c) => c.run(new),
            Check::ModelSources(c) => c.run(new),
            Check::ImageRegistries(c) => c.run(new),
            Check::RequiredLabels(c) => c.run(new),
            Check::ForbiddenPodSettings(c) => c.run(new),
            Check::GpuResources(c) => c.run(new),
            Check::Cel(c) => c.run(vars),
        }
    }
}

impl MaxGpus {
    fn run(&self, new: &Value) -> Vec<Violation> {
        let cfg = ValidateConfig {
            accelerator_resources: self
                .resource_names
                .clone()
                .unwrap_or_else(|| DEFAULT_ACCELERATORS.iter().map(|s| s.to_string()).collect()),
            ..ValidateConfig::default()
        };
        let mut s = Sink::default();
        let spec = Obj::of(new.get("spec"), "spec", &mut s);
        let mut out = Vec::new();
        let mut total: i64 = 0;
        let mut parts = Vec::new();
        for w in [
            Obj {
                map: spec.map,
                path: spec.path.clone(),
            },
            spec.obj("prefill", &mut s),
        ] {
            if !w.present() {
                continue;
            }
            let leader = pod_gpus(&w.obj("template", &mut s), &cfg, &mut s);
            let worker = pod_gpus(&w.obj("worker", &mut s), &cfg, &mut s);
            if let Some(max) = self.per_pod {
                for g in [&leader, &worker].into_iter().flatten() {
                    if g.total > max {
                        out.push(v(
                            g.blame_path(),
                            format!(
                                "a pod may request at most {max} GPUs, this one requests {}",
                                g.total
                            ),
                        ));
                    }
                }
            }
            let par = Parallelism::read(&w, &mut s);
            let l = leader.as_ref().map_or(0, |g| g.total);
            let group = match &worker {
                Some(wk) => {
                    l.saturating_add((par.pods_per_group() - 1).max(0).saturating_mul(wk.total))
                }
                None => l,
            };
            let sc = w.obj("scaling", &mut s);
            let replicas = w
                .int("replicas", &mut s)
                .or_else(|| sc.int("maxReplicas", &mut s))
                .unwrap_or(1)
                .max(0);
            let n = replicas.saturating_mul(group);
            total = total.saturating_add(n);
            if n > 0 {
                parts.push(format!(
                    "{}: {replicas} replicas x {group} GPUs per replica",
                    w.path
                ));
            }
        }
        if let Some(max) = self.per_service
            && total > max
        {
            out.push(v(
                "spec",
                format!("the service may use up to {total} GPUs ({}), more than the allowed {max}; lower replicas (or scaling.maxReplicas) or the GPUs per pod", parts.join(", ")),
            ));
        }
        out
    }
}

fn model_uris(new: &Value) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let Some(model) = new.get("spec").and_then(|s| s.get("model")) else {
        return out;
    };
    if let Some(u) = model.get("uri").and_then(Value::as_str) {
        out.push(("spec.model.uri".to_string(), u));
    }
    if let Some(ads) = model
        .get("lora")
        .and_then(|l| l.get("adapters"))
        .and_then(Value::as_array)
    {
        for (i, a) in ads.iter().enumerate() {
            if let Some(u) = a.get("uri").and_then(Value::as_str) {
                out.push((format!("spec.model.lora.adapters[{i}].uri"), u));
            }
        }
    }
    out
}

impl ModelSources {
    fn run(&self, new: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        for (path, uri) in model_uris(new) {
            let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
            if let Some(allowed) = &self.schemes
                && !allowed.iter().any(|a| a == scheme)
            {
                out.push(v(&path, format!("model URI {uri:?} uses scheme {scheme:?}, which is not allowed (allowed: {})", allowed.join(", "))));
                continue;
            }
            if scheme == "hf"
                && let Some(orgs) = &self.hugging_face_orgs
            {
                // `hf://gpt2` (an id without organisation) has no organisation to allow.
                let org = rest.split_once('/').map_or("", |(o, _)| o);
                if org.is_empty() {
                    out.push(v(
                        &path,
                        format!(
                            "Hugging Face model {uri:?} has no organisation, so it is not from an allowed one (allowed: {})",
                            orgs.join(", ")
                        ),
                    ));
                } else if !orgs.iter().any(|o| o == org) {
                    out.push(v(
                        &path,
                        format!(
                            "Hugging Face organisation {org:?} is not allowed (allowed: {})",
                            orgs.join(", ")
                        ),
                    ));
                }
            }
            if scheme == "pvc"
                && let Some(names) = &self.pvc_names
            {
                let claim = rest.split('/').next().unwrap_or("");
                if !names.iter().any(|n| n == claim) {
                    out.push(v(
                        &path,
                        format!(
                            "PVC {claim:?} is not allowed as a model source (allowed: {})",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// `nginx` -> `docker.io/library/nginx`; `quay.io/x/y:1` stays.
pub fn normalize_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

impl ImageRegistries {
    fn allows(&self, image: &str) -> bool {
        let norm = normalize_image(image);
        self.allowed.iter().any(|a| {
            let a = a.trim_end_matches('/');
            [image, norm.as_str()].iter().any(|i| {
                i.strip_prefix(a).is_some_and(|rest| {
                    rest.is_empty()
                        || rest.starts_with('/')
                        || rest.starts_with(':')
                        || rest.starts_with('@')
                })
            })
        })
    }

    fn run(&self, new: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        for (path, c) in all_containers(new) {
            if let Some(image) = c.get("image").and_then(Value::as_str)
                && !self.allows(image)
            {
                out.push(v(
                    child(&path, "image"),
                    format!(
                        "image {image:?} is not from an allowed registry (allowed: {})",
                        self.allowed.join(", ")
                    ),
                ));
            }
        }
        out
    }
}

impl RequiredLabels {
    fn run(&self, new: &Value) -> Vec<Violation> {
        let labels = new
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        let mut out = Vec::new();
        for (k, allowed) in &self.labels {
            let path = key("metadata.labels", k);
            match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
                None => out.push(Violation {
                    kind: ErrorKind::Required,
                    ..v(path, format!("label {k:?} is required"))
                }),
                Some(val) if !allowed.is_empty() && !allowed.iter().any(|a| a == val) => {
                    out.push(v(
                        path,
                        format!(
                            "label {k:?} is {val:?}, not one of the allowed values ({})",
                            allowed.join(", ")
                        ),
                    ))
                }
                _ => {}
            }
        }
        out
    }
}

impl ForbiddenPodSettings {
    fn run(&self, new: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut s = Sink::default();
        let spec = Obj::of(new.get("spec"), "spec", &mut s);
        for (path, tpl) in templates(&spec, &mut s) {
            for (flag, on) in [
                ("hostNetwork", self.host_network),
                ("hostPID", self.host_pid),
                ("hostIPC", self.host_ipc),
            ] {
                if on && tpl.get(flag) == Some(&Value::Bool(true)) {
                    out.push(v(child(&path, flag), format!("{flag} is not allowed")));
                }
            }
            if self.host_path
                && let Some(vols) = tpl.get("volumes").and_then(Value::as_array)
            {
                for (i, vol) in vols.iter().enumerate() {
                    if vol.get("hostPath").is_some_and(|h| !h.is_null()) {
                        out.push(v(
                            child(&index(&child(&path, "volumes"), i), "hostPath"),
                            "hostPath volumes are not allowed",
                        ));
                    }
                }
            }
        }
        if self.privileged {
            for (path, c) in all_containers(new) {
                if c.get("securityContext").and_then(|sc| sc.get("privileged"))
                    == Some(&Value::Bool(true))
                {
                    out.push(v(
                        child(&child(&path, "securityContext"), "privileged"),
                        "privileged containers are not allowed",
                    ));
                }
            }
        }
        out
    }
}

fn looks_like_gpu(resource: &str) -> bool {
    DEFAULT_ACCELERATORS.contains(&resource) || resource.contains("gpu")
}

impl GpuResources {
    fn run(&self, new: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(allowed) = &self.allowed {
            for (path, c) in all_containers(new) {
                for part in ["limits", "requests"] {
                    let Some(m) = c
                        .get("resources")
                        .and_then(|r| r.get(part))
                        .and_then(Value::as_object)
                    else {
                        continue;
                    };
                    for r in m.keys() {
                        if looks_like_gpu(r) && !allowed.iter().any(|a| a == r) {
                            out.push(v(
                                key(&child(&child(&path, "resources"), part), r),
                                format!(
                                    "GPU resource {r:?} is not allowed (allowed: {})",
                                    allowed.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(sel) = &self.node_selectors {
            let mut s = Sink::default();
            let spec = Obj::of(new.get("spec"), "spec", &mut s);
            for (path, tpl) in templates(&spec, &mut s) {
                let Some(ns) = tpl.get("nodeSelector").and_then(Value::as_object) else {
                    continue;
                };
                for (k, val) in ns {
                    if let Some(allowed) = sel.get(k) {
                        let val = val.as_str().unwrap_or("");
                        if !allowed.iter().any(|a| a == val) {
                            out.push(v(
                                key(&child(&path, "nodeSelector"), k),
                                format!(
                                    "node selector {k}={val:?} is not allowed (allowed values: {})",
                                    allowed.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Kinds a rule applies to when its scope names none.
pub const DEFAULT_KINDS: &[&str] = &[KIND_SERVICE];

#[cfg(test)]
mod tests;
