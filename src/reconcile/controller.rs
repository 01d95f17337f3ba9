//! The controller: `kube::runtime::Controller` over `serving.kserve.io/v1alpha2`
//! LLMInferenceServices (as `DynamicObject`s, so no field is lost).
//!
//! Per reconcile:
//! 1. [`build`](super::build::build) the children. Each carries the annotation
//!    [`DESIRED_HASH_ANNOTATION`] (hash of what we apply).
//! 2. For each child: look the live object up in the watch cache of its kind; when every field
//!    we apply has the same value live, nothing is written. Otherwise server-side apply
//!    (field manager [`FIELD_MANAGER`], `force`: we own these fields). A reconcile that finds
//!    everything in place writes nothing.
//! 3. Prune: the children that are no longer built are deleted (found in the watch caches, no
//!    LIST): namespaced ones by their controller owner reference to this service's uid (not by
//!    name or labels: a re-created service of the same name does not adopt the old one's
//!    children), the cluster-scoped ones by their labels (`app.kubernetes.io/managed-by`,
//!    `app.kubernetes.io/name`, `llmisvc/service-namespace`).
//! 4. Status via the status subresource (merge patch), only when it changed.
//!
//! Watch caches: every served child kind (label `app.kubernetes.io/managed-by=llmisvc`), the
//! LLMInferenceServiceConfigs (presets) and the Gateways are each watched once (reflector
//! stores, managedFields dropped); a steady-state reconcile makes no request at all. A cache
//! may lag a write of ours: a child applied by this process with the same desired hash and a
//! newer resourceVersion than its cached copy is not applied again, and a status this process
//! wrote last (newer resourceVersion than the cached service) is not written again. Kinds
//! whose API was not served when the controller started are read with GET/LIST (their
//! "served" answer is kept for a minute). Reconciles are de-duplicated by the work queue
//! (one pending entry per service, [`DEBOUNCE`] trailing debounce) and at most
//! [`MAX_CONCURRENT_RECONCILES`] run at once, which bounds the write rate after a preset change
//! (a changed LLMInferenceServiceConfig queues every service once, for `PresetsUpToDate`).
//!
//! A service that cannot be built (a required field missing, a setting the reconciler was not
//! started with) keeps the children it has: nothing is applied or pruned, `Ready` turns
//! `False` with reason `InvalidSpec` and the error, and a Warning event says the same.
//!
//! Events (`events.k8s.io/v1`, reporting controller [`FIELD_MANAGER`]) on the service:
//! `Created`, `Updated`, `Recreated` and `Deleted` for each child written (the child as the
//! related object), Warnings `InvalidSpec` and `ReconcileFailed`. An event that cannot be
//! written (no RBAC for events) is logged and does not fail the reconcile.
//!
//! Owned Deployments, Services and (when their APIs are served) LeaderWorkerSets,
//! InferencePools, HTTPRoutes, HorizontalPodAutoscalers and ScaledObjects are watched, so drift
//! is brought back and the status follows theirs. Errors requeue with a per-service
//! exponential backoff ([`backoff`]: 5 s doubling up to 5 min).
//!
//! Leader election: a `coordination.k8s.io/v1` Lease; the controller runs only while this
//! process holds it, and is stopped before the lease could expire when renewal fails
//! (client-go's scheme: duration [`DEFAULT_LEASE_DURATION`] 10 s, renew deadline 2/3 of it,
//! retry every 2 s; expiry judged on the standby's own clock). A leader stopped with SIGTERM
//! releases the Lease, so the standby leads within one retry period; a killed one is replaced
//! once the Lease has gone unrenewed for its duration.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::build::{
    BuildOptions, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, PART_OF, PART_OF_LABEL,
    SERVICE_NAMESPACE_LABEL, cluster_scoped,
};
use crate::api::v1alpha2::LLMInferenceServiceStatus;
use crate::model::children as names;
use crate::presets::{
    EMBEDDED_FILES, MISSING_BASE_REFS_ANNOTATION, PresetStore, parse_yaml_documents,
};
use crate::process::LogFormat;

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "llmisvc-reconciler";
/// Annotation on each child: hash of the object last applied.
pub const DESIRED_HASH_ANNOTATION: &str = "serving.kserve.io/llmisvc-desired-hash";
/// Default Lease name.
pub const LEASE_NAME: &str = "llmisvc-reconciler";
/// Reconciles running at once (the work queue holds the rest, one entry per service).
pub const MAX_CONCURRENT_RECONCILES: u16 = 16;
/// Trailing debounce of the work queue: triggers for one service within this window (its
/// children's watch events, a status write) make one reconcile.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// How long a "this API is (not) served" answer is kept for kinds without a watch cache.
const SERVED_TTL: Duration = Duration::from_secs(60);
/// Objects per page of a watch cache's initial LIST (kube-runtime's and client-go's default
/// is 500). A page is decoded whole, with managedFields, before [`cache_form`] trims its
/// objects, and a new leader lists every kind at once: at 1,000 services, pages of 500 took
/// the reconciler's peak RSS from ~89 to 133.5 MiB. 100 keeps that transient small at the
/// cost of a few more requests (10 pages for 1,000 objects).
pub const LIST_PAGE_SIZE: u32 = 100;
/// Default Lease duration (`--lease-duration`). controller-runtime (KServe's manager) uses
/// 15 s; a leader killed without releasing the Lease is replaced after the duration plus up
/// to one retry period, so 15 s cannot fail over in under 15 s; 10 s does (10-12 s, plus the
/// new leader's initial LISTs).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace to watch (all when `None`).
    pub namespace: Option<String>,
    /// Where shipped presets live (for `PresetsUpToDate`).
    pub system_namespace: String,
    /// Leader election; `None` runs without it.
    pub lease: Option<LeaseConfig>,
    /// Periodic resync.
    pub resync: Duration,
    /// Delay before retrying a failed reconcile.
    pub error_delay: Duration,
    /// Cluster settings some children need (the Prometheus of `scaling.wva.keda`).
    pub build: BuildOptions,
}

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
    /// How often the holder renews (and others retry).
    pub retry: Duration,
}

impl LeaseConfig {
    /// Defaults ([`DEFAULT_LEASE_DURATION`], its [`LeaseConfig::retry_for`] retry) with an
    /// identity from `POD_NAME` / hostname and pid.
    pub fn new(namespace: &str) -> LeaseConfig {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
            .unwrap_or_else(|_| "llmisvc".into());
        LeaseConfig {
            namespace: namespace.to_string(),
            name: LEASE_NAME.to_string(),
            identity: format!("{}_{}", host.trim(), std::process::id()),
            duration: DEFAULT_LEASE_DURATION,
            retry: Self::retry_for(DEFAULT_LEASE_DURATION),
        }
    }

    /// The retry (and renewal) period for a lease `duration`: a fifth of it, between 1 and
    /// 2 s (client-go's and controller-runtime's `RetryPeriod` is 2 s).
    pub fn retry_for(duration: Duration) -> Duration {
        (duration / 5).clamp(Duration::from_secs(1), Duration::from_secs(2))
    }

    /// How long the holder keeps leading after its last successful renewal when renewals fail
    /// (client-go's `RenewDeadline`; controller-runtime's 10 s of 15 s): two thirds of the
    /// duration, so it has stopped before another replica may take over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// Why a reconcile failed (it is retried after [`Config::error_delay`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{what}: {source}")]
    Object {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("the watch cache of {0} has not synced yet")]
    NotSynced(String),
}

/// The LLMInferenceService resource.
pub fn service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.kserve.io", "v1alpha2", "LLMInferenceService"),
        "llminferenceservices",
    )
}

