//! The pure builder: an expanded `LLMInferenceService` (as stored, after the mutating webhook)
//! in, the Kubernetes objects that run it out.
//!
//! Names follow KServe's LLMInferenceService controller: [`crate::model::children`] makes every one
//! (`ChildName(<name>, suffix)`, hash-shortened to 63 characters as knative's `kmeta.ChildName`).
//!
//! Every object carries [`MANAGED_BY_LABEL`]=[`MANAGED_BY`], `app.kubernetes.io/name: <n>`,
//! `app.kubernetes.io/part-of: llminferenceservice` and a controller owner reference to the
//! service. The output is deterministic (fixed order, no timestamps).
//!
//! Typed where the content is ours, JSON where it is the user's: every child's metadata is a
//! k8s-openapi `ObjectMeta` with the owner reference from kube's
//! `Resource::controller_owner_ref` ([`Meta::owner`]); the ServiceAccounts, Roles,
//! RoleBindings, the ClusterRoleBinding, the Services and the HorizontalPodAutoscaler (with the
//! user's `behavior` spliced in as written) are k8s-openapi objects ([`Meta::typed`]). The
//! workloads (Deployments, LeaderWorkerSets) keep the user's pod
//! templates (`spec.template`, `worker`, `prefill.template`, the scheduler's and tokenizer's
//! templates) and `rolloutStrategy` as the JSON they were admitted as: k8s-openapi (compiled for
//! Kubernetes 1.37, the test bed's version) drops fields it does not know, and a newer API
//! server's pod field, or an extension's, must reach the pods
//! (`tests::pod_template_fields_unknown_to_k8s_openapi_survive` shows the loss through
//! `PodSpec` and that the builder keeps them). The CRD kinds (LeaderWorkerSet, InferencePool,
//! HTTPRoute, ScaledObject) are that typed metadata plus JSON, the shape of a
//! `kube::api::DynamicObject`; so are, not yet converted, the ResourceClaimTemplate and the
//! Deployments' own fields (replicas, selector). Every child
//! leaves as JSON (`serde_json::Value`), which the controller applies with server-side apply;
//! the key order is k8s-openapi's for the typed parts (the child hash is over canonical JSON,
//! so order is not a change).

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget,
};
use k8s_openapi::api::core::v1::{Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::rbac::v1::{
    ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource as _;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Map, Value, json};

use crate::model::json::{self, JsonError, Path};
use crate::model::view::PoolView;

pub use crate::model::children::{
    APP_COMPONENT_LABEL, COMPONENT_LABEL, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL,
    OWNER_API_VERSION, PART_OF, PART_OF_LABEL, ROLE_LABEL, ROUTER_COMPONENT, SCHEDULER_COMPONENT,
    SERVICE_NAMESPACE_LABEL, WORKLOAD_COMPONENT, WORKLOAD_PORT, cluster_scoped,
};
use crate::model::children::{
    DEPLOYMENT_API_VERSION, EPP_GRPC_HEALTH_PORT, EPP_GRPC_PORT, EPP_METRICS_PORT, HPA_API_VERSION,
    HTTP_ROUTE_API_VERSION, INFERENCE_POOL_API_VERSION, INFERENCE_POOL_GROUP,
    INFERENCE_POOL_X_GROUP, LWS_API_VERSION, SCALED_OBJECT_API_VERSION,
};

/// Why a service cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    /// A required field is absent (`<path> is missing`) or has the wrong JSON type
    /// (`<path>: expected an object`), as [`crate::model::json`] reads it.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The spec asks for something the reconciler was not configured for.
    #[error("{path}: {message}")]
    Unconfigured { path: String, message: &'static str },
    /// The service was admitted before the configs its baseRefs name and stored un-expanded
    /// (see `presets::MISSING_BASE_REFS_ANNOTATION`): nothing is built from it until it is
    /// admitted again with them.
    #[error(
        "waiting for LLMInferenceServiceConfig {0:?} (spec.baseRefs): the service was admitted before it existed and is expanded when admitted again"
    )]
    PendingBaseRefs(Vec<String>),
}

/// Prefixes of the service's own annotations that reach its workloads and their pods, as
/// KServe propagates them (Multus networks, Kueue, Prometheus scraping, local model cache).
pub const PROPAGATED_ANNOTATION_PREFIXES: [&str; 4] = [
    "k8s.v1.cni.cncf.io",
    "kueue.x-k8s.io",
    "prometheus.io",
    "internal.serving.kserve.io/localmodel",
];
/// ... and to LeaderWorkerSets also these (e.g. `leaderworkerset.sigs.k8s.io/exclusive-topology`).
pub const PROPAGATED_LWS_ANNOTATION_PREFIX: &str = "leaderworkerset.sigs.k8s.io";
/// Prefixes of the service's own labels that reach its workloads and their pods.
pub const PROPAGATED_LABEL_PREFIXES: [&str; 2] =
    ["kueue.x-k8s.io", "internal.serving.kserve.io/localmodel"];

/// KServe's annotation that stops a service: its children are deleted, the service stays
/// (`"true"`, any case; removing it brings them back).
pub const STOP_ANNOTATION: &str = "serving.kserve.io/stop";

/// Is the service stopped ([`STOP_ANNOTATION`])?
pub fn stopped(svc: &Value) -> bool {
    svc["metadata"]["annotations"][STOP_ANNOTATION]
        .as_str()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Cluster settings the builder needs for some specs (the reconciler's command line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Where KEDA reads the Workload Variant Autoscaler's `wva_desired_replicas` metric
    /// (`scaling.wva.keda`); KServe keeps it in `inferenceservice-config`
    /// (`autoscaling-wva-controller-config.prometheus`).
    pub wva_prometheus: Option<WvaPrometheus>,
}

/// The Prometheus that KEDA's trigger for `scaling.wva.keda` queries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WvaPrometheus {
    /// `serverAddress` of the trigger.
    pub url: String,
    /// `unsafeSsl` of the trigger.
    pub insecure_skip_verify: bool,
    /// `authModes` (e.g. `bearer`) with the (Cluster)TriggerAuthentication that holds the
    /// credentials: both or neither.
    pub auth: Option<WvaPrometheusAuth>,
}

/// KEDA authentication of the Prometheus trigger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WvaPrometheusAuth {
    pub modes: String,
    pub trigger_authentication: String,
    /// `TriggerAuthentication` or `ClusterTriggerAuthentication`.
    pub kind: String,
}

/// Annotations and label by which the Workload Variant Autoscaler discovers the HPA or
/// ScaledObject that acts on its decisions (as KServe sets them).
pub mod wva {
    pub const MANAGED_ANNOTATION: &str = "llm-d.ai/managed";
    pub const MODEL_ID_ANNOTATION: &str = "llm-d.ai/model-id";
    pub const VARIANT_COST_ANNOTATION: &str = "llm-d.ai/variant-cost";
    pub const ACCELERATOR_LABEL: &str = "inference.optimization/acceleratorName";
    pub const METRIC: &str = "wva_desired_replicas";
}

/// Names of the children of service `n`: the one naming module (KServe's `ChildName` rule).
pub use crate::model::children as names;

/// The service's identity, read once.
#[derive(Clone, Debug)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub kind: String,
    /// `spec.model.name`, else `spec.model.uri` (WVA's model id).
    pub model_id: String,
    /// The service's labels that its workloads carry ([`PROPAGATED_LABEL_PREFIXES`]).
    pub propagated_labels: Map<String, Value>,
    /// The service's annotations that its workloads carry
    /// ([`PROPAGATED_ANNOTATION_PREFIXES`], plus [`PROPAGATED_LWS_ANNOTATION_PREFIX`], which
    /// only LeaderWorkerSets take).
    pub propagated_annotations: Map<String, Value>,
    /// `spec.tracing` (merged: the `kserve-config-llm-tracing` preset fills its defaults), when
    /// set: see [`inject_server_tracing`] / [`inject_scheduler_tracing`].
    pub tracing: Option<Map<String, Value>>,
    /// `spec.model.confidential`, when `enabled: true`: its `resourceId` (may be empty); see
    /// [`inject_confidential`].
    pub confidential: Option<String>,
    /// The controller owner reference every namespaced child carries, made once by kube's
    /// `Resource::controller_owner_ref` from the service (`controller: true`), with
    /// `blockOwnerDeletion: true` as controller-runtime sets it for KServe.
    pub owner: OwnerReference,
}

/// The string entries of `map` whose key starts with one of `prefixes`.
fn with_prefix(map: Option<&Value>, prefixes: &[&str]) -> Map<String, Value> {
    map.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, v)| v.is_string() && prefixes.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Meta {
    pub fn of(svc: &Value) -> Result<Meta, BuildError> {
        let root = json::as_obj(svc, &Path::ROOT)?;
        let mp = Path::Lit("metadata");
        let metadata = json::child(root, "metadata", &Path::ROOT)?;
        // A required, non-empty string of `metadata` (an empty one counts as missing).
        let s = |key: &str| -> Result<String, JsonError> {
            let v = match metadata {
                Some(m) => json::get_str(m, key, &mp)?,
                None => None,
            };
            json::required(v.filter(|s| !s.is_empty()), &mp.key(key)).map(str::to_string)
        };
        let m = svc.get("metadata");
        let name = s("name")?;
        let uid = s("uid")?;
        let kind = svc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("LLMInferenceService")
            .to_string();
        let owner = {
            let (group, version) = OWNER_API_VERSION.split_once('/').unwrap_or_default();
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &kind));
            let mut o = DynamicObject::new(&name, &ar);
            o.metadata.uid = Some(uid.clone());
            // kube's helper sets `controller`; `blockOwnerDeletion` as controller-runtime's
            // `SetControllerReference` (KServe): the service is not gone before its children.
            OwnerReference {
                block_owner_deletion: Some(true),
                ..o.controller_owner_ref(&ar)
                    .expect("the owner has a name and a uid")
            }
        };
        Ok(Meta {
            namespace: s("namespace")?,
            owner,
            name,
            uid,
            kind,
            model_id: ["name", "uri"]
                .iter()
                .find_map(|k| svc["spec"]["model"][k].as_str().filter(|v| !v.is_empty()))
                .unwrap_or_default()
                .to_string(),
            propagated_labels: with_prefix(
                m.and_then(|m| m.get("labels")),
                &PROPAGATED_LABEL_PREFIXES,
            ),
            propagated_annotations: with_prefix(m.and_then(|m| m.get("annotations")), &{
                let mut p = PROPAGATED_ANNOTATION_PREFIXES.to_vec();
                p.push(PROPAGATED_LWS_ANNOTATION_PREFIX);
                p
            }),
            tracing: json::child(spec_of(svc), "tracing", &Path::Lit("spec"))?.cloned(),
            confidential: match spec_of(svc).get("model").and_then(Value::as_object) {
                Some(model) => json::child(model, "confidential", &Path::Lit("spec.model"))?,
                None => None,
            }
            .filter(|c| c.get("enabled").and_then(Value::as_bool) == Some(true))
            .map(|c| {
                c.get("resourceId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }),
        })
    }

    /// Labels every child carries.
    pub fn common_labels(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(PART_OF_LABEL.into(), PART_OF.into());
        m.insert(NAME_LABEL.into(), self.name.clone().into());
        m.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        m
    }

    fn object(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        extra_labels: &[(&str, &str)],
    ) -> Map<String, Value> {
        let extra = extra_labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
            .collect();
        self.object_labelled(api_version, kind, name, extra)
    }

    fn object_labelled(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        extra_labels: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert("apiVersion".into(), api_version.into());
        o.insert("kind".into(), kind.into());
        let meta = self.metadata(name, extra_labels);
        o.insert(
            "metadata".into(),
            serde_json::to_value(meta).expect("ObjectMeta serialises"),
        );
        o
    }

    /// The metadata of child `name`: in the service's namespace, the common labels (they win
    /// over `extra_labels`: children are found by them; only string values are labels) and
    /// [`Meta::owner`].
    fn metadata(&self, name: &str, extra_labels: Map<String, Value>) -> ObjectMeta {
        let mut labels: BTreeMap<String, String> = self
            .common_labels()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect();
        for (k, v) in extra_labels {
            if let Value::String(v) = v {
                labels.entry(k).or_insert(v);
            }
        }
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![self.owner.clone()]),
            ..Default::default()
        }
    }

    /// A typed built-in child (k8s-openapi) with [`Meta::metadata`], as the JSON applied.
    fn typed<K>(
        &self,
        name: &str,
        extra_labels: &[(&str, &str)],
        fill: impl FnOnce(&mut K),
    ) -> Value
    where
        K: k8s_openapi::Resource + kube::Resource<DynamicType = ()> + Default + serde::Serialize,
    {
        let extra = extra_labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
            .collect();
        self.typed_labelled(name, extra, fill)
    }

    /// [`Meta::typed`] with labels from JSON (the spec's own labels, for instance).
    fn typed_labelled<K>(
        &self,
        name: &str,
        extra_labels: Map<String, Value>,
        fill: impl FnOnce(&mut K),
    ) -> Value
    where
        K: k8s_openapi::Resource + kube::Resource<DynamicType = ()> + Default + serde::Serialize,
    {
        let mut k = K::default();
        *k.meta_mut() = self.metadata(name, extra_labels);
        fill(&mut k);
        serde_json::to_value(k).expect("k8s-openapi objects serialise")
    }
}

