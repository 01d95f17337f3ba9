//! The labels of the cluster's namespaces, for policy rules scoped by
//! `scope.namespaceSelector` (see [`crate::policy::Scope`]).
//!
//! `serve --policies-dir` with a Kubernetes client configuration keeps a metadata-only watch
//! cache of the Namespaces (a kube-runtime reflector: list + watch, `PartialObjectMeta`), so
//! a request does not wait on the API server. A namespace the cache does not hold (yet) is read
//! with one GET (metadata only, [`FETCH_TIMEOUT`]) and the request decided again with its real
//! labels. That is what the API server itself does for webhooks' and admission policies'
//! `namespaceSelector` (k8s.io/apiserver `pkg/admission/plugin/webhook/predicates/namespace`,
//! `Matcher.GetNamespaceLabels`: lister first, then a live GET "in case of latency in our
//! caches"): the common miss is a namespace created a moment ago (`kubectl create namespace x
//! && kubectl apply -n x ...`), and failing closed there would deny a request the policy does
//! not select. When the GET fails too (no permission, timeout, namespace gone) the labels are
//! [`NamespaceLabels::Unknown`] with the error, and a rule that needs them fails closed.
//!
//! RBAC: `get`, `list`, `watch` on `namespaces` (deploy/rbac.yaml). `/readyz` reports not ready
//! until the first list has been cached, while the loaded policies read namespace labels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::review::{self, Answer, Endpoint};
use crate::pipeline::Engine;
use crate::policy::{NamespaceLabels, NamespaceLookup};

/// How long the GET of a namespace missing from the cache may take (the API server's webhook
/// timeout is 10 s by default; this leaves the decision most of it).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The label Kubernetes sets on every namespace (1.21+): its name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace watch cache and the client for the GET fallback. Cheap to clone.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    api: Api<Namespace>,
    synced: Arc<AtomicBool>,
}

/// The labels of a namespace's metadata, with the name label even where the API server did
/// not set it (clusters before 1.21).
pub fn labels_of(meta: &ObjectMeta, name: &str) -> BTreeMap<String, String> {
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels
        .entry(NAME_LABEL.to_string())
        .or_insert_with(|| name.to_string());
    labels
}

impl NamespaceCache {
    /// Starts the watch on the current tokio runtime; the cache fills in the background
    /// (watch errors are logged and retried with kube-runtime's default backoff).
    pub fn start(client: kube::Client) -> NamespaceCache {
        let api: Api<Namespace> = Api::all(client.clone());
        // `Api<PartialObjectMeta<_>>` lists and watches metadata only.
        let meta: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let (store, writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let synced = Arc::new(AtomicBool::new(false));
        let stream = reflector(writer, watcher(meta, watcher::Config::default())).default_backoff();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    tracing::warn!(error = %e, "namespace watch error (policies' namespaceSelector); retrying");
                }
            }
        });
        let (ready, flag) = (store.clone(), synced.clone());
        tokio::spawn(async move {
            if ready.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
                tracing::info!(
                    namespaces = ready.len(),
                    "namespace cache synced (policies' namespaceSelector)"
                );
            }
        });
        NamespaceCache { store, api, synced }
    }

    /// Whether the first list has been cached.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// The cached labels of `namespace`, `None` when the cache does not hold it.
    pub fn cached(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.store
            .get(&ObjectRef::new(namespace))
            .map(|m| labels_of(&m.metadata, namespace))
    }

    /// Reads `namespace` from the API server (metadata only).
    pub async fn fetch(&self, namespace: &str) -> NamespaceLabels {
        match tokio::time::timeout(FETCH_TIMEOUT, self.api.get_metadata_opt(namespace)).await {
            Ok(Ok(Some(m))) => NamespaceLabels::Known(labels_of(&m.metadata, namespace)),
            Ok(Ok(None)) => NamespaceLabels::Unknown(format!(
                "namespace {namespace:?} does not exist in the cluster"
            )),
            Ok(Err(e)) => {
                tracing::warn!(namespace, error = %e, "could not read a namespace for policies' namespaceSelector");
                // The API server's own words (`namespaces "x" is forbidden: User ... cannot get
                // resource "namespaces" ...`), without kube's Debug dump of the Status.
                let why = match &e {
                    kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
                    other => other.to_string(),
                };
                NamespaceLabels::Unknown(format!(
                    "namespace {namespace:?} could not be read from the API server: {why}"
                ))
            }
            Err(_) => {
                tracing::warn!(
                    namespace,
                    "reading a namespace for policies' namespaceSelector timed out"
                );
                NamespaceLabels::Unknown(format!(
                    "reading namespace {namespace:?} from the API server timed out after {} s",
                    FETCH_TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// `/mutate` or `/validate` with namespace labels from the cache; a namespace the cache
    /// misses is read from the API server and the review decided again with what that gives.
    /// Only `/validate` evaluates policies, and only a rule that selects on namespace labels
    /// asks, so the second pass is rare (a namespace created a moment ago).
    pub async fn admission(&self, endpoint: Endpoint, body: Bytes, engine: Arc<Engine>) -> Answer {
        let missed = Arc::new(Mutex::new(None));
        let lookup = RequestLookup {
            cache: self.clone(),
            fetched: None,
            missed: missed.clone(),
        };
        let (b, e) = (body.clone(), engine.clone());
        let answer = super::off_async_workers(body.len(), move || {
            review::admission_in(endpoint, &b, &e, &lookup)
        })
        .await;
        let Some(namespace) = missed.lock().ok().and_then(|mut m| m.take()) else {
            return answer;
        };
        let labels = self.fetch(&namespace).await;
        let lookup = RequestLookup {
            cache: self.clone(),
            fetched: Some((namespace, labels)),
            missed,
        };
        super::off_async_workers(body.len(), move || {
            review::admission_in(endpoint, &body, &engine, &lookup)
        })
        .await
    }
}

/// One request's view: the labels read by the GET fallback, else the cache; records a miss.
struct RequestLookup {
    cache: NamespaceCache,
    fetched: Option<(String, NamespaceLabels)>,
    missed: Arc<Mutex<Option<String>>>,
}

impl NamespaceLookup for RequestLookup {
    fn labels(&self, namespace: &str) -> NamespaceLabels {
        if let Some((name, labels)) = &self.fetched
            && name == namespace
        {
            return labels.clone();
        }
        match self.cache.cached(namespace) {
            Some(labels) => NamespaceLabels::Known(labels),
            None => {
                if let Ok(mut m) = self.missed.lock() {
                    *m = Some(namespace.to_string());
                }
                NamespaceLabels::Unknown(format!(
                    "namespace {namespace:?} is not in the namespace cache"
                ))
            }
        }
    }
}

/// Starts the namespace cache for `serve --policies-dir` when a Kubernetes client configuration
/// is found (in-cluster ServiceAccount, `KUBECONFIG`, `~/.kube/config`); without one, rules
/// that select namespaces by label fail closed (logged once here).
pub async fn start_for_policies(state: &super::AppState) {
    match kube::Client::try_default().await {
        Ok(client) => {
            let cache = NamespaceCache::start(client);
            if state.namespaces.set(cache).is_err() {
                tracing::warn!("namespace cache started twice; keeping the first");
            }
            tracing::info!(
                "policies' namespaceSelector: namespace labels from a watch cache of the cluster's namespaces"
            );
        }
        Err(e) => tracing::info!(
            error = %e,
            "no Kubernetes client configuration: policy rules whose scope.namespaceSelector reads namespace labels (other than kubernetes.io/metadata.name) fail closed"
        ),
    }
}