/// Kinds the builder makes (apiVersion, kind, plural).
pub const CHILD_KINDS: &[(&str, &str, &str)] = &[
    ("v1", "ServiceAccount", "serviceaccounts"),
    (names::RBAC_API_VERSION, "Role", "roles"),
    (names::RBAC_API_VERSION, "RoleBinding", "rolebindings"),
    ("v1", "Service", "services"),
    (names::DEPLOYMENT_API_VERSION, "Deployment", "deployments"),
    (
        names::LWS_API_VERSION,
        "LeaderWorkerSet",
        "leaderworkersets",
    ),
    (
        names::INFERENCE_POOL_API_VERSION,
        "InferencePool",
        "inferencepools",
    ),
    (
        super::build::POOL_V1ALPHA2_API_VERSION,
        "InferencePool",
        "inferencepools",
    ),
    (names::HTTP_ROUTE_API_VERSION, "HTTPRoute", "httproutes"),
    (
        names::HPA_API_VERSION,
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    (
        names::SCALED_OBJECT_API_VERSION,
        "ScaledObject",
        "scaledobjects",
    ),
    (
        "resource.k8s.io/v1",
        "ResourceClaimTemplate",
        "resourceclaimtemplates",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    ),
];

/// The API of a child kind: in `ns`, or cluster-wide for [`cluster_scoped`] kinds.
fn child_api(client: &Client, ns: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let ar = resource_of(api_version, kind);
    if cluster_scoped(kind) {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), ns, &ar)
    }
}

/// Label selector of the candidates for the children of service `ns/name` (LIST, for kinds
/// without a watch cache): for [`cluster_scoped`] kinds the service's own labels (they are
/// found by them), for namespaced kinds every object we manage in the namespace ([`prunable`]
/// then keeps those the service's uid owns, whatever their other labels say).
fn children_selector(ns: &str, name: &str, kind: &str) -> String {
    if cluster_scoped(kind) {
        format!(
            "{MANAGED_BY_LABEL}={MANAGED_BY},{NAME_LABEL}={name},{SERVICE_NAMESPACE_LABEL}={ns}"
        )
    } else {
        format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
    }
}

/// The service whose children are pruned.
struct Owner<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

/// Is live object `o` (of `kind`) a child of `owner`? Namespaced: in its namespace with a
/// controller owner reference to its uid (a service deleted and re-created under the same
/// name has a new uid: the old one's children, still labelled with the name until the garbage
/// collector removes them, are not this one's; a child whose labels were edited is still
/// ours). Cluster-scoped (no owner reference possible): labelled [`MANAGED_BY_LABEL`],
/// [`NAME_LABEL`] and [`SERVICE_NAMESPACE_LABEL`] of the service.
fn child_of(o: &DynamicObject, kind: &str, owner: &Owner) -> bool {
    if cluster_scoped(kind) {
        let l = o.labels();
        return l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            && l.get(NAME_LABEL).map(String::as_str) == Some(owner.name)
            && l.get(SERVICE_NAMESPACE_LABEL).map(String::as_str) == Some(owner.namespace);
    }
    o.metadata.namespace.as_deref() == Some(owner.namespace)
        && o.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == owner.uid && r.controller == Some(true))
}

/// Names of the live objects of `api_version`/`kind` among `candidates` that are children of
/// `owner` ([`child_of`]) and not in `keep` (the (apiVersion, kind, name) of every child this
/// reconcile built): what is pruned.
fn prunable<'a>(
    candidates: impl Iterator<Item = &'a DynamicObject>,
    api_version: &str,
    kind: &str,
    owner: &Owner,
    keep: &BTreeSet<(String, String, String)>,
) -> Vec<String> {
    candidates
        .filter(|o| child_of(o, kind, owner))
        .map(|o| o.name_any())
        .filter(|n| !keep.contains(&(api_version.to_string(), kind.to_string(), n.clone())))
        .collect()
}

/// Deletes the cluster-scoped children of service `ns/name` (found by their labels).
async fn delete_cluster_scoped(client: &Client, ns: &str, name: &str) -> Result<(), Error> {
    for (api_version, kind, _) in CHILD_KINDS.iter().filter(|(_, k, _)| cluster_scoped(k)) {
        let api = child_api(client, ns, api_version, kind);
        let lp = ListParams::default().labels(&children_selector(ns, name, kind));
        let list = match api.list(&lp).await {
            Ok(l) => l,
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        for o in list.items {
            match api.delete(&o.name_any(), &DeleteParams::background()).await {
                Ok(_) => {
                    tracing::info!(%ns, service = %name, kind, name = %o.name_any(), "deleted")
                }
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Adds (`add`) or removes [`FINALIZER`] on the service (merge patch guarded by its
/// resourceVersion: a concurrent change makes it fail and the reconcile retry).
async fn set_finalizer(
    svc_api: &Api<DynamicObject>,
    obj: &DynamicObject,
    add: bool,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> = obj
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if add {
        finalizers.push(FINALIZER.to_string());
    }
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": obj.metadata.resource_version,
    }});
    svc_api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::Object {
            what: format!(
                "finalizer of {}/{}",
                obj.namespace().unwrap_or_default(),
                obj.name_any()
            ),
            source,
        })?;
    tracing::info!(namespace = ?obj.namespace(), service = %obj.name_any(), add, "finalizer written");
    Ok(())
}

/// The resource of `apiVersion` + `kind` (known kinds; otherwise a lowercase-plural guess).
pub fn resource_of(api_version: &str, kind: &str) -> ApiResource {
    let plural = CHILD_KINDS
        .iter()
        .find(|(a, k, _)| *a == api_version && *k == kind)
        .map(|(_, _, p)| p.to_string())
        .unwrap_or_else(|| format!("{}s", kind.to_lowercase()));
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

struct Ctx {
    client: Client,
    cfg: Config,
    embedded: Vec<Value>,
    recorder: Recorder,
    /// Consecutive failures per `namespace/name`, for the retry backoff.
    failures: std::sync::Mutex<HashMap<String, u32>>,
    caches: Caches,
    /// Kinds without a watch cache: served or not, and when that was learnt.
    served: std::sync::Mutex<HashMap<String, (bool, Instant)>>,
    /// Children this process applied: `kind ns/name` -> (desired hash, resourceVersion of
    /// the write), until the cache has caught up with that write.
    applied: std::sync::Mutex<HashMap<String, (String, u64)>>,
    /// Status this process wrote: `ns/name` -> (resourceVersion after the write, the status).
    written: std::sync::Mutex<HashMap<String, (u64, Value)>>,
    /// The preset store, rebuilt when the cached configs change (keyed by their versions).
    presets: std::sync::Mutex<Option<(u64, Arc<PresetStore>)>>,
}

/// The watch caches (reflector stores) the reconciler reads instead of GETs and LISTs.
#[derive(Default)]
struct Caches {
    /// Served child kinds, by (apiVersion, kind).
    children: HashMap<(&'static str, &'static str), (ApiResource, Store<DynamicObject>)>,
    /// LLMInferenceServiceConfigs, all namespaces (`None`: not listable at start).
    presets: Option<Store<DynamicObject>>,
    /// Gateways, all namespaces (`None`: API not served or not listable at start).
    gateways: Option<(ApiResource, Store<DynamicObject>)>,
    /// Every namespace's `default` ServiceAccount (field selector `metadata.name=default`), whose
    /// pull secrets the ServiceAccounts we create copy (`None`: not listable at start).
    default_service_accounts: Option<(ApiResource, Store<DynamicObject>)>,
    /// The LLMInferenceServices themselves (specs packed, see [`cache_form`]): the other
    /// members of a `route.group`.
    services: Option<Store<DynamicObject>>,
}

/// `spec.router.route.group` of a cached service, read without building its spec as a
/// `Value` (the packed text is scanned once; see [`cache_form`]).
fn cached_group(o: &DynamicObject) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Spec {
        router: Option<Router>,
    }
    #[derive(serde::Deserialize)]
    struct Router {
        route: Option<Route>,
    }
    #[derive(serde::Deserialize)]
    struct Route {
        group: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Packed {
        spec: Option<Spec>,
    }
    let spec: Spec = match o.data.get(PACKED) {
        Some(Value::String(text)) => serde_json::from_str::<Packed>(text).ok()?.spec?,
        _ => serde_json::from_value(o.data.get("spec")?.clone()).ok()?,
    };
    spec.router?.route?.group.filter(|g| !g.is_empty())
}

/// The other services of namespace `ns` in routing group `group`, unpacked. Not `except`.
fn group_peers(store: &Store<DynamicObject>, ns: &str, group: &str, except: &str) -> Vec<Value> {
    store
        .state()
        .into_iter()
        .filter(|o| o.metadata.namespace.as_deref() == Some(ns) && o.name_any() != except)
        .filter(|o| cached_group(o).as_deref() == Some(group))
        .filter_map(|o| cached_value(&o).ok())
        .collect()
}

/// KServe's `groupMemberEventHandler` with `trafficFieldsChanged`: when a service's view as a
/// group member ([`super::group::Member`]: group, weight, stopped, terminating, routable,
/// models, backend) changes, or it is deleted, the other members of its old and new group are
/// queued (their routes carry its backendRef). Runs before the reflector applies the event,
/// so `store` still holds the old object.
fn group_fanout(
    store: Store<DynamicObject>,
    ar: ApiResource,
    tx: futures::channel::mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
) -> impl FnMut(&Result<watcher::Event<DynamicObject>, watcher::Error>) {
    use super::group::Member;
    move |ev| {
        let member = |o: &DynamicObject| {
            cached_group(o)?;
            cached_value(o).ok().and_then(|v| Member::of(&v))
        };
        let (old, new) = match ev {
            Ok(watcher::Event::Apply(o)) => {
                let key = ObjectRef::from_obj_with(o, ar.clone());
                (store.get(&key).and_then(|p| member(p.as_ref())), member(o))
            }
            Ok(watcher::Event::Delete(o)) => (member(o), None),
            _ => return,
        };
        if old == new {
            return;
        }
        for m in old.iter().chain(new.iter()) {
            for p in group_peers(&store, &m.namespace, &m.group, &m.name) {
                if let Some(n) = p["metadata"]["name"].as_str() {
                    let _ =
                        tx.unbounded_send(ObjectRef::new_with(n, ar.clone()).within(&m.namespace));
                }
            }
        }
    }
}

/// How long a reconcile waits for a watch cache's first list before it fails (and retries).
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

async fn synced(store: &Store<DynamicObject>, what: &str) -> Result<(), Error> {
    match tokio::time::timeout(CACHE_SYNC_TIMEOUT, store.wait_until_ready()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Error::NotSynced(what.to_string())),
    }
}

/// A resourceVersion as a number (etcd's revision; `None` when it is not one).
fn rv_of(meta: &Value) -> Option<u64> {
    meta["resourceVersion"].as_str()?.parse().ok()
}

/// The first path where `want` is not [`contained`] in `live` (for the log of a re-apply).
pub fn first_difference(want: &Value, live: &Value, path: &str) -> Option<String> {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().find_map(|(k, v)| match l.get(k) {
            None => Some(format!("{path}.{k} (absent live)")),
            Some(lv) => first_difference(v, lv, &format!("{path}.{k}")),
        }),
        (Value::Array(w), Value::Array(l)) => {
            if w.len() != l.len() {
                return Some(format!("{path} (length {} live {})", w.len(), l.len()));
            }
            w.iter()
                .zip(l)
                .enumerate()
                .find_map(|(i, (a, b))| first_difference(a, b, &format!("{path}[{i}]")))
        }
        _ if contained(want, live) => None,
        _ => Some(format!("{path}: {want} live {live}")),
    }
}

fn key_of(obj: &DynamicObject) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Retry delay after `n` consecutive failures: `base`, doubling, at most 5 minutes.
pub fn backoff(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1 << n.saturating_sub(1).min(10))
        .min(Duration::from_secs(300))
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `want` is contained in `live`: every key of every object in `want` has an equal value in
/// `live` (arrays: same length, element-wise containment).
pub fn contained(want: &Value, live: &Value) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| contained(v, lv))),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().zip(l).all(|(a, b)| contained(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == live,
    }
}