/// The service's annotations a workload (`lws`: a LeaderWorkerSet) and its pods carry.
fn workload_annotations(meta: &Meta, lws: bool) -> Map<String, Value> {
    meta.propagated_annotations
        .iter()
        .filter(|(k, _)| lws || !k.starts_with(PROPAGATED_LWS_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Adds the service's propagated labels (ours are kept) and annotations to a workload object.
fn propagate_onto(o: &mut Map<String, Value>, meta: &Meta, lws: bool) {
    let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(labels) = m.get_mut("labels").and_then(Value::as_object_mut) {
        for (k, v) in &meta.propagated_labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let annotations = workload_annotations(meta, lws);
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
}

pub use crate::model::children::Pool;

/// Which pods a template makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodKind {
    /// A Deployment's.
    Single,
    /// A LeaderWorkerSet's leaders.
    Leader,
    /// A LeaderWorkerSet's workers.
    Worker,
}

/// One workload (decode or prefill) as read from the spec.
struct Workload<'a> {
    pool: Pool,
    /// The pool's path (`spec`, `spec.prefill`).
    path: Path<'static>,
    spec: &'a Map<String, Value>,
    /// The pool's shape (multi-node, group size), as [`crate::model::view`] reads it.
    view: PoolView,
    role: &'static str,
}

impl Workload<'_> {
    fn multi_node(&self) -> bool {
        self.view.multi_node()
    }
    fn name(&self, n: &str) -> String {
        match self.pool {
            Pool::Decode => names::decode(n, self.multi_node()),
            Pool::Prefill => names::prefill(n, self.multi_node()),
        }
    }
    fn scaling(&self) -> Result<Option<&Map<String, Value>>, JsonError> {
        json::child(self.spec, "scaling", &self.path)
    }
    /// Pods per LeaderWorkerSet group ([`PoolView::group_size`]), saturated to LWS's `int32`.
    fn group_size(&self) -> i32 {
        i32::try_from(self.view.group_size()).unwrap_or(i32::MAX)
    }
    /// Our labels of a pod (and of its Deployment, whose selector they are), as KServe:
    /// `app.kubernetes.io/component` (`llminferenceservice-workload[-leader|-worker][-prefill]`),
    /// and on serving pods (not LeaderWorkerSet workers) `kserve.io/component: workload` and
    /// `llm-d.ai/role`, which the InferencePool and the workload Service select.
    fn own_labels(&self, meta: &Meta, pod: PodKind) -> Map<String, Value> {
        let prefill = self.pool == Pool::Prefill;
        let component = match (pod, prefill) {
            (PodKind::Single, false) => WORKLOAD_COMPONENT,
            (PodKind::Single, true) => "llminferenceservice-workload-prefill",
            (PodKind::Leader, false) => "llminferenceservice-workload-leader",
            (PodKind::Leader, true) => "llminferenceservice-workload-leader-prefill",
            (PodKind::Worker, false) => "llminferenceservice-workload-worker",
            (PodKind::Worker, true) => "llminferenceservice-workload-worker-prefill",
        };
        let mut m = Map::new();
        m.insert(APP_COMPONENT_LABEL.into(), component.into());
        m.insert(NAME_LABEL.into(), meta.name.clone().into());
        m.insert(PART_OF_LABEL.into(), PART_OF.into());
        if pod != PodKind::Worker {
            m.insert(COMPONENT_LABEL.into(), "workload".into());
            m.insert(ROLE_LABEL.into(), self.role.into());
        }
        m
    }
    /// Pod metadata: the service's propagated labels and annotations, our labels, then the
    /// workload spec's labels and annotations, which win as in KServe, except over a
    /// Deployment's selector labels (a pod template that does not match its selector is
    /// refused).
    fn pod_metadata(&self, meta: &Meta, pod: PodKind) -> Result<Value, BuildError> {
        let lws = pod != PodKind::Single;
        let mut labels = meta.propagated_labels.clone();
        let own = self.own_labels(meta, pod);
        labels.extend(own.clone());
        if let Some(l) = json::child(self.spec, "labels", &self.path)? {
            for (k, v) in l {
                // The role is derived from the service (prefill or not), as KServe's controller
                // sets it: a stale `llm-d.ai/role` the webhook once stored in spec.labels (while
                // the service had prefill) must not outlive the prefill pool.
                let derived = k == ROLE_LABEL && own.contains_key(k);
                if !derived && (lws || !own.contains_key(k)) {
                    labels.insert(k.clone(), v.clone());
                }
            }
        }
        let mut m = Map::new();
        m.insert("labels".into(), Value::Object(labels));
        let mut annotations = workload_annotations(meta, lws);
        if let Some(a) = json::child(self.spec, "annotations", &self.path)? {
            annotations.extend(a.clone());
        }
        if !annotations.is_empty() {
            m.insert("annotations".into(), Value::Object(annotations));
        }
        Ok(Value::Object(m))
    }
    fn template(&self) -> Result<&Map<String, Value>, JsonError> {
        json::required(
            json::child(self.spec, "template", &self.path)?,
            &self.path.key("template"),
        )
    }

    fn build(&self, meta: &Meta, opts: &BuildOptions) -> Result<Vec<Value>, BuildError> {
        let name = self.name(&meta.name);
        let scaling = self.scaling()?;
        let replicas = json::get_int(self.spec, "replicas", &self.path)?;
        let rollout = json::child(self.spec, "rolloutStrategy", &self.path)?;
        let mut template = self.template()?.clone();
        let suffix = match self.pool {
            Pool::Decode => "-decode",
            Pool::Prefill => "-prefill",
        };
        inject_server_tracing(&mut template, meta, suffix);
        inject_confidential(&mut template, meta);
        let template = Value::Object(template);
        let mut spec = Map::new();
        if scaling.is_none() {
            spec.insert("replicas".into(), replicas.unwrap_or(1).into());
        }
        let mut out = Vec::new();
        let worker = json::child(self.spec, "worker", &self.path)?;
        let (api_version, kind) = if let Some(worker) = worker {
            let mut worker = worker.clone();
            inject_server_tracing(&mut worker, meta, suffix);
            inject_confidential(&mut worker, meta);
            let mut template = template;
            // As KServe: leader and worker pods run as one ServiceAccount, the template's (else
            // the worker's) own, else one named after the LeaderWorkerSet that we create.
            let sa = self.multi_node_service_account(meta, &worker, &mut out)?;
            if let Value::Object(t) = &mut template {
                t.insert("serviceAccountName".into(), sa.clone().into());
            }
            worker.insert("serviceAccountName".into(), sa.clone().into());
            if self.pool == Pool::Decode
                && (has_routing_sidecar(&template)
                    || has_routing_sidecar(&Value::Object(worker.clone())))
            {
                sidecar_rbac(meta, &sa, true, &mut out);
            }
            // As KServe: the LeaderWorkerSet carries its workers' labels.
            let mut o = meta.object_labelled(
                LWS_API_VERSION,
                "LeaderWorkerSet",
                &name,
                self.own_labels(meta, PodKind::Worker),
            );
            propagate_onto(&mut o, meta, true);
            // As KServe: workers start once the leader pod is created. Not `LeaderReady`: a
            // multi-node vLLM leader only turns ready after its workers joined (deadlock).
            spec.insert("startupPolicy".into(), "LeaderCreated".into());
            if let Some(r) = rollout {
                spec.insert(
                    "rolloutStrategy".into(),
                    json!({"type": "RollingUpdate", "rollingUpdateConfiguration": r}),
                );
            }
            spec.insert(
                "leaderWorkerTemplate".into(),
                json!({
                    "size": self.group_size(),
                    "restartPolicy": "RecreateGroupOnPodRestart",
                    "leaderTemplate": {
                        "metadata": self.pod_metadata(meta, PodKind::Leader)?,
                        "spec": template,
                    },
                    "workerTemplate": {
                        "metadata": self.pod_metadata(meta, PodKind::Worker)?,
                        "spec": Value::Object(worker),
                    },
                }),
            );
            o.insert("spec".into(), Value::Object(spec));
            out.push(Value::Object(o));
            (LWS_API_VERSION, "LeaderWorkerSet")
        } else {
            let mut template = template;
            // As KServe (`expectedSingleNodeMainDeployment`): decode pods with the routing
            // sidecar run as the template's ServiceAccount when it names another than
            // `<n>-kserve`, else as `<n>-kserve`, created here; either is bound to the
            // sidecar's Role.
            if self.pool == Pool::Decode && has_routing_sidecar(&template) {
                let expected = names::single_node_sa(&meta.name);
                let named = template
                    .get("serviceAccountName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty() && *s != expected)
                    .map(str::to_string);
                let sa = match named {
                    Some(sa) => sa,
                    None => {
                        out.push(meta.typed::<ServiceAccount>(
                            &expected,
                            &[(APP_COMPONENT_LABEL, WORKLOAD_COMPONENT)],
                            |_| {},
                        ));
                        expected
                    }
                };
                sidecar_rbac(meta, &sa, false, &mut out);
                if let Value::Object(t) = &mut template {
                    t.insert("serviceAccountName".into(), sa.into());
                }
            }
            let own = self.own_labels(meta, PodKind::Single);
            let mut o =
                meta.object_labelled(DEPLOYMENT_API_VERSION, "Deployment", &name, own.clone());
            propagate_onto(&mut o, meta, false);
            spec.insert("selector".into(), json!({ "matchLabels": own }));
            if let Some(r) = rollout {
                spec.insert(
                    "strategy".into(),
                    json!({"type": "RollingUpdate", "rollingUpdate": r}),
                );
            }
            spec.insert(
                "template".into(),
                json!({"metadata": self.pod_metadata(meta, PodKind::Single)?, "spec": template}),
            );
            o.insert("spec".into(), Value::Object(spec));
            out.push(Value::Object(o));
            (DEPLOYMENT_API_VERSION, "Deployment")
        };
        if let Some(scaling) = scaling {
            out.extend(self.autoscaler(meta, scaling, &name, api_version, kind, opts)?);
        }
        Ok(out)
    }

    /// The ServiceAccount of a multi-node workload's pods, as KServe: `template`'s
    /// `serviceAccountName`, else `worker`'s, when it is not the one KServe would create;
    /// otherwise the LeaderWorkerSet's name, a ServiceAccount pushed onto `out`.
    fn multi_node_service_account(
        &self,
        meta: &Meta,
        worker: &Map<String, Value>,
        out: &mut Vec<Value>,
    ) -> Result<String, BuildError> {
        let expected = names::multi_node_sa(&meta.name, self.pool);
        let named = |m: Option<&Map<String, Value>>| {
            m.and_then(|m| m.get("serviceAccountName"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let existing = named(Some(self.template()?)).or_else(|| named(Some(worker)));
        if let Some(sa) = existing.filter(|s| *s != expected) {
            return Ok(sa);
        }
        out.push(meta.typed::<ServiceAccount>(&expected, &[], |_| {}));
        Ok(expected)
    }

    /// The HPA or ScaledObject of `scaling`, as KServe builds it: `scaling.keda` is a
    /// ScaledObject with the user's triggers; `scaling.wva` is an HPA (`wva.hpa`) or a
    /// ScaledObject (`wva.keda`) that follows the Workload Variant Autoscaler's
    /// `wva_desired_replicas` metric for this variant (named after the HPA / ScaledObject),
    /// annotated so that WVA discovers it.
    fn autoscaler(
        &self,
        meta: &Meta,
        scaling: &Map<String, Value>,
        target: &str,
        api_version: &str,
        kind: &str,
        opts: &BuildOptions,
    ) -> Result<Option<Value>, BuildError> {
        let p = self.path.key("scaling");
        let min = json::get_int(scaling, "minReplicas", &p)?;
        let max = json::required(
            json::get_int(scaling, "maxReplicas", &p)?,
            &p.key("maxReplicas"),
        )?;
        let Some(actuator) = self.actuator(scaling)? else {
            // Neither actuator (the validating webhook refuses this): nothing to scale with.
            return Ok(None);
        };
        let own_name = actuator.child(&meta.name, self.pool).name;
        let target_ref = json!({"apiVersion": api_version, "kind": kind, "name": target});
        // A ScaledObject's spec: target, bounds, the KEDA settings `from` carries, `triggers`.
        let scaled_object_spec = |from: &Map<String, Value>, min: i64, triggers: Value| {
            let mut spec = Map::new();
            spec.insert("scaleTargetRef".into(), target_ref.clone());
            spec.insert("minReplicaCount".into(), min.into());
            spec.insert("maxReplicaCount".into(), max.into());
            for k in [
                "pollingInterval",
                "cooldownPeriod",
                "initialCooldownPeriod",
                "idleReplicaCount",
                "fallback",
                "advanced",
            ] {
                if let Some(v) = from.get(k).filter(|v| !v.is_null()) {
                    spec.insert(k.into(), v.clone());
                }
            }
            if !triggers.is_null() {
                spec.insert("triggers".into(), triggers);
            }
            Value::Object(spec)
        };
        let workload = [(APP_COMPONENT_LABEL, WORKLOAD_COMPONENT)];

        let wva = match actuator {
            Actuator::Keda(keda) => {
                let mut o = meta.object(
                    SCALED_OBJECT_API_VERSION,
                    "ScaledObject",
                    &own_name,
                    &workload,
                );
                // As KServe: `minReplicas` defaults to 1 (not KEDA's own 0, scale to zero).
                let triggers = keda.get("triggers").cloned().unwrap_or(Value::Null);
                o.insert(
                    "spec".into(),
                    scaled_object_spec(keda, min.unwrap_or(1), triggers),
                );
                return Ok(Some(Value::Object(o)));
            }
            Actuator::WvaKeda { wva, .. } | Actuator::WvaHpa { wva, .. } => wva,
        };
        let accelerator = json::child(self.spec, "labels", &self.path)?
            .and_then(|l| l.get(wva::ACCELERATOR_LABEL))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .unwrap_or("unknown");
        let labels = [
            (APP_COMPONENT_LABEL, WORKLOAD_COMPONENT),
            (wva::ACCELERATOR_LABEL, accelerator),
        ];
        let model = &meta.model_id;
        // WVA's discovery annotations on the HPA / ScaledObject `o` (built by `Meta::object`).
        let annotate = |o: &mut Map<String, Value>| {
            let mut a = Map::new();
            a.insert(wva::MANAGED_ANNOTATION.into(), "true".into());
            a.insert(wva::MODEL_ID_ANNOTATION.into(), model.clone().into());
            if let Some(c) = wva
                .get("variantCost")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                a.insert(wva::VARIANT_COST_ANNOTATION.into(), c.into());
            }
            if let Some(Value::Object(m)) = o.get_mut("metadata") {
                m.insert("annotations".into(), Value::Object(a));
            }
        };
        if let Actuator::WvaKeda { keda, .. } = actuator {
            let Some(prom) = &opts.wva_prometheus else {
                return Err(BuildError::Unconfigured {
                    path: format!("{p}.wva.keda"),
                    message: "KEDA needs the Prometheus that holds WVA's wva_desired_replicas \
                              metric: start the reconciler with --wva-prometheus-url",
                });
            };
            let mut o = meta.object(
                SCALED_OBJECT_API_VERSION,
                "ScaledObject",
                &own_name,
                &labels,
            );
            annotate(&mut o);
            // Prometheus renames the namespace label WVA emits to exported_namespace.
            let query = format!(
                "{}{{variant_name=\"{own_name}\",exported_namespace=\"{}\"}}",
                wva::METRIC,
                meta.namespace
            );
            let mut metadata = Map::new();
            metadata.insert("serverAddress".into(), prom.url.clone().into());
            metadata.insert("query".into(), query.into());
            metadata.insert("threshold".into(), "1".into());
            metadata.insert(
                "unsafeSsl".into(),
                prom.insecure_skip_verify.to_string().into(),
            );
            let mut trigger = Map::new();
            trigger.insert("type".into(), "prometheus".into());
            trigger.insert("name".into(), "wva-desired-replicas".into());
            if let Some(auth) = &prom.auth {
                metadata.insert("authModes".into(), auth.modes.clone().into());
                trigger.insert(
                    "authenticationRef".into(),
                    json!({"name": auth.trigger_authentication, "kind": auth.kind}),
                );
            }
            trigger.insert("metadata".into(), Value::Object(metadata));
            let triggers = json!([trigger]);
            o.insert(
                "spec".into(),
                scaled_object_spec(keda, min.unwrap_or(1), triggers),
            );
            return Ok(Some(Value::Object(o)));
        }
        let Actuator::WvaHpa { hpa, .. } = actuator else {
            return Ok(None);
        };
        // WVA publishes the desired replicas of each variant (named after its HPA) as an
        // external metric; a Value target of 1 makes the HPA follow it exactly.
        let metric = MetricSpec {
            type_: "External".into(),
            external: Some(ExternalMetricSource {
                metric: MetricIdentifier {
                    name: wva::METRIC.into(),
                    selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "variant_name".to_string(),
                            own_name.clone(),
                        )])),
                        ..Default::default()
                    }),
                },
                target: MetricTarget {
                    type_: "Value".into(),
                    value: Some(Quantity("1".into())),
                    ..Default::default()
                },
            }),
            ..Default::default()
        };
        let hpa_object = meta.typed::<HorizontalPodAutoscaler>(&own_name, &labels, |h| {
            h.spec = HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some(api_version.into()),
                    kind: kind.into(),
                    name: target.into(),
                },
                // An HPA cannot go below 1 without the HPAScaleToZero feature gate.
                min_replicas: Some(int32(min.unwrap_or(1).max(1))),
                max_replicas: int32(max),
                metrics: Some(vec![metric]),
                behavior: None,
            };
        });
        let Value::Object(mut o) = hpa_object else {
            unreachable!("an object serialises as a JSON object")
        };
        annotate(&mut o);
        // The user's `behavior` as written (unknown fields kept).
        if let Some(b) = hpa.get("behavior").filter(|b| !b.is_null())
            && let Some(Value::Object(spec)) = o.get_mut("spec")
        {
            spec.insert("behavior".into(), b.clone());
        }
        Ok(Some(Value::Object(o)))
    }

    /// The actuator `scaling` asks for (KServe's order: `keda`, then `wva.keda`, then
    /// `wva.hpa`); None when it names none (the validating webhook refuses that).
    fn actuator<'s>(
        &self,
        scaling: &'s Map<String, Value>,
    ) -> Result<Option<Actuator<'s>>, JsonError> {
        let p = self.path.key("scaling");
        if let Some(keda) = json::child(scaling, "keda", &p)? {
            return Ok(Some(Actuator::Keda(keda)));
        }
        let Some(wva) = json::child(scaling, "wva", &p)? else {
            return Ok(None);
        };
        let wp = p.key("wva");
        if let Some(keda) = json::child(wva, "keda", &wp)? {
            return Ok(Some(Actuator::WvaKeda { wva, keda }));
        }
        Ok(json::child(wva, "hpa", &wp)?.map(|hpa| Actuator::WvaHpa { wva, hpa }))
    }
}

/// The autoscaler a workload's `scaling` asks for.
#[derive(Clone, Copy)]
enum Actuator<'a> {
    /// `scaling.keda`: a ScaledObject with the user's triggers.
    Keda(&'a Map<String, Value>),
    /// `scaling.wva.keda`: a ScaledObject on WVA's metric.
    WvaKeda {
        wva: &'a Map<String, Value>,
        keda: &'a Map<String, Value>,
    },
    /// `scaling.wva.hpa`: an HPA on WVA's metric.
    WvaHpa {
        wva: &'a Map<String, Value>,
        hpa: &'a Map<String, Value>,
    },
}

impl Actuator<'_> {
    /// The object it becomes for pool `pool` of service `n`.
    fn child(&self, n: &str, pool: Pool) -> ChildRef {
        match self {
            Actuator::Keda(_) | Actuator::WvaKeda { .. } => ChildRef {
                api_version: SCALED_OBJECT_API_VERSION,
                kind: "ScaledObject",
                name: names::scaled_object(n, pool),
            },
            Actuator::WvaHpa { .. } => ChildRef {
                api_version: HPA_API_VERSION,
                kind: "HorizontalPodAutoscaler",
                name: names::hpa(n, pool),
            },
        }
    }
}

/// The llm-d routing sidecar's init container (as the mutating webhook names it).
const ROUTING_SIDECAR: &str = "llm-d-routing-sidecar";

/// Does the pod spec run the llm-d routing sidecar (an init container of that name)?
fn has_routing_sidecar(pod: &Value) -> bool {
    pod.get("initContainers")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == ROUTING_SIDECAR))
}

/// As KServe, for decode pods with the routing sidecar: a Role reading pods and InferencePools
/// (KServe's `sidecarSSRFProtectionRules`: the sidecar checks where it forwards prefill
/// requests) bound to their ServiceAccount `sa`. Multi-node: `<n>-kserve-mn-role` /
/// `-mn-rb`; single-node: `<n>-kserve-role` / `-rb` labelled as KServe's `singleNodeLabels`.
fn sidecar_rbac(meta: &Meta, sa: &str, multi_node: bool, out: &mut Vec<Value>) {
    let n = &meta.name;
    let read = ["get", "list", "watch"];
    let (role_name, rb_name, labels): (_, _, &[(&str, &str)]) = if multi_node {
        (
            names::multi_node_role(n),
            names::multi_node_role_binding(n),
            &[],
        )
    } else {
        (
            names::single_node_role(n),
            names::single_node_role_binding(n),
            &[(APP_COMPONENT_LABEL, WORKLOAD_COMPONENT)],
        )
    };
    out.push(meta.typed::<Role>(&role_name, labels, |r| {
        r.rules = Some(vec![
            rule(&[""], &["pods"], &read),
            rule(
                &[INFERENCE_POOL_X_GROUP, INFERENCE_POOL_GROUP],
                &["inferencepools"],
                &read,
            ),
        ]);
    }));
    out.push(meta.typed::<RoleBinding>(&rb_name, labels, |rb| {
        rb.role_ref = role_ref("Role", &role_name);
        rb.subjects = Some(vec![service_account_subject(sa, &meta.namespace)]);
    }));
}

/// An RBAC rule (`apiGroups`, `resources`, `verbs`).
fn rule(api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: strings(api_groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A `roleRef` to `kind` (`Role`, `ClusterRole`) `name`.
fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
    }
}

/// The binding subject ServiceAccount `ns/name`.
fn service_account_subject(name: &str, ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

/// What the spec asks for, read once (shared by [`build`] and the status).
pub(crate) struct Plan<'a> {
    pub meta: Meta,
    decode: Workload<'a>,
    prefill: Option<Workload<'a>>,
    scheduler: Option<&'a Map<String, Value>>,
    pool_spec: Option<&'a Value>,
    route_spec: Option<&'a Value>,
}

/// A child the plan expects, for the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRef {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
}

impl<'a> Plan<'a> {
    pub fn of(svc: &'a Value) -> Result<Plan<'a>, BuildError> {
        let meta = Meta::of(svc)?;
        let root = json::as_obj(svc, &Path::ROOT)?;
        let sp = Path::Lit("spec");
        let spec = json::required(json::child(root, "spec", &Path::ROOT)?, &sp)?;
        let prefill = json::child(spec, "prefill", &sp)?;
        let decode = Workload {
            pool: Pool::Decode,
            path: sp,
            spec,
            view: PoolView::read(spec, &sp)?,
            role: if prefill.is_some() { "decode" } else { "both" },
        };
        let prefill = match prefill {
            None => None,
            Some(p) => {
                let path = Path::Lit("spec.prefill");
                Some(Workload {
                    pool: Pool::Prefill,
                    path,
                    spec: p,
                    view: PoolView::read(p, &path)?,
                    role: "prefill",
                })
            }
        };
        let router = json::child(spec, "router", &sp)?;
        let rp = Path::Lit("spec.router");
        let sched = match router {
            Some(r) => json::child(r, "scheduler", &rp)?,
            None => None,
        };
        let pool = match sched {
            Some(s) => json::child(s, "pool", &rp.key("scheduler"))?,
            None => None,
        };
        let pool_ref = pool.and_then(|p| p.get("ref")).filter(|v| !v.is_null());
        let (scheduler, pool_spec) = match (sched, pool_ref) {
            (Some(s), None) => (
                Some(s),
                pool.and_then(|p| p.get("spec")).filter(|v| v.is_object()),
            ),
            _ => (None, None),
        };
        let route_spec = router
            .and_then(|r| r.get("route"))
            .and_then(|r| r.get("http"))
            .and_then(|h| h.get("spec"))
            .filter(|v| v.is_object());
        Ok(Plan {
            meta,
            decode,
            prefill,
            scheduler,
            pool_spec,
            route_spec,
        })
    }

    fn workload_ref(w: &Workload) -> ChildRef {
        ChildRef {
            api_version: if w.multi_node() {
                LWS_API_VERSION
            } else {
                DEPLOYMENT_API_VERSION
            },
            kind: if w.multi_node() {
                "LeaderWorkerSet"
            } else {
                "Deployment"
            },
            name: String::new(),
        }
    }

    /// The decode workload object.
    pub fn decode_ref(&self) -> ChildRef {
        ChildRef {
            name: self.decode.name(&self.meta.name),
            ..Self::workload_ref(&self.decode)
        }
    }
    /// The prefill workload object, if any.
    pub fn prefill_ref(&self) -> Option<ChildRef> {
        self.prefill.as_ref().map(|p| ChildRef {
            name: p.name(&self.meta.name),
            ..Self::workload_ref(p)
        })
    }
    /// The autoscalers built for the decode and prefill workloads (HPA or KEDA ScaledObject),
    /// each with its pool.
    pub fn autoscaler_refs(&self) -> Vec<(Pool, ChildRef)> {
        std::iter::once(&self.decode)
            .chain(self.prefill.as_ref())
            .filter_map(|w| {
                let actuator = w.actuator(w.scaling().ok()??).ok()??;
                Some((w.pool, actuator.child(&self.meta.name, w.pool)))
            })
            .collect()
    }
    /// The scheduler Deployment, if built.
    pub fn scheduler_ref(&self) -> Option<ChildRef> {
        self.scheduler.map(|_| ChildRef {
            api_version: DEPLOYMENT_API_VERSION,
            kind: "Deployment",
            name: names::scheduler(&self.meta.name),
        })
    }
    /// The InferencePool, if built.
    pub fn pool_ref(&self) -> Option<ChildRef> {
        self.pool_spec.map(|_| ChildRef {
            api_version: INFERENCE_POOL_API_VERSION,
            kind: "InferencePool",
            name: names::pool(&self.meta.name),
        })
    }
    /// The HTTPRoute, if built.
    pub fn route_ref(&self) -> Option<ChildRef> {
        self.route_spec.map(|_| ChildRef {
            api_version: HTTP_ROUTE_API_VERSION,
            kind: "HTTPRoute",
            name: names::route(&self.meta.name),
        })
    }

    /// The standalone tokenizer, as KServe's `expectedTokenizerDeployment` /
    /// `expectedTokenizerService` (tokenizer.go): a Deployment `<n>-tokenizer` of one replica
    /// running `router.scheduler.tokenizer.template` (from the `kserve-config-llm-tokenizer`
    /// preset; the model attached at admission), and a Service `<n>-tokenizer` on port 8000
    /// `render-http`. Both labelled, and the pods selected, by KServe's `TokenizerLabels`
    /// (component `tokenizer`, name, part-of).
    fn tokenizer_objects(
        &self,
        s: &Map<String, Value>,
        out: &mut Vec<Value>,
    ) -> Result<(), BuildError> {
        let meta = &self.meta;
        let n = &meta.name;
        let tp = Path::Lit("spec.router.scheduler.tokenizer");
        let tokenizer = json::child(s, "tokenizer", &Path::Lit("spec.router.scheduler"))?;
        let pod = match tokenizer {
            Some(t) => json::child(t, "template", &tp)?,
            None => None,
        };
        let pod = json::required(pod, &tp.key("template"))?;
        let labels = json!({
            APP_COMPONENT_LABEL: TOKENIZER_COMPONENT,
            NAME_LABEL: n,
            PART_OF_LABEL: PART_OF,
        });
        let comp = [(APP_COMPONENT_LABEL, TOKENIZER_COMPONENT)];
        // As KServe: the tokenizer's model download is a storage initializer too.
        let mut pod = pod.clone();
        inject_confidential(&mut pod, meta);
        let mut d = meta.object(
            DEPLOYMENT_API_VERSION,
            "Deployment",
            &names::tokenizer(n),
            &comp,
        );
        d.insert(
            "spec".into(),
            json!({
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            }),
        );
        out.push(Value::Object(d));
        out.push(meta.typed::<Service>(&names::tokenizer(n), &comp, |svc| {
            svc.spec = Some(ServiceSpec {
                selector: Some(string_map(&labels)),
                ports: Some(vec![service_port(
                    TOKENIZER_PORT_NAME,
                    TOKENIZER_PORT,
                    IntOrString::String(TOKENIZER_PORT_NAME.into()),
                    Some("TCP"),
                )]),
                ..Default::default()
            });
        }));
        Ok(())
    }

    fn scheduler_objects(
        &self,
        s: &Map<String, Value>,
        out: &mut Vec<Value>,
    ) -> Result<(), BuildError> {
        let meta = &self.meta;
        let n = &meta.name;
        let comp = [(APP_COMPONENT_LABEL, SCHEDULER_COMPONENT)];

        out.push(
            meta.typed::<ServiceAccount>(&names::epp_sa(n), &comp, |sa| {
                sa.automount_service_account_token = Some(true);
            }),
        );
        out.push(meta.typed::<Role>(&names::epp_role(n), &comp, |r| {
            r.rules = Some(scheduler_role_rules());
        }));
        out.push(
            meta.typed::<RoleBinding>(&names::epp_role_binding(n), &comp, |rb| {
                rb.role_ref = role_ref("Role", &names::epp_role(n));
                rb.subjects = Some(vec![service_account_subject(
                    &names::epp_sa(n),
                    &meta.namespace,
                )]);
            }),
        );

        // As KServe: the picker authenticates `/metrics` scrapes (TokenReview,
        // SubjectAccessReview). Cluster-scoped: no namespace, no owner reference; pruned by
        // its labels.
        let crb_labels = [
            (APP_COMPONENT_LABEL, SCHEDULER_COMPONENT),
            (SERVICE_NAMESPACE_LABEL, meta.namespace.as_str()),
        ];
        out.push(meta.typed::<ClusterRoleBinding>(
            &names::epp_auth_binding(&meta.namespace, n),
            &crb_labels,
            |crb| {
                crb.metadata.namespace = None;
                crb.metadata.owner_references = None;
                crb.role_ref = role_ref("ClusterRole", "system:auth-delegator");
                crb.subjects = Some(vec![service_account_subject(
                    &names::epp_sa(n),
                    &meta.namespace,
                )]);
            },
        ));

        let selector = json!({
            NAME_LABEL: n,
            PART_OF_LABEL: PART_OF,
            APP_COMPONENT_LABEL: SCHEDULER_COMPONENT,
        });
        out.push(meta.typed::<Service>(&names::epp_service(n), &comp, |svc| {
            svc.spec = Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(string_map(&selector)),
                ports: Some(scheduler_service_ports(s)),
                ..Default::default()
            });
        }));