/// The child's desired-state hash: 64-bit FNV-1a of its canonical JSON text (object keys
/// sorted, [`canonical_json`]), so every process and every Rust release computes the same value
/// (`DefaultHasher`'s algorithm is unspecified: an upgrade would have re-applied every child)
/// and the order in which the builder writes keys does not matter.
fn hash_of(v: &Value) -> String {
    let mut text = Vec::new();
    canonical_json(v, &mut text);
    format!("{:016x}", crate::model::md5::fnv1a64(&text))
}

/// Appends `v` as compact JSON with every object's keys in byte order (strings and numbers as
/// serde_json writes them), into one buffer.
fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string serialises");
                out.push(b':');
                canonical_json(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar serialises"),
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn with_hash(mut obj: Value) -> Value {
    let h = hash_of(&obj);
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("built objects have metadata");
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("annotations is an object");
    ann.insert(DESIRED_HASH_ANNOTATION.into(), h.into());
    obj
}

/// Presets for `PresetsUpToDate`: the cluster's LLMInferenceServiceConfigs, and the embedded
/// ones the cluster does not override.
/// From the configs' watch cache; rebuilt only when a config changed (fingerprint of their
/// namespaces, names and resourceVersions). Without a cache (not listable at start): a LIST.
async fn preset_store(ctx: &Ctx) -> Arc<PresetStore> {
    let cached: Option<Vec<Arc<DynamicObject>>> = match &ctx.caches.presets {
        Some(store) if synced(store, "LLMInferenceServiceConfigs").await.is_ok() => {
            Some(store.state())
        }
        _ => None,
    };
    let fingerprint = cached.as_ref().map(|objs| {
        let mut ids: Vec<String> = objs
            .iter()
            .map(|o| {
                format!(
                    "{}/{}@{}",
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                    o.resource_version().unwrap_or_default()
                )
            })
            .collect();
        ids.sort();
        crate::model::md5::fnv1a64(ids.join(",").as_bytes())
    });
    if let (Some(fp), Ok(guard)) = (fingerprint, ctx.presets.lock())
        && let Some((have, store)) = guard.as_ref()
        && *have == fp
    {
        return store.clone();
    }
    let mut objs: Vec<Value> = match cached {
        Some(objs) => objs
            .iter()
            .filter_map(|o| serde_json::to_value(&**o).ok())
            .collect(),
        None => {
            let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &config_resource());
            match api.list(&ListParams::default()).await {
                Ok(l) => l
                    .items
                    .into_iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "listing presets");
                    vec![]
                }
            }
        }
    };
    let key = |v: &Value| {
        (
            v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            v["metadata"]["name"].as_str().unwrap_or("").to_string(),
        )
    };
    let have: BTreeSet<_> = objs.iter().map(key).collect();
    objs.extend(
        ctx.embedded
            .iter()
            .filter(|e| !have.contains(&key(e)))
            .cloned(),
    );
    let store = Arc::new(
        PresetStore::from_objects(objs, &ctx.cfg.system_namespace).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cluster presets do not load; comparing with the embedded ones");
            PresetStore::embedded(&ctx.cfg.system_namespace).expect("embedded presets load")
        }),
    );
    if let (Some(fp), Ok(mut guard)) = (fingerprint, ctx.presets.lock()) {
        *guard = Some((fp, store.clone()));
    }
    store
}

/// The LLMInferenceServiceConfig resource.
fn config_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.kserve.io", "v1alpha2", "LLMInferenceServiceConfig"),
        "llminferenceserviceconfigs",
    )
}