        let p = Path::Lit("spec.router.scheduler");
        let mut pod = json::required(json::child(s, "template", &p)?, &p.key("template"))?.clone();
        pod.insert("serviceAccountName".into(), names::epp_sa(n).into());
        let tokenizer_url = (crate::presets::tokenizer_enabled(s)
            && epp_version_at_least(s, (0, 9, 0)))
        .then(|| tokenizer_url(meta));
        wire_scheduler_config(s, &mut pod, tokenizer_url.as_deref())?;
        inject_scheduler_tracing(&mut pod, meta);
        let mut labels = json::child(s, "labels", &p)?.cloned().unwrap_or_default();
        if let Value::Object(sel) = &selector {
            labels.extend(sel.clone());
        }
        let mut pod_meta = Map::new();
        pod_meta.insert("labels".into(), Value::Object(labels));
        if let Some(a) = json::child(s, "annotations", &p)?
            && !a.is_empty()
        {
            pod_meta.insert("annotations".into(), Value::Object(a.clone()));
        }
        let replicas = json::get_int(s, "replicas", &p)?.unwrap_or(1);
        if replicas > 1 {
            enable_leader_election(&mut pod);
        }
        let mut d = meta.object(
            DEPLOYMENT_API_VERSION,
            "Deployment",
            &names::scheduler(n),
            &comp,
        );
        d.insert(
            "spec".into(),
            json!({
                "replicas": replicas,
                // As KServe: one active endpoint picker (stateful scorers); with leader election
                // a rolling update could never stop the old leader.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {"metadata": Value::Object(pod_meta), "spec": Value::Object(pod)},
            }),
        );
        out.push(Value::Object(d));
        Ok(())
    }
}

pub use crate::model::children::POOL_V1ALPHA2_API_VERSION;

/// A v1 InferencePool spec in v1alpha2's shape, as the inference extension's conversion
/// (`ConvertFrom`): `selector.matchLabels` → `selector`, the first of `targetPorts` →
/// `targetPortNumber`, `endpointPickerRef` → `extensionRef` (its `port.number` →
/// `portNumber`); unset fields stay unset (v1alpha2's defaults apply).
fn pool_spec_v1alpha2(v1: &Value) -> Value {
    let mut spec = Map::new();
    if let Some(sel) = v1["selector"]["matchLabels"].as_object() {
        spec.insert("selector".into(), Value::Object(sel.clone()));
    }
    if let Some(port) = v1["targetPorts"][0]["number"].as_i64() {
        spec.insert("targetPortNumber".into(), port.into());
    }
    if let Some(epp) = v1["endpointPickerRef"].as_object() {
        let mut ext = Map::new();
        for k in ["group", "kind", "name", "failureMode"] {
            if let Some(v) = epp.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                ext.insert(k.into(), v.into());
            }
        }
        if let Some(n) = epp.get("port").and_then(|p| p["number"].as_i64()) {
            ext.insert("portNumber".into(), n.into());
        }
        spec.insert("extensionRef".into(), Value::Object(ext));
    }
    Value::Object(spec)
}

/// The scheduler's Role, as KServe's: read pods, pools and objectives (both InferencePool API
/// groups and llm-d's), endpoint slices; manage leases (leader election).
fn scheduler_role_rules() -> Vec<PolicyRule> {
    let read = ["get", "list", "watch"];
    vec![
        rule(&[""], &["pods"], &read),
        rule(
            &[INFERENCE_POOL_GROUP, INFERENCE_POOL_X_GROUP],
            &["inferencepools", "inferenceobjectives", "inferencemodels"],
            &read,
        ),
        rule(
            &[INFERENCE_POOL_X_GROUP],
            &["inferencemodelrewrites", "inferencepoolimports"],
            &read,
        ),
        rule(
            &["llm-d.ai"],
            &["inferenceobjectives", "inferencemodelrewrites"],
            &read,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], &read),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
        ),
    ]
}

/// Ports of the scheduler Service, as KServe: the containers' ports named `grpc`,
/// `grpc-health`, `metrics` or `zmq` (target: the port's name), sorted by name. A template that
/// names none gets the endpoint picker's usual ports (9002, 9003, 9090), not a Service without
/// ports (refused by the API server).
fn scheduler_service_ports(s: &Map<String, Value>) -> Vec<ServicePort> {
    const WANTED: [&str; 4] = ["grpc", "grpc-health", "metrics", "zmq"];
    let mut ports: BTreeMap<String, ServicePort> = Default::default();
    let containers = s
        .get("template")
        .and_then(|t| t.get("containers"))
        .and_then(Value::as_array);
    for port in containers.into_iter().flatten().flat_map(|c| {
        c.get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }) {
        let (Some(name), Some(number)) = (
            port.get("name").and_then(Value::as_str),
            port.get("containerPort").and_then(Value::as_i64),
        ) else {
            continue;
        };
        if !WANTED.contains(&name) {
            continue;
        }
        let protocol = port.get("protocol").and_then(Value::as_str);
        let target = IntOrString::String(name.into());
        ports.insert(
            name.to_string(),
            service_port(name, number, target, protocol),
        );
    }
    if ports.is_empty() {
        return [
            ("grpc", EPP_GRPC_PORT),
            ("grpc-health", EPP_GRPC_HEALTH_PORT),
            ("metrics", EPP_METRICS_PORT),
        ]
        .into_iter()
        .map(|(name, port)| service_port(name, port, IntOrString::Int(int32(port)), Some("TCP")))
        .collect();
    }
    ports.into_values().collect()
}

/// A Service port `name` (`port`, `targetPort`, `protocol` when given).
fn service_port(name: &str, port: i64, target: IntOrString, protocol: Option<&str>) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: int32(port),
        target_port: Some(target),
        protocol: protocol.map(str::to_string),
        ..Default::default()
    }
}

/// A port number or count as int32 (saturating: the API server refuses what is out of range;
/// replica counts in a status are int32 too).
pub(super) fn int32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

/// The string entries of a JSON object (labels, selectors).
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// With more than one replica, as KServe: `--ha-enable-leader-election` on the `main`
/// container (unless its args have it).
fn enable_leader_election(pod: &mut Map<String, Value>) {
    const FLAG: &str = "--ha-enable-leader-election";
    let Some(Value::Array(containers)) = pod.get_mut("containers") else {
        return;
    };
    let Some(Value::Object(main)) = containers.iter_mut().find(|c| c["name"] == "main") else {
        return;
    };
    let args = main.entry("args").or_insert_with(|| json!([]));
    if let Value::Array(args) = args
        && !args
            .iter()
            .any(|a| a == FLAG || a == "-ha-enable-leader-election")
    {
        args.push(FLAG.into());
    }
}

/// Where a `config.ref` ConfigMap is mounted in the scheduler container.
pub const SCHEDULER_CONFIG_DIR: &str = "/etc/llmisvc/epp";

/// Passes `router.scheduler.config` to the scheduler's `main` container (or its first one):
/// `inline` as `--config-text <yaml>` (wired to the standalone tokenizer at `tokenizer_url`
/// when given, see [`with_tokenizer`]), `ref` as a ConfigMap volume and
/// `--config-file <dir>/<key>` (key `epp` when unset or empty, as KServe; KServe reads the
/// ConfigMap and inlines it, see README's Differences). Nothing is added when the args already name a config.
fn wire_scheduler_config(
    s: &Map<String, Value>,
    pod: &mut Map<String, Value>,
    tokenizer_url: Option<&str>,
) -> Result<(), BuildError> {
    let p = Path::Lit("spec.router.scheduler");
    let Some(cfg) = json::child(s, "config", &p)? else {
        return Ok(());
    };
    let inline = cfg.get("inline").filter(|v| v.is_object());
    let cref = json::child(cfg, "ref", &p.key("config"))?;
    if inline.is_none() && cref.is_none() {
        return Ok(());
    }
    let Some(Value::Array(containers)) = pod.get_mut("containers") else {
        return Ok(());
    };
    let idx = containers
        .iter()
        .position(|c| c["name"] == "main")
        .unwrap_or(0);
    let Some(Value::Object(c)) = containers.get_mut(idx) else {
        return Ok(());
    };
    let args = c.entry("args").or_insert_with(|| json!([]));
    let Value::Array(args) = args else {
        let at = Path::Lit("spec.router.scheduler.template.containers[main].args");
        return Err(json::wrong(&at, json::LIST, args).into());
    };
    if args
        .iter()
        .any(|a| a == "--config-text" || a == "--config-file")
    {
        return Ok(());
    }
    let mut volume = None;
    if let Some(inline) = inline {
        let wired;
        let inline = match tokenizer_url {
            Some(url) => {
                wired = with_tokenizer(inline, url);
                &wired
            }
            None => inline,
        };
        let text = serde_norway::to_string(inline).unwrap_or_default();
        args.push("--config-text".into());
        args.push(text.into());
    } else if let Some(r) = cref {
        // KServe's default key (config_merge.go: `Ref.Key == ""` → "epp").
        let key = r
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .unwrap_or("epp");
        let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
        args.push("--config-file".into());
        args.push(format!("{SCHEDULER_CONFIG_DIR}/{key}").into());
        let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
        if let Value::Array(m) = mounts {
            m.push(
                json!({"name": "epp-config", "mountPath": SCHEDULER_CONFIG_DIR, "readOnly": true}),
            );
        }
        volume = Some(json!({"name": "epp-config", "configMap": {"name": name}}));
    }
    if let Some(v) = volume
        && let Value::Array(vols) = pod.entry("volumes").or_insert_with(|| json!([]))
    {
        vols.push(v);
    }
    Ok(())
}

/// The standalone tokenizer's HTTP port and its name (KServe's `tokenizerServicePort`,
/// `tokenizerPortName`).
pub const TOKENIZER_PORT: i64 = 8000;
const TOKENIZER_PORT_NAME: &str = "render-http";
/// `app.kubernetes.io/component` of the tokenizer's objects (KServe's `LLMComponentTokenizer`).
pub const TOKENIZER_COMPONENT: &str = "tokenizer";
/// The model name the token-producer asks the tokenizer for (KServe's `tokenizerModelName`:
/// the path `vllm launch render` serves).
const TOKENIZER_MODEL_NAME: &str = "/mnt/models/base";

/// The tokenizer Service's URL, as KServe's `tokenizerServiceURL` without TLS:
/// `http://<n>-tokenizer.<ns>.svc.cluster.local:8000`.
fn tokenizer_url(meta: &Meta) -> String {
    format!(
        "http://{}.{}.svc.cluster.local:{TOKENIZER_PORT}",
        names::tokenizer(&meta.name),
        meta.namespace
    )
}