/// Is `ar` served? Kept for [`SERVED_TTL`].
async fn served_cached(ctx: &Ctx, ar: &ApiResource) -> bool {
    let key = format!("{}/{}", ar.api_version, ar.plural);
    if let Ok(m) = ctx.served.lock()
        && let Some((s, at)) = m.get(&key)
        && at.elapsed() < SERVED_TTL
    {
        return *s;
    }
    let s = served(&ctx.client, ar).await;
    if let Ok(mut m) = ctx.served.lock() {
        m.insert(key, (s, Instant::now()));
    }
    s
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let client = &ctx.client;
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.uid().unwrap_or_default();
    let finalized = obj
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER);
    if obj.metadata.deletion_timestamp.is_some() {
        // Namespaced children go with their owner; cluster-scoped ones are deleted here.
        if finalized {
            delete_cluster_scoped(client, &ns, &name).await?;
            let svc_api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns, &service_resource());
            set_finalizer(&svc_api, &obj, false).await?;
        }
        return Ok(Action::await_change());
    }
    let mut svc = cached_value(&obj)?;
    if svc.get("kind").is_none() {
        svc["apiVersion"] = "serving.kserve.io/v1alpha2".into();
        svc["kind"] = "LLMInferenceService".into();
    }
    let svc_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &service_resource());

    let regarding = service_ref(&obj);
    // The other members of its routing group, from the services' cache.
    // (The first list must be complete: no event would requeue it for a member seen late.)
    let peers = match (super::group::group_of(&svc), &ctx.caches.services) {
        (Some(g), Some(store)) => {
            synced(store, "LLMInferenceService").await?;
            group_peers(store, &ns, g, &name)
        }
        _ => Vec::new(),
    };
    let desired = match super::build::build_grouped(&svc, &ctx.cfg.build, &peers) {
        Ok(d) => d,
        Err(super::build::BuildError::PendingBaseRefs(names)) => {
            return pending_base_refs(&ctx, &svc_api, &svc, &regarding, &names).await;
        }
        Err(e) => {
            // Keep what runs: neither apply nor prune; say why in the status and an event.
            tracing::warn!(%ns, %name, error = %e, "cannot build; children left as they are");
            let message = e.to_string();
            publish(
                &ctx,
                &regarding,
                EventType::Warning,
                "InvalidSpec",
                message.clone(),
                None,
            )
            .await;
            let status = super::status::invalid_spec(&svc, &message, &now_rfc3339());
            write_status(&ctx, &svc_api, &svc, &status, &ns, &name).await?;
            return Ok(Action::requeue(ctx.cfg.resync));
        }
    };
    // A service with cluster-scoped children holds the finalizer (before they are created) by
    // which they are deleted with it.
    if !finalized
        && desired
            .iter()
            .any(|d| cluster_scoped(d["kind"].as_str().unwrap_or_default()))
    {
        set_finalizer(&svc_api, &obj, true).await?;
    }
    let mut desired = desired;
    // As KServe: the ServiceAccounts we create carry the pull secrets of the namespace's
    // `default` one (when it cannot be read, they go without, as KServe).
    // Read from the watch cache; a miss (cache not synced, or no such account) is one GET.
    if desired.iter().any(|d| d["kind"] == "ServiceAccount") {
        let cached = ctx
            .caches
            .default_service_accounts
            .as_ref()
            .and_then(|(ar, store)| {
                store.get(&ObjectRef::new_with("default", ar.clone()).within(&ns))
            });
        let default_sa = match cached {
            Some(sa) => Some(serde_json::to_value(sa.as_ref())?),
            None => {
                let sa_api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &ns, &resource_of("v1", "ServiceAccount"));
                match sa_api.get_opt("default").await {
                    Ok(sa) => sa.map(|sa| serde_json::to_value(&sa)).transpose()?,
                    Err(e) => {
                        tracing::warn!(%ns, error = %e, "cannot read the default ServiceAccount");
                        None
                    }
                }
            }
        };
        if let Some(sa) = default_sa {
            super::build::inject_default_sa_secrets(&mut desired, &sa);
        }
    }
    // The v1alpha2 InferencePool only where its API is served (as KServe).
    if desired
        .iter()
        .any(|d| d["apiVersion"] == super::build::POOL_V1ALPHA2_API_VERSION)
        && !ctx
            .caches
            .children
            .contains_key(&(super::build::POOL_V1ALPHA2_API_VERSION, "InferencePool"))
        && !served_cached(
            &ctx,
            &resource_of(super::build::POOL_V1ALPHA2_API_VERSION, "InferencePool"),
        )
        .await
    {
        desired.retain(|d| d["apiVersion"] != super::build::POOL_V1ALPHA2_API_VERSION);
    }
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let mut observed = Vec::new();
    let mut keep = BTreeSet::new();
    let mut writes = 0;
    for d in desired {
        let d = with_hash(d);
        let api_version = d["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = d["kind"].as_str().unwrap_or_default().to_string();
        let cname = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        keep.insert((api_version.clone(), kind.clone(), cname.clone()));
        let api = child_api(client, &ns, &api_version, &kind);
        let what = || format!("{kind} {ns}/{cname}");
        let akey = format!("{kind} {ns}/{cname}");
        let hash = d["metadata"]["annotations"][DESIRED_HASH_ANNOTATION]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cache = ctx
            .caches
            .children
            .iter()
            .find(|((a, k), _)| *a == api_version && *k == kind)
            .map(|(_, c)| c);
        let live = match cache {
            Some((car, store)) => {
                synced(store, &format!("{kind} ({api_version})")).await?;
                let mut r = ObjectRef::new_with(&cname, car.clone());
                if !cluster_scoped(&kind) {
                    r = r.within(&ns);
                }
                store.get(&r).map(|o| cached_value(&o)).transpose()?
            }
            None => match api.get_opt(&cname).await {
                Ok(l) => l.map(serde_json::to_value).transpose()?,
                Err(source) => {
                    return Err(Error::Object {
                        what: what(),
                        source,
                    });
                }
            },
        };
        if let Some(l) = &live
            && contained(&d, l)
        {
            if let Ok(mut a) = ctx.applied.lock() {
                a.remove(&akey);
            }
            observed.push(l.clone());
            continue;
        }
        // The cache may not have seen our last write yet: the same desired object applied by
        // this process at a newer resourceVersion than the cached copy is not applied again.
        let cached_rv = live
            .as_ref()
            .and_then(|l| rv_of(&l["metadata"]))
            .unwrap_or(0);
        let pending = ctx.applied.lock().ok().and_then(|a| {
            a.get(&akey)
                .filter(|(h, rv)| *h == hash && *rv > cached_rv)
                .cloned()
        });
        if pending.is_some() {
            tracing::debug!(%ns, service = %name, kind, name = %cname, "cache behind our write; not applying again");
            if let Some(l) = live {
                observed.push(l);
            }
            continue;
        }
        let mut reason = if live.is_some() { "Updated" } else { "Created" };
        if let Some(l) = &live {
            tracing::info!(%ns, service = %name, kind, name = %cname, difference = first_difference(&d, l, "").unwrap_or_default(), "live object differs");
        }
        // A Deployment's selector is immutable (it changes when the role label does, e.g.
        // prefill added or removed): replace the object.
        if let Some(l) = &live
            && kind == "Deployment"
            && l["spec"]["selector"] != d["spec"]["selector"]
        {
            reason = "Recreated";
            tracing::info!(%ns, service = %name, name = %cname, "selector changed; recreating");
            match api.delete(&cname, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(source) => {
                    return Err(Error::Object {
                        what: what(),
                        source,
                    });
                }
            }
        }
        let applied = api
            .patch(&cname, &pp, &Patch::Apply(&d))
            .await
            .map_err(|source| Error::Object {
                what: what(),
                source,
            })?;
        writes += 1;
        if let (Some(rv), Ok(mut a)) = (written_version(&applied), ctx.applied.lock()) {
            a.insert(akey, (hash, rv));
        }
        tracing::info!(%ns, service = %name, kind, name = %cname, reason, "applied");
        publish(
            &ctx,
            &regarding,
            EventType::Normal,
            reason,
            format!("{reason} {kind} {cname}"),
            Some(child_ref(&api_version, &kind, &ns, &cname)),
        )
        .await;
        observed.push(serde_json::to_value(applied)?);
    }

    // Prune children no longer built.
    let why_pruned = if super::build::stopped(&svc) {
        "the service is stopped"
    } else {
        "no longer part of the service"
    };
    let owner = Owner {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };
    for (api_version, kind, _) in CHILD_KINDS {
        let api = child_api(client, &ns, api_version, kind);
        let gone: Vec<String> = match ctx.caches.children.get(&(*api_version, *kind)) {
            Some((_, store)) => {
                synced(store, &format!("{kind} ({api_version})")).await?;
                let state = store.state();
                prunable(state.iter().map(|o| &**o), api_version, kind, &owner, &keep)
            }
            None => {
                if !served_cached(&ctx, &resource_of(api_version, kind)).await {
                    continue; // CRD not installed
                }
                let selector = children_selector(&ns, &name, kind);
                match api.list(&ListParams::default().labels(&selector)).await {
                    Ok(l) => prunable(l.items.iter(), api_version, kind, &owner, &keep),
                    Err(e) if not_found(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        for oname in gone {
            match api.delete(&oname, &DeleteParams::background()).await {
                Ok(_) => {
                    writes += 1;
                    tracing::info!(%ns, service = %name, kind, name = %oname, "pruned");
                    publish(
                        &ctx,
                        &regarding,
                        EventType::Normal,
                        "Deleted",
                        format!("Deleted {kind} {oname}: {why_pruned}"),
                        Some(child_ref(api_version, kind, &ns, &oname)),
                    )
                    .await;
                }
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    // User-managed HTTPRoutes (`router.route.http.refs`), as KServe's
    // `collectReferencedRoutes`: read (GET: they carry none of our labels, so no watch cache
    // has them; a change to one is seen at the next reconcile or resync) for the status.
    let mut parent_refs: Vec<Value> = svc["spec"]["router"]["route"]["http"]["spec"]["parentRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let referenced = super::status::referenced_routes(&svc);
    if !referenced.is_empty() && svc["spec"]["router"]["route"]["http"]["spec"].is_null() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &http_route_resource());
        for rname in referenced {
            match api.get_opt(&rname).await {
                Ok(Some(r)) => {
                    let mut r = serde_json::to_value(r)?;
                    r["apiVersion"] = names::HTTP_ROUTE_API_VERSION.into();
                    r["kind"] = "HTTPRoute".into();
                    parent_refs.extend(
                        r["spec"]["parentRefs"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                    );
                    observed.push(r);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(%ns, service = %name, route = %rname, error = %e, "cannot read a referenced HTTPRoute")
                }
            }
        }
    }

    // Gateways named by the routes, for the URL.
    for p in &parent_refs {
        if p.get("kind").and_then(Value::as_str).unwrap_or("Gateway") != "Gateway" {
            continue;
        }
        let (Some(gname), gns) = (p["name"].as_str(), p["namespace"].as_str().unwrap_or(&ns))
        else {
            continue;
        };
        let found = match &ctx.caches.gateways {
            Some((gar, store)) => {
                synced(store, "Gateways").await?;
                store
                    .get(&ObjectRef::new_with(gname, gar.clone()).within(gns))
                    .map(|g| (*g).clone())
            }
            None => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), gns, &gateway_resource());
                api.get_opt(gname).await.ok().flatten()
            }
        };
        if let Some(g) = found {
            let mut g = serde_json::to_value(g)?;
            g["kind"] = "Gateway".into();
            observed.push(g);
        }
    }

    // A workload short of ready replicas: its Pending pods, so that the status can say why
    // (the scheduler's reason, e.g. no node with enough GPUs).
    let short = observed.iter().any(|o| {
        matches!(o["kind"].as_str(), Some("Deployment" | "LeaderWorkerSet"))
            && o["status"]["readyReplicas"].as_i64().unwrap_or(0)
                < o["spec"]["replicas"].as_i64().unwrap_or(1)
    });
    if short {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let lp = ListParams::default()
            .labels(&format!("{PART_OF_LABEL}={PART_OF},{NAME_LABEL}={name}"))
            .fields("status.phase=Pending");
        match pods.list(&lp).await {
            Ok(list) => {
                for p in list.items {
                    let mut p = serde_json::to_value(p)?;
                    p["kind"] = "Pod".into();
                    observed.push(p);
                }
            }
            Err(e) => tracing::debug!(%ns, service = %name, error = %e, "cannot list pods"),
        }
    }

    let presets = preset_store(&ctx).await;
    let status = super::status::status_grouped(&svc, &observed, &presets, &now_rfc3339(), &peers);
    if write_status(&ctx, &svc_api, &svc, &status, &ns, &name).await? {
        writes += 1;
    }
    if let Ok(mut f) = ctx.failures.lock() {
        f.remove(&key_of(&obj));
    }
    tracing::debug!(%ns, service = %name, writes, "reconciled");
    Ok(Action::requeue(ctx.cfg.resync))
}

/// A service stored un-expanded because its baseRefs named configs that did not exist (see
/// `presets::MISSING_BASE_REFS_ANNOTATION`): nothing is built from it. Once every config
/// exists, the marker is removed with a patch, which goes through the mutating webhook: it
/// expands the service (or marks it again if a config is still missing). Until then the
/// status says what it waits for, and it is looked at again shortly (configs are not watched).
async fn pending_base_refs(
    ctx: &Ctx,
    svc_api: &Api<DynamicObject>,
    svc: &Value,
    regarding: &ObjectReference,
    names: &[String],
) -> Result<Action, Error> {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let store = preset_store(ctx).await;
    if names.iter().all(|n| store.get(ns, n).is_some()) {
        let patch = json!({"metadata": {"annotations": {MISSING_BASE_REFS_ANNOTATION: null}}});
        match svc_api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                publish(
                    ctx,
                    regarding,
                    EventType::Normal,
                    "Readmitted",
                    format!("LLMInferenceServiceConfig {names:?} now exist; the service was admitted again to expand it"),
                    None,
                )
                .await;
                // The webhook's config cache may lag the cluster: it then marks the service
                // again, an update that changes nothing and wakes no watch. Look again soon.
                return Ok(Action::requeue(Duration::from_secs(3)));
            }
            Err(e) => tracing::warn!(%ns, %name, error = %e, "could not ask for re-admission"),
        }
    }
    let message = super::build::BuildError::PendingBaseRefs(names.to_vec()).to_string();
    let status = super::status::config_not_found(svc, &message, &now_rfc3339());
    write_status(ctx, svc_api, svc, &status, ns, name).await?;
    Ok(Action::requeue(ctx.cfg.resync.min(Duration::from_secs(20))))
}

/// Writes `status` through the status subresource when it differs from the service's
/// (keys the new status lacks are removed); true when written. Not written either when this
/// process wrote the same status at a newer resourceVersion than `svc` (the watch cache has
/// not caught up with that write).
async fn write_status(
    ctx: &Ctx,
    svc_api: &Api<DynamicObject>,
    svc: &Value,
    status: &LLMInferenceServiceStatus,
    ns: &str,
    name: &str,
) -> Result<bool, Error> {
    let status = serde_json::to_value(status)?;
    let old = svc.get("status").cloned().unwrap_or(Value::Null);
    let key = format!("{ns}/{name}");
    if old == status {
        if let Ok(mut w) = ctx.written.lock() {
            w.remove(&key);
        }
        return Ok(false);
    }
    let cached_rv = rv_of(&svc["metadata"]).unwrap_or(0);
    if ctx.written.lock().ok().is_some_and(|w| {
        w.get(&key)
            .is_some_and(|(rv, st)| *rv > cached_rv && *st == status)
    }) {
        return Ok(false);
    }
    let written = status.clone();
    let mut patch = status;
    if let (Some(o), Some(p)) = (old.as_object(), patch.as_object_mut()) {
        for k in o.keys() {
            p.entry(k.clone()).or_insert(Value::Null);
        }
    }
    let after = svc_api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": patch })),
        )
        .await
        .map_err(|source| Error::Object {
            what: format!("status of {ns}/{name}"),
            source,
        })?;
    if let (Some(rv), Ok(mut w)) = (written_version(&after), ctx.written.lock()) {
        w.insert(key, (rv, written));
    }
    tracing::info!(%ns, service = %name, "status written");
    Ok(true)
}

/// The service as an event's `regarding`.
fn service_ref(obj: &DynamicObject) -> ObjectReference {
    ObjectReference {
        api_version: Some("serving.kserve.io/v1alpha2".into()),
        kind: Some("LLMInferenceService".into()),
        name: obj.metadata.name.clone(),
        namespace: obj.metadata.namespace.clone(),
        uid: obj.metadata.uid.clone(),
        resource_version: obj.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn child_ref(api_version: &str, kind: &str, ns: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

/// Publishes an event on the service; a failure is logged, never fatal. (The child, when
/// given, is the related object: it also keeps events about different children apart in the
/// recorder's de-duplication.)
async fn publish(
    ctx: &Ctx,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
    related: Option<ObjectReference>,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate_note(note)),
        action: "Reconcile".into(),
        secondary: related,
    };
    if let Err(e) = ctx.recorder.publish(&ev, regarding).await {
        tracing::debug!(error = %e, reason, "could not write an event");
    }
}

/// Event notes are limited to 1 kB.
fn truncate_note(mut note: String) -> String {
    if note.len() > 1024 {
        let mut end = 1021;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

fn error_policy(obj: Arc<DynamicObject>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let n = ctx.failures.lock().map_or(1, |mut f| {
        let n = f.entry(key_of(&obj)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    });
    let delay = backoff(ctx.cfg.error_delay, n);
    tracing::warn!(service = %obj.name_any(), namespace = ?obj.namespace(), error = %err, failures = n, retry_in = ?delay, "reconcile failed; retrying");
    let regarding = service_ref(&obj);
    let note = format!("{err}; retrying in {}s", delay.as_secs());
    tokio::spawn(async move {
        publish(
            &ctx,
            &regarding,
            EventType::Warning,
            "ReconcileFailed",
            note,
            None,
        )
        .await;
    });
    Action::requeue(delay)
}

/// Is `ar` served (its CRD installed)?
async fn served(client: &Client, ar: &ApiResource) -> bool {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    api.list(&ListParams::default().limit(1)).await.is_ok()
}

/// The Gateway resource (`gateway.networking.k8s.io/v1`).
fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(names::GATEWAY_GROUP, "v1", "HTTPRoute"),
        "httproutes",
    )
}

fn gateway_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(names::GATEWAY_GROUP, "v1", "Gateway"),
        "gateways",
    )
}

/// Key under which [`cache_form`] keeps an object's packed fields.
const PACKED: &str = "llmisvc.kserve.io/packed";

/// The `resourceVersion` the API server gave our write, as a number: remembered so that a
/// watch cache still older than our own write is not mistaken for drift (children and status
/// alike). `None` when absent or not numeric (the API server's are decimal integers).
fn written_version(o: &DynamicObject) -> Option<u64> {
    o.metadata.resource_version.as_deref()?.parse().ok()
}

/// Watch settings: initial LISTs in pages of [`LIST_PAGE_SIZE`].
fn paged() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// A cluster-wide watch of `ar` objects (LIST pages of [`paged`], backoff on errors) into a
/// cache of their [`cache_form`]: the cache, and a stream that yields once per changed object
/// (for `Controller::reconcile_all_on`).
fn watched_cache(
    client: &Client,
    ar: &ApiResource,
) -> (
    Store<DynamicObject>,
    impl futures::Stream<Item = ()> + Send + 'static,
) {
    let writer = Writer::new(ar.clone());
    let cache = writer.as_reader();
    let changes = watcher(Api::<DynamicObject>::all_with(client.clone(), ar), paged())
        .default_backoff()
        .modify(cache_form(ar, false))
        .reflect(writer)
        .touched_objects()
        .map(|_| ());
    (cache, changes)
}

/// What a watch cache keeps of an object: no managedFields (never read), its apiVersion/kind
/// set (LIST items come without them) and, with `pack`, every top-level object or array
/// besides `metadata` (`spec`, `status`, a Role's `rules`, ...) as one compact JSON text under
/// [`PACKED`] (a `serde_json::Value` tree takes several times the memory of its text; services
/// and children are mostly spec and status). [`cached_value`] restores it; metadata (names,
/// labels, owners, resourceVersion: what the caches are searched by) stays as it is.
fn cache_form(ar: &ApiResource, pack: bool) -> impl FnMut(&mut DynamicObject) + use<> {
    let types = kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    };
    move |o: &mut DynamicObject| {
        o.metadata.managed_fields = None;
        o.types = Some(types.clone());
        if pack
            && let Some(data) = o.data.as_object_mut()
            && !data.contains_key(PACKED)
        {
            let keys: Vec<String> = data
                .iter()
                .filter(|(_, v)| v.is_object() || v.is_array())
                .map(|(k, _)| k.clone())
                .collect();
            if keys.is_empty() {
                return;
            }
            let mut packed = serde_json::Map::new();
            for k in keys {
                if let Some(v) = data.remove(&k) {
                    packed.insert(k, v);
                }
            }
            data.insert(
                PACKED.into(),
                Value::String(Value::Object(packed).to_string()),
            );
        }
    }
}

/// A cached object as JSON, its packed fields restored (see [`cache_form`]).
fn cached_value(o: &DynamicObject) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(o)?;
    if let Some(obj) = v.as_object_mut()
        && let Some(Value::String(text)) = obj.remove(PACKED)
    {
        let packed: serde_json::Map<String, Value> = serde_json::from_str(&text)?;
        obj.extend(packed);
    }
    Ok(v)
}

/// Runs the controller (no leader election) until `shutdown` completes.
pub async fn run_controller(
    client: Client,
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let embedded = EMBEDDED_FILES
        .iter()
        .flat_map(|(file, text)| parse_yaml_documents(text, file).unwrap_or_default())
        .map(|mut v| {
            v["metadata"]["namespace"] = cfg.system_namespace.clone().into();
            v
        })
        .collect();
    let ar = service_resource();
    let svc_api: Api<DynamicObject> = match &cfg.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let owned_wc = paged().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    // The services' own cache keeps them without managedFields (as large as the spec once
    // a few managers have written): at 1,000 services that is most of the reconciler's heap.
    let svc_writer = Writer::new(ar.clone());
    let svc_reader = svc_writer.as_reader();
    let (group_tx, group_rx) = futures::channel::mpsc::unbounded();
    let svc_stream = watcher(svc_api, paged())
        .modify(cache_form(&ar, true))
        .inspect(group_fanout(svc_reader.clone(), ar.clone(), group_tx))
        .reflect(svc_writer)
        .applied_objects();
    let mut caches = Caches {
        services: Some(svc_reader.clone()),
        ..Caches::default()
    };
    let mut controller = Controller::for_stream_with(svc_stream, svc_reader, ar)
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(DEBOUNCE)
                .concurrency(MAX_CONCURRENT_RECONCILES),
        )
        .reconcile_on(group_rx);
    // One watch per served child kind fills its cache and wakes the owning service.
    for (api_version, kind, _) in CHILD_KINDS {
        let car = resource_of(api_version, kind);
        if !served(&client, &car).await {
            tracing::info!(kind, api_version, "not served; not watching it");
            continue;
        }
        let api: Api<DynamicObject> = match &cfg.namespace {
            Some(ns) if !cluster_scoped(kind) => Api::namespaced_with(client.clone(), ns, &car),
            _ => Api::all_with(client.clone(), &car),
        };
        let writer = Writer::new(car.clone());
        caches
            .children
            .insert((*api_version, *kind), (car.clone(), writer.as_reader()));
        let stream = watcher(api, owned_wc.clone())
            .default_backoff()
            .modify(cache_form(&car, true))
            .reflect(writer)
            .applied_objects();
        controller = controller.owns_stream_with(stream, car);
    }
    // Presets: a changed config queues every service once (PresetsUpToDate); the work
    // queue's concurrency bounds the write rate.
    let car = config_resource();
    if served(&client, &car).await {
        let (cache, changes) = watched_cache(&client, &car);
        caches.presets = Some(cache);
        controller = controller.reconcile_all_on(changes);
    }
    let gar = gateway_resource();
    if served(&client, &gar).await {
        let (cache, changes) = watched_cache(&client, &gar);
        caches.gateways = Some((gar.clone(), cache));
        controller = controller.reconcile_all_on(changes);
    }
    // The namespaces' `default` ServiceAccounts (pull secrets to copy): cached, not watched for
    // wake-ups (a change reaches the services at their next reconcile or resync, as in KServe).
    let sar = resource_of("v1", "ServiceAccount");
    if served(&client, &sar).await {
        let api: Api<DynamicObject> = match &cfg.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &sar),
            None => Api::all_with(client.clone(), &sar),
        };
        let writer = Writer::new(sar.clone());
        caches.default_service_accounts = Some((sar.clone(), writer.as_reader()));
        let stream = watcher(api, paged().fields("metadata.name=default"))
            .default_backoff()
            .modify(cache_form(&sar, false))
            .reflect(writer)
            .touched_objects();
        tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    }
    // Pending pods of services wake their service: the scheduler's verdict reaches the status.
    let pods: Api<Pod> = match &cfg.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let pending = paged()
        .labels(&format!("{PART_OF_LABEL}={PART_OF}"))
        .fields("status.phase=Pending");
    let svc_ar = service_resource();
    controller = controller.watches(pods, pending, move |pod: Pod| {
        let name = pod.labels().get(NAME_LABEL)?.clone();
        let ns = pod.namespace()?;
        Some(ObjectRef::new_with(&name, svc_ar.clone()).within(&ns))
    });
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        cfg,
        embedded,
        failures: Default::default(),
        caches,
        served: Default::default(),
        applied: Default::default(),
        written: Default::default(),
        presets: Default::default(),
    });
    tracing::info!("reconciler running");
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