/// Whether the scheduler pod's `app.kubernetes.io/version` annotation (`router.scheduler.
/// annotations`, KServe's way of telling the endpoint picker's release) is at least `min`. As
/// KServe's `schedulerTransform`: absent counts as 0.0.0; a pre-release (`0.9.0-rc1`) is below
/// its release. A value that is not `X.Y.Z` (KServe fails the reconcile) counts as absent.
fn epp_version_at_least(s: &Map<String, Value>, min: (u64, u64, u64)) -> bool {
    let Some(v) = s
        .get("annotations")
        .and_then(|a| a.get("app.kubernetes.io/version"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    let (core, pre) = match v.split_once('-') {
        Some((c, _)) => (c, true),
        None => (v.split('+').next().unwrap_or(v), false),
    };
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    let [Some(a), Some(b), Some(c)] = parts[..] else {
        return false;
    };
    (a, b, c) > min || ((a, b, c) == min && !pre)
}

/// An EndpointPickerConfig wired to the standalone tokenizer at `url`, as KServe's
/// `withDecomposePrecisePrefixCacheScorer` then `withInjectTokenProducerConfig` (scheduler.go,
/// applied from endpoint picker 0.9.0): the first legacy `precise-prefix-cache-scorer` plugin
/// becomes `token-producer` (`modelName: /mnt/models/base`, `vllm.url`), a
/// `precise-prefix-cache-producer` with its parameters (less `indexerConfig.tokenizersPoolConfig`;
/// `indexerConfig.tokenProcessorConfig` moved up unless set there) and a `prefix-cache-scorer`
/// reading it, in its place (other `prefix-cache-scorer` plugins removed; profile references
/// renamed and deduplicated); every `token-producer` gets `modelName` and `vllm.url` where unset.
pub fn with_tokenizer(config: &Value, url: &str) -> Value {
    const LEGACY: &str = "precise-prefix-cache-scorer";
    const PRODUCER: &str = "precise-prefix-cache-producer";
    const SCORER: &str = "prefix-cache-scorer";
    let mut config = config.clone();
    let Some(plugins) = config.get_mut("plugins").and_then(Value::as_array_mut) else {
        return config;
    };
    if let Some(idx) = plugins.iter().position(|p| p["type"] == LEGACY) {
        let mut producer = Map::new();
        producer.insert("type".into(), PRODUCER.into());
        if let Some(params) = migrate_producer_params(&plugins[idx]) {
            producer.insert("parameters".into(), Value::Object(params));
        }
        let new = [
            json!({"type": "token-producer", "parameters": {"modelName": TOKENIZER_MODEL_NAME, "vllm": {"url": url}}}),
            Value::Object(producer),
            json!({"type": SCORER, "parameters": {"prefixMatchInfoProducerName": PRODUCER}}),
        ];
        let mut remaining: Vec<Value> = plugins
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != idx && p["type"] != SCORER)
            .map(|(_, p)| p.clone())
            .collect();
        let at = idx.min(remaining.len());
        remaining.splice(at..at, new);
        *plugins = remaining;
        for profile in config
            .get_mut("schedulingProfiles")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(refs) = profile.get_mut("plugins").and_then(Value::as_array_mut) else {
                continue;
            };
            for r in refs.iter_mut() {
                if r["pluginRef"] == LEGACY {
                    r["pluginRef"] = SCORER.into();
                }
            }
            let mut seen = false;
            refs.retain(|r| {
                if r["pluginRef"] != SCORER {
                    return true;
                }
                !std::mem::replace(&mut seen, true)
            });
        }
    }
    for p in config
        .get_mut("plugins")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter(|p| p["type"] == "token-producer")
    {
        let Some(p) = p.as_object_mut() else { continue };
        let params = p.entry("parameters").or_insert_with(|| json!({}));
        if !params.is_object() {
            *params = json!({});
        }
        let Some(params) = params.as_object_mut() else {
            continue;
        };
        params
            .entry("modelName")
            .or_insert_with(|| TOKENIZER_MODEL_NAME.into());
        let vllm = params.entry("vllm").or_insert_with(|| json!({}));
        if !vllm.is_object() {
            *vllm = json!({});
        }
        if let Some(vllm) = vllm.as_object_mut() {
            vllm.entry("url").or_insert_with(|| url.into());
        }
    }
    config
}

/// KServe's `migrateProducerParams`: the legacy plugin's parameters for the producer.
fn migrate_producer_params(legacy: &Value) -> Option<Map<String, Value>> {
    let params = legacy.get("parameters").and_then(Value::as_object)?;
    let mut out = Map::new();
    for (k, v) in params {
        if k != "indexerConfig" {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let Some(ic) = v.as_object() else { continue };
        let mut cleaned = Map::new();
        for (ik, iv) in ic {
            match ik.as_str() {
                "tokenizersPoolConfig" => {}
                "tokenProcessorConfig" => {
                    if !params.contains_key("tokenProcessorConfig") {
                        out.insert(ik.clone(), iv.clone());
                    }
                }
                _ => {
                    cleaned.insert(ik.clone(), iv.clone());
                }
            }
        }
        if !cleaned.is_empty() {
            out.insert(k.clone(), Value::Object(cleaned));
        }
    }
    (!out.is_empty()).then_some(out)
}

fn spec_of(svc: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    svc.get("spec")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// KServe's managed DRA (`serving.kserve.io/exp-dra-*` annotations, admitted by
/// `validate::dra`): a ResourceClaimTemplate `<n>-managed-dra` with one request `device` of
/// the device class (`count` when above 1, the CEL selectors, one per line), claimed as
/// `managed-device` by every pod template and by its first container (or the one the
/// container-name annotation names; none when no container has that name).
struct ManagedDra {
    class: String,
    count: i64,
    cel: Vec<String>,
    container: Option<String>,
}

/// The pod's name of the managed claim.
const MANAGED_DRA_CLAIM: &str = "managed-device";

impl ManagedDra {
    fn of(svc: &Value) -> Result<Option<ManagedDra>, BuildError> {
        use crate::validate::dra::{CEL_SELECTOR, CONTAINER_NAME, DEVICE_CLASS, DEVICE_COUNT};
        let ann = &svc["metadata"]["annotations"];
        let get = |k: &str| ann.get(k).and_then(Value::as_str);
        let Some(class) = get(DEVICE_CLASS) else {
            return Ok(None);
        };
        let count = match get(DEVICE_COUNT) {
            None => 1,
            Some(raw) => {
                crate::validate::dra::device_count(raw).map_err(|_| JsonError::WrongType {
                    path: json::sub_path("metadata.annotations", DEVICE_COUNT),
                    expected: "a whole number of devices, at least 1",
                    found: json::STRING,
                    value: json::render(&Value::from(raw)),
                })?
            }
        };
        Ok(Some(ManagedDra {
            class: class.trim().to_string(),
            count,
            cel: get(CEL_SELECTOR)
                .unwrap_or_default()
                .split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            container: get(CONTAINER_NAME)
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        }))
    }

    /// `svc` with the claim wired into every pod template (decode and prefill, leaders and
    /// workers), as KServe's `injectManagedDRA`.
    fn inject(&self, svc: &Value) -> Value {
        let mut svc = svc.clone();
        let template = names::child_name(
            svc["metadata"]["name"].as_str().unwrap_or_default(),
            "-managed-dra",
        );
        let spec = &mut svc["spec"];
        for pod in [
            &["template"][..],
            &["worker"],
            &["prefill", "template"],
            &["prefill", "worker"],
        ] {
            let mut p = Some(&mut *spec);
            for k in pod {
                p = p.and_then(|v| v.get_mut(*k));
            }
            if let Some(Value::Object(pod)) = p {
                self.inject_pod(pod, &template);
            }
        }
        svc
    }

    fn inject_pod(&self, pod: &mut Map<String, Value>, template: &str) {
        if let Value::Array(claims) = pod.entry("resourceClaims").or_insert_with(|| json!([]))
            && !claims.iter().any(|c| c["name"] == MANAGED_DRA_CLAIM)
        {
            claims.push(json!({"name": MANAGED_DRA_CLAIM, "resourceClaimTemplateName": template}));
        }
        let Some(Value::Array(containers)) = pod.get_mut("containers") else {
            return;
        };
        let c = match &self.container {
            None => containers.first_mut(),
            Some(n) => containers.iter_mut().find(|c| c["name"] == n.as_str()),
        };
        let Some(Value::Object(c)) = c else {
            return;
        };
        let resources = c.entry("resources").or_insert_with(|| json!({}));
        if let Value::Object(r) = resources
            && let Value::Array(claims) = r.entry("claims").or_insert_with(|| json!([]))
            && !claims.iter().any(|c| c["name"] == MANAGED_DRA_CLAIM)
        {
            claims.push(json!({"name": MANAGED_DRA_CLAIM}));
        }
    }

    fn claim_template(&self, meta: &Meta) -> Value {
        let mut exactly = Map::new();
        exactly.insert("deviceClassName".into(), self.class.clone().into());
        if self.count > 1 {
            exactly.insert("count".into(), self.count.into());
        }
        if !self.cel.is_empty() {
            exactly.insert(
                "selectors".into(),
                self.cel
                    .iter()
                    .map(|e| json!({"cel": {"expression": e}}))
                    .collect(),
            );
        }
        let mut o = meta.object(
            "resource.k8s.io/v1",
            "ResourceClaimTemplate",
            &names::child_name(&meta.name, "-managed-dra"),
            &[],
        );
        o.insert(
            "spec".into(),
            json!({"spec": {"devices": {"requests": [{"name": "device", "exactly": exactly}]}}}),
        );
        Value::Object(o)
    }
}

/// As KServe's `injectSecretsFromDefaultServiceAccount`: every ServiceAccount among `children`
/// (scheduler, multi-node, single-node sidecar) takes the `imagePullSecrets` and `secrets` of
/// `default_sa`, the namespace's `default` ServiceAccount (replaced, not merged; a list the
/// default one lacks is left out). The reconciler passes it when it can read it (KServe logs and
/// goes on when it cannot); `render --objects`, without a cluster, does not.
pub fn inject_default_sa_secrets(children: &mut [Value], default_sa: &Value) {
    for c in children
        .iter_mut()
        .filter(|c| c["kind"] == "ServiceAccount")
    {
        let Some(c) = c.as_object_mut() else { continue };
        for k in ["imagePullSecrets", "secrets"] {
            match default_sa.get(k).and_then(Value::as_array) {
                Some(v) if !v.is_empty() => {
                    c.insert(k.into(), Value::Array(v.clone()));
                }
                _ => {
                    c.remove(k);
                }
            }
        }
    }
}

/// Service name of the endpoint picker's traces (KServe tracing.go `defaultSchedulerServiceName`).
pub const TRACING_SCHEDULER_SERVICE: &str = "inference-scheduler";
/// Service name prefix of vLLM's traces, `-decode` / `-prefill` appended (KServe tracing.go
/// `defaultServerServiceName`).
pub const TRACING_SERVER_SERVICE: &str = "inference-server";

/// Whether `args` has `flag` as `flag` or `flag=value` (KServe tracing.go `hasArg`).
fn has_arg(args: &[Value], flag: &str) -> bool {
    args.iter().filter_map(Value::as_str).any(|a| {
        a == flag
            || a.strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// Appends the env vars of `env` whose names `container` does not have yet: the user's own
/// values win (KServe tracing.go `mergeEnvVars`; `AddOrReplaceEnv` followed by the user's
/// override for the storage initializer). A container whose `env` is not a list is left alone
/// (validation reports it).
fn merge_env(container: &mut Map<String, Value>, env: Vec<Value>) {
    let list = container
        .entry("env")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else { return };
    for e in env {
        if !list.iter().any(|x| x.get("name") == e.get("name")) {
            list.push(e);
        }
    }
}

/// The container named `name` of a pod spec's `key` list (`containers`, `initContainers`).
fn container_mut<'a>(
    pod: &'a mut Map<String, Value>,
    key: &str,
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    pod.get_mut(key)?
        .as_array_mut()?
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

/// The OpenTelemetry env of a traced container, as KServe's tracing.go: `OTEL_SERVICE_NAME`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_EXPORTER`, `OTEL_TRACES_SAMPLER`,
/// `OTEL_TRACES_SAMPLER_ARG` from `spec.tracing` (`exporterEndpoint`, `exporter`, `sampler`,
/// `samplerArg`; empty when unset), then the Kubernetes resource attributes
/// (`otelResourceAttributeEnvVars`: node and pod name by the downward API, composed into
/// `OTEL_RESOURCE_ATTRIBUTES` with the namespace and `llmisvc.name`).
fn tracing_env(t: &Map<String, Value>, meta: &Meta, service: &str, endpoint: &str) -> Vec<Value> {
    let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
    vec![
        json!({"name": "OTEL_SERVICE_NAME", "value": service}),
        json!({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint}),
        json!({"name": "OTEL_TRACES_EXPORTER", "value": field("exporter")}),
        json!({"name": "OTEL_TRACES_SAMPLER", "value": field("sampler")}),
        json!({"name": "OTEL_TRACES_SAMPLER_ARG", "value": field("samplerArg")}),
        json!({"name": "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}),
        json!({"name": "OTEL_RESOURCE_ATTRIBUTES_POD_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
        json!({"name": "OTEL_RESOURCE_ATTRIBUTES", "value": format!(
            "k8s.namespace.name={},k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME),k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME),llmisvc.name={}",
            meta.namespace, meta.name)}),
    ]
}

/// vLLM tracing of a workload pod spec (`role_suffix` `-decode` or `-prefill`), as KServe's
/// `injectServerTracing` (tracing.go): when `spec.tracing` is set with a non-empty
/// `exporterEndpoint` (the `kserve-config-llm-tracing` preset's default is
/// `http://otel-collector:4317`), the `main` container gets `--otlp-traces-endpoint <endpoint>`
/// and `--collect-detailed-traces all` (each unless already passed) appended to its `args`,
/// and the [`tracing_env`] with service name `inference-server<role_suffix>`.
pub fn inject_server_tracing(pod: &mut Map<String, Value>, meta: &Meta, role_suffix: &str) {
    let Some(t) = &meta.tracing else { return };
    let endpoint = t
        .get("exporterEndpoint")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if endpoint.is_empty() {
        return;
    }
    let Some(main) = container_mut(pod, "containers", "main") else {
        return;
    };
    if let Value::Array(args) = main
        .entry("args")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        if !has_arg(args, "--otlp-traces-endpoint") {
            args.push("--otlp-traces-endpoint".into());
            args.push(endpoint.into());
        }
        if !has_arg(args, "--collect-detailed-traces") {
            args.push("--collect-detailed-traces".into());
            args.push("all".into());
        }
    }
    let service = format!("{TRACING_SERVER_SERVICE}{role_suffix}");
    merge_env(main, tracing_env(t, meta, &service, endpoint));
}

/// Endpoint-picker tracing, as KServe's `injectSchedulerTracing` (tracing.go): when
/// `spec.tracing` is set, the scheduler's `main` container gets `--tracing=true` (unless it
/// passes `--tracing` / `-tracing`) and the [`tracing_env`] with service name
/// `inference-scheduler`.
pub fn inject_scheduler_tracing(pod: &mut Map<String, Value>, meta: &Meta) {
    let Some(t) = &meta.tracing else { return };
    let Some(main) = container_mut(pod, "containers", "main") else {
        return;
    };
    if let Value::Array(args) = main
        .entry("args")
        .or_insert_with(|| Value::Array(Vec::new()))
        && !has_arg(args, "--tracing")
        && !has_arg(args, "-tracing")
    {
        args.push("--tracing=true".into());
    }
    let endpoint = t
        .get("exporterEndpoint")
        .and_then(Value::as_str)
        .unwrap_or_default();
    merge_env(
        main,
        tracing_env(t, meta, TRACING_SCHEDULER_SERVICE, endpoint),
    );
}

/// Confidential model serving, as KServe's `attachStorageInitializer` with
/// `ApplyConfidentialContainerConfig` (workload_storage.go, pkg/utils/confidential.go): with
/// `spec.model.confidential.enabled: true`, the model's `storage-initializer` init container
/// gets `CONFIDENTIAL_ENABLED=true` and, when `resourceId` is set, `CONFIDENTIAL_RESOURCE_ID`
/// (the KBS key `kbs:///<repo>/<type>/<tag>`), so that the storage initializer decrypts the
/// downloaded model with a key released after TEE attestation. A value the user gave the init
/// container wins. Pods without a storage initializer (`pvc://`, `oci://`, storage initializer
/// disabled) are unchanged (admission warns for those URIs, as KServe's webhook).
pub fn inject_confidential(pod: &mut Map<String, Value>, meta: &Meta) {
    let Some(id) = &meta.confidential else { return };
    let Some(init) = container_mut(pod, "initContainers", "storage-initializer") else {
        return;
    };
    let mut env = vec![json!({"name": "CONFIDENTIAL_ENABLED", "value": "true"})];
    if !id.is_empty() {
        env.push(json!({"name": "CONFIDENTIAL_RESOURCE_ID", "value": id}));
    }
    merge_env(init, env);
}

/// The child objects of `svc` (a whole `serving.kserve.io/v1alpha2` LLMInferenceService, as
/// stored), in a fixed order: scheduler RBAC, Services, workloads, autoscalers, InferencePool,
/// HTTPRoute. Without cluster settings: see [`build_with`].
pub fn build(svc: &Value) -> Result<Vec<Value>, BuildError> {
    build_with(svc, &BuildOptions::default())
}

/// [`build`] with the reconciler's cluster settings. A [`stopped`] service has no children.
/// A service in a `route.group` built alone routes to its own backend only (weighted by its
/// `route.weight`): see [`build_grouped`].
pub fn build_with(svc: &Value, opts: &BuildOptions) -> Result<Vec<Value>, BuildError> {
    build_grouped(svc, opts, &[])
}

/// [`build_with`] for a service of a `spec.router.route.group`: `others` are the other
/// LLMInferenceServices of its namespace as stored (any group: those of another group or
/// namespace are ignored). The HTTPRoute then carries weighted backendRefs to every eligible
/// member and KServe's routing-group label ([`super::group`]).
pub fn build_grouped(
    svc: &Value,
    opts: &BuildOptions,
    others: &[Value],
) -> Result<Vec<Value>, BuildError> {
    if stopped(svc) {
        return Ok(vec![]);
    }
    let pending = crate::presets::missing_base_refs(svc);
    if !pending.is_empty() {
        return Err(BuildError::PendingBaseRefs(pending));
    }
    let dra = ManagedDra::of(svc)?;
    let with_dra;
    let svc = match &dra {
        Some(d) => {
            with_dra = d.inject(svc);
            &with_dra
        }
        None => svc,
    };
    let plan = Plan::of(svc)?;
    let meta = &plan.meta;
    let mut out = Vec::new();
    if let Some(s) = plan.scheduler {
        // As KServe: the tokenizer before the scheduler that calls it.
        if crate::presets::tokenizer_enabled(s) {
            plan.tokenizer_objects(s, &mut out)?;
        }
        plan.scheduler_objects(s, &mut out)?;
    }
    if let Some(d) = &dra {
        out.push(d.claim_template(meta));
    }
    // As KServe: the spec's labels on the Service too (ours kept: children are found by them),
    // and the selector of every serving pod, decode and prefill alike.
    let mut ws_labels = json::child(spec_of(svc), "labels", &Path::Lit("spec"))?
        .cloned()
        .unwrap_or_default();
    ws_labels.insert(APP_COMPONENT_LABEL.into(), WORKLOAD_COMPONENT.into());
    out.push(meta.typed_labelled::<Service>(
        &names::workload_service(&meta.name),
        ws_labels,
        |ws| {
            let mut port = service_port(
                "http",
                WORKLOAD_PORT,
                IntOrString::Int(int32(WORKLOAD_PORT)),
                Some("TCP"),
            );
            port.app_protocol = Some("http".into());
            ws.spec = Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(BTreeMap::from([
                    (PART_OF_LABEL.to_string(), PART_OF.to_string()),
                    (NAME_LABEL.to_string(), meta.name.clone()),
                    (COMPONENT_LABEL.to_string(), "workload".to_string()),
                ])),
                ports: Some(vec![port]),
                ..Default::default()
            });
        },
    ));
    out.extend(plan.decode.build(meta, opts)?);
    if let Some(p) = &plan.prefill {
        out.extend(p.build(meta, opts)?);
    }
    if let Some(spec) = plan.pool_spec {
        let mut o = meta.object(
            INFERENCE_POOL_API_VERSION,
            "InferencePool",
            &names::pool(&meta.name),
            &[(APP_COMPONENT_LABEL, SCHEDULER_COMPONENT)],
        );
        o.insert("spec".into(), spec.clone());
        out.push(Value::Object(o));
        // As KServe, the same pool in the older API too (same name, other group); the
        // reconciler applies it only where that API is served.
        let mut o = meta.object(
            POOL_V1ALPHA2_API_VERSION,
            "InferencePool",
            &names::pool(&meta.name),
            &[(APP_COMPONENT_LABEL, SCHEDULER_COMPONENT)],
        );
        o.insert("spec".into(), pool_spec_v1alpha2(spec));
        out.push(Value::Object(o));
    }
    if let Some(spec) = plan.route_spec {
        let group = super::group::resolve(svc, others);
        let mut labels = vec![(APP_COMPONENT_LABEL, ROUTER_COMPONENT)];
        if let Some(g) = &group {
            labels.push((super::group::ROUTING_GROUP_LABEL, g.name.as_str()));
        }
        let mut o = meta.object(
            HTTP_ROUTE_API_VERSION,
            "HTTPRoute",
            &names::route(&meta.name),
            &labels,
        );
        let mut spec = spec.clone();
        if let Some(g) = &group {
            super::group::rewrite_rules(&mut spec, svc, g);
        }
        o.insert("spec".into(), spec);
        out.push(Value::Object(o));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({
            "apiVersion": OWNER_API_VERSION,
            "kind": "LLMInferenceService",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u1"},
            "spec": spec,
        })
    }

    fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} not built"))
    }

    #[test]
    fn single_node_deployment_and_service() {
        let objs = build(&svc(json!({"replicas": 2, "template": {"containers": []}}))).unwrap();
        assert_eq!(objs.len(), 2);
        let d = find(&objs, "Deployment", "m-kserve");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"][ROLE_LABEL],
            "both"
        );
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(d["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
        find(&objs, "Service", "m-kserve-workload-svc");
    }

    #[test]
    fn lws_group_size() {
        let objs = build(&svc(json!({
            "parallelism": {"data": 16, "dataLocal": 8},
            "template": {}, "worker": {},
        })))
        .unwrap();
        let l = find(&objs, "LeaderWorkerSet", "m-kserve-mn");
        assert_eq!(l["spec"]["leaderWorkerTemplate"]["size"], 2);
        assert_eq!(l["spec"]["startupPolicy"], "LeaderCreated");
        let objs = build(&svc(json!({
            "parallelism": {"pipeline": 4}, "template": {}, "worker": {},
        })))
        .unwrap();
        let l = find(&objs, "LeaderWorkerSet", "m-kserve-mn");
        assert_eq!(l["spec"]["leaderWorkerTemplate"]["size"], 4);
    }

    /// The HPA is a k8s-openapi object; the user's `behavior` reaches it as written (a field
    /// k8s-openapi does not know included).
    #[test]
    fn hpa_keeps_the_users_behavior() {
        let behavior = json!({"scaleDown": {"stabilizationWindowSeconds": 60, "futureField": 1}});
        let objs = build(&svc(json!({
            "template": {},
            "scaling": {"maxReplicas": 3, "wva": {"hpa": {"behavior": behavior}}},
        })))
        .unwrap();
        let h = find(&objs, "HorizontalPodAutoscaler", "m-kserve-hpa");
        assert_eq!(h["spec"]["behavior"], behavior);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(h["spec"]["metrics"][0]["external"]["target"]["value"], "1");
        assert_eq!(
            h["metadata"]["annotations"][wva::MANAGED_ANNOTATION],
            "true"
        );
    }

    #[test]
    fn scaling_drops_replicas() {
        let objs = build(&svc(json!({
            "template": {}, "scaling": {"minReplicas": 1, "maxReplicas": 3, "wva": {"hpa": {}}},
        })))
        .unwrap();
        assert!(
            find(&objs, "Deployment", "m-kserve")["spec"]
                .get("replicas")
                .is_none()
        );
        let h = find(&objs, "HorizontalPodAutoscaler", "m-kserve-hpa");
        assert_eq!(h["spec"]["maxReplicas"], 3);
        let objs = build(&svc(json!({
            "template": {}, "scaling": {"maxReplicas": 3, "keda": {"triggers": [{"type": "cpu", "metadata": {}}]}},
        })))
        .unwrap();
        find(&objs, "ScaledObject", "m-kserve-keda");
    }

    /// Unknown fields kept: a pod template field k8s-openapi does not know (a newer
    /// Kubernetes field, or an API server extension) reaches every workload built from the
    /// user's templates (decode, worker, prefill, scheduler). Guards a typed builder too: a
    /// round trip through `k8s_openapi::api::core::v1::PodSpec` would drop it (checked here).
    #[test]
    fn pod_template_fields_unknown_to_k8s_openapi_survive() {
        let pod = json!({"futurePodField": {"x": 1},
            "containers": [{"name": "main", "futureContainerField": true}]});
        let typed: k8s_openapi::api::core::v1::PodSpec =
            serde_json::from_value(pod.clone()).unwrap();
        let round_trip = serde_json::to_value(typed).unwrap();
        assert!(round_trip.get("futurePodField").is_none(), "{round_trip}");
        assert!(
            round_trip["containers"][0]
                .get("futureContainerField")
                .is_none()
        );

        let check = |o: &Value, path: &[&str]| {
            let mut p = o;
            for k in path {
                p = &p[k];
            }
            assert_eq!(
                p["futurePodField"],
                json!({"x": 1}),
                "{} {}",
                o["kind"],
                o["metadata"]["name"]
            );
            let main = p["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "main");
            assert_eq!(
                main.unwrap()["futureContainerField"],
                true,
                "{}",
                o["metadata"]["name"]
            );
        };
        let objs = build(&svc(json!({"template": pod, "prefill": {"template": pod},
            "router": {"scheduler": {"template": pod, "pool": {"spec": {}}}}})))
        .unwrap();
        for name in ["m-kserve", "m-kserve-prefill", "m-kserve-router-scheduler"] {
            check(
                find(&objs, "Deployment", name),
                &["spec", "template", "spec"],
            );
        }
        let objs = build(&svc(json!({"template": pod, "worker": pod,
            "parallelism": {"pipeline": 2}})))
        .unwrap();
        let lws = find(&objs, "LeaderWorkerSet", "m-kserve-mn");
        check(
            lws,
            &["spec", "leaderWorkerTemplate", "leaderTemplate", "spec"],
        );
        check(
            lws,
            &["spec", "leaderWorkerTemplate", "workerTemplate", "spec"],
        );
    }

    #[test]
    fn pool_ref_builds_no_scheduler() {
        let objs = build(&svc(json!({
            "template": {},
            "router": {"scheduler": {"pool": {"ref": {"name": "x"}}, "template": {}}},
        })))
        .unwrap();
        assert_eq!(objs.len(), 2);
    }

    #[test]
    fn scheduler_config() {
        let main = json!({"containers": [{"name": "main", "args": ["--pool-name", "p"]}]});
        let objs = build(&svc(json!({"template": {}, "router": {"scheduler": {
            "template": main, "config": {"inline": {"kind": "EndpointPickerConfig"}}}}})))
        .unwrap();
        let d = find(&objs, "Deployment", "m-kserve-router-scheduler");
        let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[2], "--config-text");
        assert_eq!(args[3], "kind: EndpointPickerConfig\n");
        let objs = build(&svc(json!({"template": {}, "router": {"scheduler": {
            "template": main, "config": {"ref": {"name": "cm", "key": "epp.yaml"}}}}})))
        .unwrap();
        let pod =
            &find(&objs, "Deployment", "m-kserve-router-scheduler")["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["args"][3], "/etc/llmisvc/epp/epp.yaml");
        assert_eq!(pod["volumes"][0]["configMap"]["name"], "cm");
        // KServe's default key.
        for r in [json!({"name": "cm"}), json!({"name": "cm", "key": ""})] {
            let objs = build(&svc(json!({"template": {}, "router": {"scheduler": {
                "template": main, "config": {"ref": r}}}})))
            .unwrap();
            let pod =
                &find(&objs, "Deployment", "m-kserve-router-scheduler")["spec"]["template"]["spec"];
            assert_eq!(pod["containers"][0]["args"][3], "/etc/llmisvc/epp/epp");
        }
    }

    /// As KServe: the service's Multus, Kueue, Prometheus and local-model labels/annotations
    /// reach the workloads and their pods (LeaderWorkerSets also take `leaderworkerset.sigs.k8s.io`
    /// ones); nothing else of the service's metadata does; the workload spec's own labels win
    /// on the pods, and ours win over everything.
    #[test]
    fn service_metadata_propagation() {
        let mut s = svc(
            json!({"template": {}, "labels": {"kueue.x-k8s.io/queue-name": "spec-q"},
            "prefill": {"template": {}, "worker": {}, "parallelism": {"pipeline": 2}}}),
        );
        s["metadata"]["labels"] = json!({"kueue.x-k8s.io/queue-name": "q", "team": "a",
            "app.kubernetes.io/name": "spoof"});
        s["metadata"]["annotations"] = json!({
            "k8s.v1.cni.cncf.io/networks": "rdma-net",
            "prometheus.io/scrape": "true",
            "leaderworkerset.sigs.k8s.io/exclusive-topology": "rack",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "internal.serving.kserve.io/localmodel-pvc-name": "cache",
            "note": "x",
        });
        let objs = build(&s).unwrap();
        let d = find(&objs, "Deployment", "m-kserve");
        assert_eq!(d["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "q");
        assert!(d["metadata"]["labels"].get("team").is_none());
        assert_eq!(d["metadata"]["labels"][NAME_LABEL], "m", "ours win");
        let a = d["metadata"]["annotations"].as_object().unwrap();
        let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "internal.serving.kserve.io/localmodel-pvc-name",
                "k8s.v1.cni.cncf.io/networks",
                "prometheus.io/scrape"
            ]
        );
        let pod = &d["spec"]["template"]["metadata"];
        assert_eq!(
            pod["labels"]["kueue.x-k8s.io/queue-name"], "spec-q",
            "the workload spec wins on pods"
        );
        assert_eq!(pod["labels"][NAME_LABEL], "m");
        assert_eq!(
            pod["annotations"]["k8s.v1.cni.cncf.io/networks"],
            "rdma-net"
        );
        assert!(
            pod["annotations"]
                .get("leaderworkerset.sigs.k8s.io/exclusive-topology")
                .is_none()
        );
        let l = find(&objs, "LeaderWorkerSet", "m-kserve-mn-prefill");
        assert_eq!(
            l["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/exclusive-topology"],
            "rack"
        );
        for t in ["leaderTemplate", "workerTemplate"] {
            let m = &l["spec"]["leaderWorkerTemplate"][t]["metadata"];
            assert_eq!(
                m["annotations"]["k8s.v1.cni.cncf.io/networks"], "rdma-net",
                "{t}"
            );
            assert_eq!(m["labels"]["kueue.x-k8s.io/queue-name"], "q", "{t}");
        }
        // Nothing to propagate: no annotations written.
        let objs = build(&svc(json!({"template": {}}))).unwrap();
        let d = find(&objs, "Deployment", "m-kserve");
        assert!(d["metadata"].get("annotations").is_none());
        assert!(
            d["spec"]["template"]["metadata"]
                .get("annotations")
                .is_none()
        );
    }

    /// The scheduler's RBAC, HA and Service as KServe builds them.
    #[test]
    fn scheduler_as_kserve() {
        let main = json!({"containers": [{"name": "main", "args": ["--pool-name", "p"], "ports": [
            {"name": "metrics", "containerPort": 9091},
            {"name": "grpc", "containerPort": 9012, "protocol": "TCP"},
            {"name": "other", "containerPort": 1}]}]});
        let objs = build(&svc(
            json!({"template": {}, "router": {"scheduler": {"template": main, "replicas": 2}}}),
        ))
        .unwrap();
        let role = find(&objs, "Role", "m-epp-role");
        assert_eq!(role["rules"].as_array().unwrap().len(), 6);
        assert_eq!(role["rules"][5]["resources"], json!(["leases"]));
        let rb = find(&objs, "RoleBinding", "m-epp-rb");
        assert_eq!(rb["roleRef"]["name"], "m-epp-role");
        let d = find(&objs, "Deployment", "m-kserve-router-scheduler");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        let args = d["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        assert_eq!(
            args,
            json!(["--pool-name", "p", "--ha-enable-leader-election"])
        );
        let svc_ports = &find(&objs, "Service", "m-epp-service")["spec"]["ports"];
        assert_eq!(
            svc_ports,
            &json!([
                {"name": "grpc", "port": 9012, "targetPort": "grpc", "protocol": "TCP"},
                {"name": "metrics", "port": 9091, "targetPort": "metrics"},
            ])
        );
        // One replica: no leader election.
        let objs = build(&svc(
            json!({"template": {}, "router": {"scheduler": {"template": main, "replicas": 1}}}),
        ))
        .unwrap();
        let d = find(&objs, "Deployment", "m-kserve-router-scheduler");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--pool-name", "p"])
        );
    }

    /// A role label left in spec.labels from when the service had prefill loses to the derived
    /// one on every pod template (found on the real cluster: removing prefill kept `decode`).
    #[test]
    fn derived_role_wins_over_a_stale_spec_label() {
        let objs = build(&svc(json!({
            "parallelism": {"data": 16, "dataLocal": 8},
            "template": {}, "worker": {}, "labels": {"llm-d.ai/role": "decode", "team": "a"},
        })))
        .unwrap();
        let t = &find(&objs, "LeaderWorkerSet", "m-kserve-mn")["spec"]["leaderWorkerTemplate"];
        assert_eq!(
            t["leaderTemplate"]["metadata"]["labels"][ROLE_LABEL],
            "both"
        );
        assert_eq!(t["leaderTemplate"]["metadata"]["labels"]["team"], "a");
    }

    /// KServe's `app.kubernetes.io/component` values, selectors and label precedence.
    #[test]
    fn labels_and_selectors_as_kserve() {
        let comp = |o: &Value| o["metadata"]["labels"][APP_COMPONENT_LABEL].clone();
        let objs = build(&svc(json!({
            "template": {}, "labels": {"team": "a", "llm-d.ai/role": "spoof"},
            "prefill": {"template": {}, "worker": {}, "parallelism": {"pipeline": 2}},
            "router": {"scheduler": {"template": {}, "pool": {"spec": {}}}, "route": {"http": {"spec": {}}}},
        })))
        .unwrap();
        let d = find(&objs, "Deployment", "m-kserve");
        assert_eq!(comp(d), WORKLOAD_COMPONENT);
        let sel = json!({APP_COMPONENT_LABEL: WORKLOAD_COMPONENT, NAME_LABEL: "m", PART_OF_LABEL: PART_OF,
            COMPONENT_LABEL: "workload", ROLE_LABEL: "decode"});
        assert_eq!(d["spec"]["selector"]["matchLabels"], sel);
        let pod = &d["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod["team"], "a", "spec.labels reach the pods");
        assert_eq!(pod[ROLE_LABEL], "decode", "but not over the selector");
        let l = find(&objs, "LeaderWorkerSet", "m-kserve-mn-prefill");
        assert_eq!(comp(l), "llminferenceservice-workload-worker-prefill");
        let t = &l["spec"]["leaderWorkerTemplate"];
        assert_eq!(t["restartPolicy"], "RecreateGroupOnPodRestart");
        assert_eq!(
            t["leaderTemplate"]["metadata"]["labels"][APP_COMPONENT_LABEL],
            "llminferenceservice-workload-leader-prefill"
        );
        assert_eq!(
            t["leaderTemplate"]["metadata"]["labels"][COMPONENT_LABEL],
            "workload"
        );
        let w = &t["workerTemplate"]["metadata"]["labels"];
        assert_eq!(
            w[APP_COMPONENT_LABEL],
            "llminferenceservice-workload-worker-prefill"
        );
        assert!(
            w.get(COMPONENT_LABEL).is_none(),
            "workers are not endpoints"
        );
        let ws = find(&objs, "Service", "m-kserve-workload-svc");
        assert_eq!(comp(ws), WORKLOAD_COMPONENT);
        assert_eq!(ws["metadata"]["labels"]["team"], "a");
        assert_eq!(
            ws["spec"]["selector"],
            json!({PART_OF_LABEL: PART_OF, NAME_LABEL: "m", COMPONENT_LABEL: "workload"})
        );
        assert_eq!(ws["spec"]["ports"][0]["appProtocol"], "http");
        assert_eq!(
            comp(find(&objs, "InferencePool", "m-inference-pool")),
            SCHEDULER_COMPONENT
        );
        assert_eq!(
            comp(find(&objs, "HTTPRoute", "m-kserve-route")),
            ROUTER_COMPONENT
        );
    }

    /// KServe's standalone tokenizer (tokenizer.go, tokenizer_test.go): built for a token-producer
    /// or legacy precise-prefix-cache-scorer plugin or a set `tokenizer`, not with `pool.ref`
    /// nor without a scheduler; named, labelled and exposed as KServe's.
    #[test]
    fn tokenizer_as_kserve() {
        let pod = json!({"containers": [{"name": "main", "image": "vllm"}]});
        let with = |sched: Value| {
            build(&svc(
                json!({"template": {}, "router": {"scheduler": sched}}),
            ))
        };
        let objs = with(json!({"template": {}, "tokenizer": {"template": pod},
            "config": {"inline": {"plugins": [{"type": "token-producer"}]}}}))
        .unwrap();
        let d = find(&objs, "Deployment", "m-tokenizer");
        let labels =
            json!({APP_COMPONENT_LABEL: "tokenizer", NAME_LABEL: "m", PART_OF_LABEL: PART_OF});
        assert_eq!(d["spec"]["selector"]["matchLabels"], labels);
        assert_eq!(d["spec"]["template"]["metadata"]["labels"], labels);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["template"]["spec"], pod);
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], "u1");
        let s = find(&objs, "Service", "m-tokenizer");
        assert_eq!(s["spec"]["selector"], labels);
        assert_eq!(
            s["spec"]["ports"],
            json!([{"name": "render-http", "port": 8000, "targetPort": "render-http", "protocol": "TCP"}])
        );
        // Before the scheduler (KServe reconciles it first).
        let pos = |k: &str, n: &str| {
            objs.iter()
                .position(|o| o["kind"] == k && o["metadata"]["name"] == n)
        };
        assert!(pos("Deployment", "m-tokenizer") < pos("Deployment", "m-kserve-router-scheduler"));
        // The legacy plugin and an explicit `tokenizer` enable it too.
        for sched in [
            json!({"template": {}, "tokenizer": {"template": pod},
                "config": {"inline": {"plugins": [{"type": "precise-prefix-cache-scorer"}]}}}),
            json!({"template": {}, "tokenizer": {"template": pod}}),
        ] {
            find(&with(sched).unwrap(), "Service", "m-tokenizer");
        }
        // Not without a trigger (a leftover template is not one), not with `pool.ref`.
        let plain = json!({"template": {}, "config": {"inline": {"plugins": [{"type": "precise-prefix-cache-producer"}]}}});
        assert!(
            !with(plain)
                .unwrap()
                .iter()
                .any(|o| o["metadata"]["name"] == "m-tokenizer")
        );
        let by_ref = json!({"pool": {"ref": {"name": "x"}}, "tokenizer": {"template": pod}});
        assert!(
            !with(by_ref)
                .unwrap()
                .iter()
                .any(|o| o["metadata"]["name"] == "m-tokenizer")
        );
        // Enabled without the preset's pod: an error, not a Deployment without containers.
        assert_eq!(
            with(json!({"template": {}, "tokenizer": {}})),
            Err(BuildError::Json(JsonError::Missing {
                path: "spec.router.scheduler.tokenizer.template".into()
            }))
        );
    }

    /// KServe's scheduler migrations for the tokenizer, from endpoint picker 0.9.0 (read from the
    /// scheduler's `app.kubernetes.io/version` annotation): the legacy plugin decomposed, the
    /// token-producer pointed at the tokenizer Service.
    #[test]
    fn scheduler_config_calls_the_tokenizer_from_epp_0_9() {
        let inline = json!({"plugins": [
            {"type": "single-profile-handler"},
            {"type": "prefix-cache-scorer", "parameters": {"blockSize": 5}},
            {"type": "precise-prefix-cache-scorer", "parameters": {
                "kvEventsConfig": {"zmqEndpoint": "tcp://x:5557"},
                "indexerConfig": {"tokenizersPoolConfig": {"modelName": "m"},
                    "tokenProcessorConfig": {"blockSize": 64}, "kvBlockIndexConfig": {"enableMetrics": true}}}},
            {"type": "max-score-picker"}],
            "schedulingProfiles": [{"name": "default", "plugins": [
                {"pluginRef": "precise-prefix-cache-scorer", "weight": 3},
                {"pluginRef": "prefix-cache-scorer", "weight": 1},
                {"pluginRef": "max-score-picker"}]}]});
        let url = "http://m-tokenizer.ns.svc.cluster.local:8000";
        let out = with_tokenizer(&inline, url);
        assert_eq!(
            out,
            // (At the legacy plugin's index before removals, as KServe: the order of plugins
            // does not matter, profiles name them.)
            json!({"plugins": [
                {"type": "single-profile-handler"},
                {"type": "max-score-picker"},
                {"type": "token-producer", "parameters": {"modelName": "/mnt/models/base", "vllm": {"url": url}}},
                {"type": "precise-prefix-cache-producer", "parameters": {
                    "kvEventsConfig": {"zmqEndpoint": "tcp://x:5557"},
                    "tokenProcessorConfig": {"blockSize": 64},
                    "indexerConfig": {"kvBlockIndexConfig": {"enableMetrics": true}}}},
                {"type": "prefix-cache-scorer", "parameters": {"prefixMatchInfoProducerName": "precise-prefix-cache-producer"}}],
                "schedulingProfiles": [{"name": "default", "plugins": [
                    {"pluginRef": "prefix-cache-scorer", "weight": 3},
                    {"pluginRef": "max-score-picker"}]}]})
        );
        // A token-producer the user wrote keeps its settings, gets what is missing.
        let own = json!({"plugins": [{"type": "token-producer", "parameters": {"vllm": {"url": "http://mine"}}}]});
        assert_eq!(
            with_tokenizer(&own, url)["plugins"][0]["parameters"],
            json!({"modelName": "/mnt/models/base", "vllm": {"url": "http://mine"}})
        );
        // Through the builder: only from 0.9.0.
        let args_for = |version: Option<&str>| {
            let mut sched = json!({"template": {"containers": [{"name": "main"}]},
                "tokenizer": {"template": {"containers": [{"name": "main"}]}},
                "config": {"inline": {"plugins": [{"type": "token-producer"}]}}});
            if let Some(v) = version {
                sched["annotations"] = json!({"app.kubernetes.io/version": v});
            }
            let objs = build(&svc(
                json!({"template": {}, "router": {"scheduler": sched}}),
            ))
            .unwrap();
            let d = find(&objs, "Deployment", "m-kserve-router-scheduler");
            d["spec"]["template"]["spec"]["containers"][0]["args"][1]
                .as_str()
                .unwrap()
                .to_string()
        };
        for v in ["0.9.0", "0.10.0", "1.0.0", "0.9.1+build"] {
            assert!(
                args_for(Some(v)).contains("url: http://m-tokenizer.ns.svc.cluster.local:8000"),
                "{v}"
            );
        }
        for v in [None, Some("0.8.9"), Some("0.9.0-rc1"), Some("latest")] {
            assert!(!args_for(v).contains("vllm"), "{v:?}");
        }
    }

    /// KServe's single-node routing-sidecar ServiceAccount and RBAC (workload_single_node.go).
    #[test]
    fn single_node_sidecar_service_account() {
        let sidecar = json!({"initContainers": [{"name": ROUTING_SIDECAR}], "containers": []});
        let objs = build(&svc(
            json!({"template": sidecar, "prefill": {"template": sidecar}}),
        ))
        .unwrap();
        let sa = find(&objs, "ServiceAccount", "m-kserve");
        assert_eq!(
            sa["metadata"]["labels"][APP_COMPONENT_LABEL],
            WORKLOAD_COMPONENT
        );
        let role = find(&objs, "Role", "m-kserve-role");
        assert_eq!(role["rules"][1]["resources"], json!(["inferencepools"]));
        let rb = find(&objs, "RoleBinding", "m-kserve-rb");
        assert_eq!(rb["roleRef"]["name"], "m-kserve-role");
        assert_eq!(rb["subjects"][0]["name"], "m-kserve");
        let pod = &find(&objs, "Deployment", "m-kserve")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "m-kserve");
        let prefill = &find(&objs, "Deployment", "m-kserve-prefill")["spec"]["template"]["spec"];
        assert!(
            prefill.get("serviceAccountName").is_none(),
            "decode only, as KServe"
        );
        // The template's own ServiceAccount is bound instead of creating one.
        let mut own = sidecar.clone();
        own["serviceAccountName"] = json!("mine");
        let objs = build(&svc(json!({"template": own}))).unwrap();
        assert!(!objs.iter().any(|o| o["kind"] == "ServiceAccount"));
        assert_eq!(
            find(&objs, "RoleBinding", "m-kserve-rb")["subjects"][0]["name"],
            "mine"
        );
        // No sidecar: none of these.
        let objs = build(&svc(json!({"template": {"containers": []}}))).unwrap();
        assert!(!objs.iter().any(|o| matches!(
            o["kind"].as_str(),
            Some("ServiceAccount" | "Role" | "RoleBinding")
        )));
    }

    /// KServe's `injectSecretsFromDefaultServiceAccount`.
    #[test]
    fn service_accounts_take_the_default_accounts_pull_secrets() {
        let mut objs = build(&svc(
            json!({"template": {}, "router": {"scheduler": {"template": {}}}}),
        ))
        .unwrap();
        let default_sa =
            json!({"imagePullSecrets": [{"name": "regcred"}], "secrets": [{"name": "tok"}]});
        inject_default_sa_secrets(&mut objs, &default_sa);
        let sa = find(&objs, "ServiceAccount", "m-epp-sa");
        assert_eq!(sa["imagePullSecrets"], json!([{"name": "regcred"}]));
        assert_eq!(sa["secrets"], json!([{"name": "tok"}]));
        assert!(
            find(&objs, "Deployment", "m-kserve")
                .get("imagePullSecrets")
                .is_none()
        );
        inject_default_sa_secrets(&mut objs, &json!({}));
        let sa = find(&objs, "ServiceAccount", "m-epp-sa");
        assert!(sa.get("imagePullSecrets").is_none() && sa.get("secrets").is_none());
    }

    #[test]
    fn a_stopped_service_has_no_children() {
        let mut s = svc(json!({"template": {}, "router": {"scheduler": {"template": {}}}}));
        assert!(!build(&s).unwrap().is_empty());
        for v in ["true", "True", "TRUE"] {
            s["metadata"]["annotations"] = json!({STOP_ANNOTATION: v});
            assert!(stopped(&s));
            assert_eq!(build(&s).unwrap(), Vec::<Value>::new(), "{v}");
        }
        for v in ["false", "", "yes"] {
            s["metadata"]["annotations"] = json!({STOP_ANNOTATION: v});
            assert!(!stopped(&s), "{v}");
            assert!(!build(&s).unwrap().is_empty());
        }
        // Even a spec that cannot be built: stopping it is always possible.
        let mut bad = svc(json!({}));
        bad["metadata"]["annotations"] = json!({STOP_ANNOTATION: "true"});
        assert_eq!(build(&bad), Ok(vec![]));
    }

    #[test]
    fn errors() {
        let mut s = svc(json!({"template": {}}));
        s["metadata"].as_object_mut().unwrap().remove("uid");
        let missing = |path: &str| BuildError::Json(JsonError::Missing { path: path.into() });
        assert_eq!(build(&s), Err(missing("metadata.uid")));
        assert_eq!(
            build(&s).unwrap_err().to_string(),
            "metadata.uid is missing"
        );
        let wrong = build(&svc(json!({"template": 3}))).unwrap_err();
        assert_eq!(
            wrong,
            BuildError::Json(JsonError::WrongType {
                path: "spec.template".into(),
                expected: json::OBJECT,
                found: json::INTEGER,
                value: "3".into(),
            })
        );
        assert_eq!(wrong.to_string(), "spec.template: expected an object");
        assert_eq!(build(&svc(json!({}))), Err(missing("spec.template")));
    }

    /// A member of routing group `g` as stored after admission: a scheduler, and the route the
    /// webhook writes (one rule to its own InferencePool), serving model `llama`.
    fn member(name: &str, group: &str, weight: i64) -> Value {
        json!({
            "apiVersion": OWNER_API_VERSION,
            "kind": "LLMInferenceService",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")},
            "spec": {
                "model": {"name": "llama"},
                "template": {},
                "router": {
                    "scheduler": {"template": {}, "pool": {"spec": {}}},
                    "route": {"group": group, "weight": weight, "http": {"spec": {"rules": [{
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool(name), "port": WORKLOAD_PORT}],
                    }]}}},
                },
            },
        })
    }

    /// `member` with the status of a routable service (KServe's `routableMember`).
    fn routable(mut m: Value) -> Value {
        m["status"] = json!({
            "conditions": [{"type": "RouterReady", "status": "True"}],
            "workloads": {"primary": {"kind": "Deployment", "name": "x", "readyReplicas": 1}},
            "addresses": [{"url": "http://x", "models": [{"name": "llama"}]}],
        });
        m
    }

    fn pool_ref(name: &str, w: i64) -> Value {
        json!({"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool(name), "port": WORKLOAD_PORT, "weight": w})
    }

    fn route_of(svc: &Value, others: &[Value]) -> Value {
        let objs = build_grouped(svc, &BuildOptions::default(), others).unwrap();
        let name = svc["metadata"]["name"].as_str().unwrap();
        find(&objs, "HTTPRoute", &names::route(name)).clone()
    }

    /// KServe's group cases (controller_int_router_group_test.go, router_group_test.go):
    /// which members' backends, with which weights, each member's route carries.
    #[test]
    fn route_group_backends() {
        let stopped = |mut m: Value| {
            m["metadata"]["annotations"] = json!({STOP_ANNOTATION: "true"});
            m
        };
        let terminating = |mut m: Value| {
            m["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            m
        };
        let other_model = |mut m: Value| {
            m["spec"]["model"]["name"] = json!("mistral");
            m["status"]["addresses"][0]["models"] = json!([{"name": "mistral"}]);
            m
        };
        let mut other_ns = routable(member("v3", "g", 5));
        other_ns["metadata"]["namespace"] = json!("elsewhere");
        let mut zero_ready = routable(member("v2", "g", 20));
        zero_ready["status"]["workloads"]["primary"]["readyReplicas"] = json!(0);
        let mut nil_scheduler = routable(member("v2", "g", 20));
        nil_scheduler["status"]["workloads"]["scheduler"] =
            json!({"kind": "Deployment", "name": "s"});
        let cases: Vec<(&str, Value, Vec<Value>, Vec<Value>)> = vec![
            (
                "alone: its own backend, its weight",
                member("v1", "g", 80),
                vec![],
                vec![pool_ref("v1", 80)],
            ),
            (
                "two members: both backends, sorted by name, weights 80/20",
                member("v1", "g", 80),
                vec![routable(member("v2", "g", 20))],
                vec![pool_ref("v1", 80), pool_ref("v2", 20)],
            ),
            (
                "the other member's route carries the same split",
                member("v2", "g", 20),
                vec![routable(member("v1", "g", 80))],
                vec![pool_ref("v1", 80), pool_ref("v2", 20)],
            ),
            (
                "weight change is followed",
                member("v1", "g", 90),
                vec![routable(member("v2", "g", 50))],
                vec![pool_ref("v1", 90), pool_ref("v2", 50)],
            ),
            (
                "stopped peer: omitted (a weight-0 backendRef leaks on some gateways)",
                member("v1", "g", 40),
                vec![stopped(member("v2", "g", 60))],
                vec![pool_ref("v1", 40)],
            ),
            (
                "peer serving another model: its own sub-group",
                member("v1", "g", 50),
                vec![other_model(routable(member("v2", "g", 30)))],
                vec![pool_ref("v1", 50)],
            ),
        ];
        // Peers that are not routed to: member v1's route names only its own backend.
        let left_out: Vec<(&str, Vec<Value>)> = vec![
            ("peer without RouterReady", vec![member("v2", "g", 20)]),
            ("peer with zero ready replicas", vec![zero_ready]),
            (
                "peer whose scheduler has no ready replicas",
                vec![nil_scheduler],
            ),
            (
                "terminating peer",
                vec![terminating(routable(member("v2", "g", 20)))],
            ),
            (
                "other group, other namespace",
                vec![routable(member("v2", "h", 20)), other_ns],
            ),
        ];
        let cases = cases
            .into_iter()
            .chain(left_out.into_iter().map(|(name, others)| {
                (
                    name,
                    member("v1", "g", 80),
                    others,
                    vec![pool_ref("v1", 80)],
                )
            }));
        for (name, svc, others, want) in cases {
            let route = route_of(&svc, &others);
            assert_eq!(
                route["spec"]["rules"][0]["backendRefs"],
                Value::Array(want),
                "{name}"
            );
            assert_eq!(
                route["metadata"]["labels"][super::super::group::ROUTING_GROUP_LABEL],
                "g",
                "{name}"
            );
        }
    }

    /// Members without a scheduler are reached at their workload Service, with
    /// `scheduler.pool.ref` at the referenced pool (KServe's `resolveMemberBackendRef`).
    #[test]
    fn route_group_member_backends() {
        let mut no_sched = routable(member("v2", "g", 20));
        no_sched["spec"]["router"]
            .as_object_mut()
            .unwrap()
            .remove("scheduler");
        no_sched["spec"]["router"]["route"]["http"]["spec"]["rules"][0]["backendRefs"] = json!([
            {"group": "", "kind": "Service", "name": names::workload_service("v2"), "port": WORKLOAD_PORT}
        ]);
        let mut by_ref = routable(member("v3", "g", 30));
        by_ref["spec"]["router"]["scheduler"]["pool"] = json!({"ref": {"name": "shared"}});
        by_ref["spec"]["router"]["route"]["http"]["spec"]["rules"][0]["backendRefs"][0]["name"] =
            json!("shared");
        // A member whose admitted route names no own backend: computed as KServe does.
        let mut bare = routable(member("v4", "g", 40));
        bare["spec"]["router"]["route"]["http"] = json!({"refs": [{"name": "mine"}]});
        let route = route_of(&member("v1", "g", 10), &[no_sched, by_ref, bare]);
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"],
            json!([
                pool_ref("v1", 10),
                {"group": "", "kind": "Service", "name": names::workload_service("v2"), "port": WORKLOAD_PORT, "weight": 20},
                {"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": "shared", "port": WORKLOAD_PORT, "weight": 30},
                {"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool("v4"), "port": WORKLOAD_PORT, "weight": 40},
            ])
        );
    }

    /// Only rules with a controller-managed backend are rewritten: the user's own backends and
    /// the per-participant `/<ns>/<name>/...` rules stay (KServe's `rewriteRulesForGroup`).
    #[test]
    fn route_group_keeps_user_and_per_participant_rules() {
        let mut v1 = member("v1", "g", 9);
        let own = json!([{"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool("v1"), "port": WORKLOAD_PORT}]);
        let user = json!([{"kind": "Service", "name": "user-custom-svc", "port": 80}]);
        v1["spec"]["router"]["route"]["http"]["spec"]["rules"] = json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/ns/v1/v1"}}], "backendRefs": own},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/ns/v1-v2"}}], "backendRefs": own},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/custom"}}], "backendRefs": user},
        ]);
        let route = route_of(&v1, &[routable(member("v2", "g", 1))]);
        let rules = &route["spec"]["rules"];
        assert_eq!(rules[0]["backendRefs"], own, "per-participant rule");
        assert_eq!(
            rules[1]["backendRefs"],
            json!([pool_ref("v1", 9), pool_ref("v2", 1)]),
            "/ns/v1-v2 is not below /ns/v1"
        );
        assert_eq!(rules[2]["backendRefs"], user, "user rule");
    }

    /// Without a group the route is the admitted one, without the routing-group label.
    #[test]
    fn route_without_group_untouched() {
        let mut s = member("v1", "g", 1);
        let route_spec = s["spec"]["router"]["route"]["http"].clone();
        s["spec"]["router"]["route"] = json!({"http": route_spec});
        let route = route_of(&s, &[routable(member("v2", "g", 1))]);
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"],
            json!([{"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": names::pool("v1"), "port": WORKLOAD_PORT}])
        );
        assert!(
            route["metadata"]["labels"]
                .get(super::super::group::ROUTING_GROUP_LABEL)
                .is_none()
        );
    }
}