/// One round of leader election: `Ok(true)` when this process holds the lease afterwards.
/// `seen` remembers the other holder's last renewal and when it was first observed (local
/// clock only, as client-go does).
async fn try_lead(
    api: &Api<Lease>,
    lc: &LeaseConfig,
    seen: &mut Option<(String, Instant)>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let secs = lc.duration.as_secs().max(1) as i32;
    let mine = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(lc.identity.clone()),
        lease_duration_seconds: Some(secs),
        acquire_time: acquire.or(Some(now.clone())),
        renew_time: Some(now.clone()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let Some(mut lease) = api.get_opt(&lc.name).await? else {
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(lc.name.clone()),
                namespace: Some(lc.namespace.clone()),
                ..Default::default()
            },
            spec: Some(mine(0, None)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let transitions = spec.lease_transitions.unwrap_or(0);
    let new_spec = if holder == lc.identity {
        mine(transitions, spec.acquire_time.clone())
    } else {
        let stamp = format!("{holder}@{:?}", spec.renew_time.as_ref().map(|t| t.0));
        let expired = holder.is_empty()
            || match seen {
                Some((s, at)) if *s == stamp => {
                    at.elapsed()
                        >= Duration::from_secs(
                            spec.lease_duration_seconds.unwrap_or(secs).max(1) as u64
                        )
                }
                _ => {
                    *seen = Some((stamp, Instant::now()));
                    false
                }
            };
        if !expired {
            return Ok(false);
        }
        tracing::info!(previous = %holder, "taking over the lease");
        mine(transitions + 1, None)
    };
    lease.spec = Some(new_spec);
    match api.replace(&lc.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up (on shutdown) so another replica takes over at once.
async fn release(api: &Api<Lease>, lc: &LeaseConfig) {
    if let Ok(Some(mut lease)) = api.get_opt(&lc.name).await
        && lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(lc.identity.as_str())
    {
        if let Some(s) = lease.spec.as_mut() {
            s.holder_identity = None;
        }
        let _ = api.replace(&lc.name, &PostParams::default(), &lease).await;
    }
}

/// Runs the reconciler until `shutdown` completes: with leader election when
/// `cfg.lease` is set (the controller runs only while this process holds the Lease).
pub async fn run(
    client: Client,
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Some(lc) = cfg.lease.clone() else {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(());
        });
        run_controller(client, cfg, async move {
            let _ = rx.await;
        })
        .await;
        return Ok(());
    };
    let api: Api<Lease> = Api::namespaced(client.clone(), &lc.namespace);
    let mut seen = None;
    let mut last_renewal: Option<Instant> = None;
    let mut running: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )> = None;
    // Stop leading well before another replica may take over.
    let deadline = lc.renew_deadline();
    tokio::pin!(shutdown);
    loop {
        // A renewal that hangs (an overloaded API server) must not keep us leading past the
        // deadline: each attempt is bounded by what is left of it (client-go bounds its renew
        // loop by RenewDeadline the same way).
        let budget = match last_renewal {
            Some(t) => deadline.saturating_sub(t.elapsed()),
            None => lc.duration,
        }
        .max(Duration::from_millis(100));
        let attempt = match tokio::time::timeout(budget, try_lead(&api, &lc, &mut seen)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {budget:?}")),
        };
        let leading = match attempt {
            Ok(true) => {
                last_renewal = Some(Instant::now());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed");
                last_renewal.is_some_and(|t| t.elapsed() < deadline)
            }
        };
        if !leading {
            last_renewal = None;
        }
        match (&running, leading) {
            (None, true) => {
                tracing::info!(identity = %lc.identity, lease = %lc.name, "leading");
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let h = tokio::spawn(run_controller(client.clone(), cfg.clone(), async move {
                    let _ = rx.await;
                }));
                running = Some((h, tx));
            }
            (Some(_), false) => {
                tracing::warn!("lost the lease; stopping the reconciler");
                if let Some((h, _)) = running.take() {
                    h.abort();
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(lc.retry) => {}
        }
    }
    if let Some((mut h, tx)) = running.take() {
        // In-flight reconciles get a few seconds; the Lease is released in any case (a
        // controller stopped while it was still starting may not wind down by itself).
        let _ = tx.send(());
        if tokio::time::timeout(Duration::from_secs(5), &mut h)
            .await
            .is_err()
        {
            h.abort();
        }
        release(&api, &lc).await;
    }
    Ok(())
}

/// Config for `serve --reconcile`: all namespaces, leader election in `lease_namespace`.
pub fn serve_config(system_namespace: &str, lease_namespace: &str, build: BuildOptions) -> Config {
    Config {
        namespace: None,
        system_namespace: system_namespace.to_string(),
        lease: Some(LeaseConfig::new(lease_namespace)),
        resync: Duration::from_secs(300),
        error_delay: Duration::from_secs(5),
        build,
    }
}

/// `llmisvc reconcile`: re-executes once with the allocator options, logs in `log_format`,
/// runs the reconciler with `cfg` until SIGTERM or SIGINT (then releases the Lease).
pub fn run_blocking(cfg: Config, log_format: LogFormat) -> anyhow::Result<std::process::ExitCode> {
    // As `serve`: mimalloc purging freed memory at once, without huge pages, committing on
    // demand (a new leader's initial LISTs are a burst; with mimalloc's defaults the process
    // keeps most of that peak). Re-executes itself once with those settings.
    crate::process::tune_allocator();
    crate::process::init_logging(log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = Client::try_default().await?;
        run(client, cfg, crate::process::shutdown_signal()).await
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Keys for a quick look at what a list of objects holds (tests, logs).
pub fn index(objs: &[Value]) -> HashMap<(String, String), &Value> {
    objs.iter()
        .map(|o| {
            (
                (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
                o,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is a fixed function of the object: the same in every process and release.
    #[test]
    fn child_hash_is_stable() {
        let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}});
        assert_eq!(hash_of(&obj), "340951819071eb28");
        // Key order does not count; values do.
        let reordered = json!({"metadata": {"name": "a"}, "kind": "Service", "apiVersion": "v1"});
        assert_eq!(hash_of(&reordered), "340951819071eb28");
        let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}});
        assert_ne!(hash_of(&other), "340951819071eb28");
        let mut text = Vec::new();
        canonical_json(
            &json!({"b": [1, "x\"y", null], "a": {"d": 1.5, "c": true}}),
            &mut text,
        );
        assert_eq!(text, br#"{"a":{"c":true,"d":1.5},"b":[1,"x\"y",null]}"#);
    }

    #[test]
    fn containment() {
        assert!(contained(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!contained(&json!({"a": 1, "b": 2}), &json!({"a": 1})));
        assert!(contained(&json!([{"a": 1}]), &json!([{"a": 1, "x": 0}])));
        assert!(!contained(&json!([{"a": 1}]), &json!([{"a": 1}, {"a": 2}])));
        assert!(contained(&json!({"n": 8000}), &json!({"n": 8000.0})));
    }

    #[test]
    fn first_difference_names_the_path() {
        let live = json!({"a": {"b": [1, 3]}, "c": 1});
        assert_eq!(
            first_difference(&json!({"a": {"b": [1, 2]}}), &live, ""),
            Some(".a.b[1]: 2 live 3".into())
        );
        assert_eq!(first_difference(&json!({"c": 1.0}), &live, ""), None);
        assert_eq!(
            first_difference(&json!({"x": 1}), &live, ""),
            Some(".x (absent live)".into())
        );
        assert_eq!(
            first_difference(&json!({"a": {"b": [1]}}), &live, ""),
            Some(".a.b (length 1 live 2)".into())
        );
    }

    /// Pruning goes by the controller owner reference (namespaced) or the service's labels
    /// (cluster-scoped). The earlier rule (labels `managed-by` + `app.kubernetes.io/name`, then
    /// any owner reference with the uid) left `relabelled` (still ours) and took `linked` (an
    /// object that only names the service for garbage collection).
    #[test]
    fn prune_goes_by_owner_uid() {
        let obj = |name: &str, ns: Option<&str>, labels: Value, owners: Value| -> DynamicObject {
            let mut meta = json!({"name": name, "labels": labels, "ownerReferences": owners});
            if let Some(ns) = ns {
                meta["namespace"] = ns.into();
            }
            serde_json::from_value(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}),
            )
            .unwrap()
        };
        let ours = json!({MANAGED_BY_LABEL: MANAGED_BY, NAME_LABEL: "m"});
        let owner_ref = |uid: &str, controller: bool| {
            json!([{"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
                "name": "m", "uid": uid, "controller": controller}])
        };
        let owner = Owner {
            namespace: "ns",
            name: "m",
            uid: "uid-new",
        };
        let keep: BTreeSet<(String, String, String)> = [(
            "apps/v1".to_string(),
            "Deployment".to_string(),
            "kept".to_string(),
        )]
        .into();
        let live = [
            // Ours and still built.
            obj("kept", Some("ns"), ours.clone(), owner_ref("uid-new", true)),
            // Ours, no longer built.
            obj("old", Some("ns"), ours.clone(), owner_ref("uid-new", true)),
            // Ours, its name label edited: still ours (the earlier rule never pruned it).
            obj(
                "relabelled",
                Some("ns"),
                json!({MANAGED_BY_LABEL: MANAGED_BY, NAME_LABEL: "other"}),
                owner_ref("uid-new", true),
            ),
            // Same labels, owned by the deleted service of the same name: not ours.
            obj(
                "previous",
                Some("ns"),
                ours.clone(),
                owner_ref("uid-old", true),
            ),
            // Our uid, but not as controller (a user's GC link): not ours to delete.
            obj(
                "linked",
                Some("ns"),
                ours.clone(),
                owner_ref("uid-new", false),
            ),
            // Our uid in another namespace (cannot be a real owner there): not ours.
            obj(
                "elsewhere",
                Some("other-ns"),
                ours.clone(),
                owner_ref("uid-new", true),
            ),
        ];
        assert_eq!(
            prunable(live.iter(), "apps/v1", "Deployment", &owner, &keep),
            vec!["old", "relabelled"]
        );
        // The same name under another apiVersion/kind is not kept.
        assert_eq!(
            prunable(live[..1].iter(), "apps/v1", "StatefulSet", &owner, &keep),
            vec!["kept"]
        );
        // Cluster-scoped: no owner; the service's labels, including its namespace.
        let crb = |ns_label: &str| {
            obj(
                "ns-m-epp-auth-rb",
                None,
                json!({MANAGED_BY_LABEL: MANAGED_BY, NAME_LABEL: "m", SERVICE_NAMESPACE_LABEL: ns_label}),
                json!(null),
            )
        };
        let live = [crb("ns"), crb("other-ns")];
        assert_eq!(
            prunable(
                live.iter(),
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                &owner,
                &BTreeSet::new()
            ),
            vec!["ns-m-epp-auth-rb"]
        );
    }

    /// Cached objects keep apiVersion/kind (LIST items lack them) and drop managedFields.
    #[test]
    fn cache_form_sets_types_and_drops_managed_fields() {
        let ar = resource_of("apps/v1", "Deployment");
        let mut o: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "d", "resourceVersion": "42",
                "managedFields": [{"manager": "llmisvc-reconciler", "operation": "Apply"}]},
            "spec": {"replicas": 1},
            "status": {"readyReplicas": 1},
            "kept": "as is"
        }))
        .unwrap();
        cache_form(&ar, true)(&mut o);
        assert!(o.data.get("spec").is_none(), "{:?}", o.data);
        assert!(o.data[PACKED].is_string(), "{:?}", o.data);
        let v = cached_value(&o).unwrap();
        assert_eq!(
            (v["apiVersion"].as_str(), v["kind"].as_str()),
            (Some("apps/v1"), Some("Deployment"))
        );
        assert!(v["metadata"].get("managedFields").is_none(), "{v}");
        assert_eq!(rv_of(&v["metadata"]), Some(42));
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["status"]["readyReplicas"], 1);
        assert_eq!(v["kept"], "as is");
        // Packed once: a second pass changes nothing.
        let again = o.clone();
        cache_form(&ar, true)(&mut o);
        assert_eq!(o.data, again.data);
    }

    /// client-go's timings scaled to the duration: 10 s -> retry 2 s, renew deadline 6.7 s;
    /// the tests' 3 s -> 1 s, 2 s; 15 s -> 2 s, 10 s (controller-runtime's defaults).
    #[test]
    fn lease_timings() {
        let lc = LeaseConfig::new("ns");
        assert_eq!(lc.duration, Duration::from_secs(10));
        assert_eq!(lc.retry, Duration::from_secs(2));
        assert_eq!(lc.renew_deadline().as_millis(), 6666);
        assert_eq!(
            LeaseConfig::retry_for(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            LeaseConfig::retry_for(Duration::from_secs(15)),
            Duration::from_secs(2)
        );
        // The holder stops before a standby may take over, with at least one retry to spare.
        for secs in [3, 10, 15, 60] {
            let mut lc = LeaseConfig::new("ns");
            lc.duration = Duration::from_secs(secs);
            lc.retry = LeaseConfig::retry_for(lc.duration);
            assert!(lc.renew_deadline() + lc.retry <= lc.duration, "{secs}");
        }
    }

    /// KServe's `groupMemberEventHandler` + `trafficFieldsChanged`: a traffic-relevant change
    /// of a group member (weight, group switch, deletion) queues the other members of its old
    /// and new group; a change that is not (an annotation) or a service without a group queues
    /// nothing.
    #[test]
    fn group_member_change_requeues_the_other_members() {
        let ar = service_resource();
        let svc = |name: &str, group: Option<&str>, weight: i64| {
            let mut route = json!({"weight": weight});
            if let Some(g) = group {
                route["group"] = json!(g);
            }
            let mut o: DynamicObject = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"model": {"name": "llama"}, "router": {"route": route}},
            }))
            .unwrap();
            cache_form(&ar, true)(&mut o);
            o
        };
        let mut writer = Writer::new(ar.clone());
        for o in [
            svc("a", Some("g"), 50),
            svc("b", Some("g"), 50),
            svc("c", Some("h"), 50),
            svc("d", None, 50),
            svc("e", Some("g"), 50),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(o));
        }
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let mut fanout = group_fanout(writer.as_reader(), ar.clone(), tx);
        let mut queued = |ev: watcher::Event<DynamicObject>| {
            fanout(&Ok(ev));
            let mut names = BTreeSet::new();
            while let Ok(r) = rx.try_recv() {
                names.insert(r.name);
            }
            names.into_iter().collect::<Vec<_>>()
        };
        assert_eq!(
            queued(watcher::Event::Apply(svc("a", Some("g"), 90))),
            ["b", "e"]
        );
        assert_eq!(
            queued(watcher::Event::Apply(svc("a", Some("h"), 50))),
            ["b", "c", "e"]
        );
        assert_eq!(
            queued(watcher::Event::Delete(svc("b", Some("g"), 50))),
            ["a", "e"]
        );
        let mut annotated = svc("a", Some("g"), 50);
        annotated.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
        assert!(queued(watcher::Event::Apply(annotated)).is_empty());
        assert!(queued(watcher::Event::Apply(svc("d", None, 10))).is_empty());
        assert_eq!(cached_group(&svc("a", Some("g"), 1)).as_deref(), Some("g"));
        assert_eq!(cached_group(&svc("d", None, 1)), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(5);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 2), Duration::from_secs(10));
        assert_eq!(backoff(b, 4), Duration::from_secs(40));
        assert_eq!(backoff(b, 30), Duration::from_secs(300));
    }

    #[test]
    fn resources() {
        let ar = resource_of("apps/v1", "Deployment");
        assert_eq!(
            (ar.group.as_str(), ar.plural.as_str()),
            ("apps", "deployments")
        );
        let ar = resource_of("v1", "Service");
        assert_eq!((ar.group.as_str(), ar.version.as_str()), ("", "v1"));
        let h = with_hash(json!({"metadata": {"name": "x"}}));
        assert_eq!(
            h["metadata"]["annotations"][DESIRED_HASH_ANNOTATION]
                .as_str()
                .unwrap()
                .len(),
            16
        );
    }
}
