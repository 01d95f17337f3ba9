//! `llmisvc serve`: wiring of the server (TLS material, engine, reloads, signals). The HTTP
//! layer is in [`crate::server`]; the decisions in the pure modules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::certs;
use crate::certs::CertResolver;
use crate::pipeline::Engine;
use crate::policy::PolicySet;
use crate::process::{LogFormat, init_logging, shutdown_signal, tune_allocator};
use crate::reconcile::build::BuildOptions;
use crate::server::tls::{CertFiles, watch_files};
use crate::server::{AppState, Server, ServerOptions};
use crate::webhook_config::Target;

/// Settings of the pure pipeline, shared by `serve`, `validate` and `render` (their
/// `--max-gpus-per-node`, `--presets-dir`, `--system-namespace`, `--gpu-resource`,
/// `--accelerator-resource` and `--default-gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest GPU count a node of the cluster's GPU profile has.
    pub max_gpus_per_node: u32,
    /// Directory of LLMInferenceServiceConfig presets (YAML); `None`: the presets compiled in
    /// from deploy/presets/.
    pub presets_dir: Option<PathBuf>,
    /// Namespace of the platform's presets (looked up after the object's own namespace).
    pub system_namespace: String,
    /// Extended resource name injected for GPUs.
    pub gpu_resource: String,
    /// Extended resource names counted as accelerators besides the built-in ones and
    /// `gpu_resource` (a trailing `*` matches any suffix): a container that names one gets no
    /// `gpu_resource` injected, and validation counts it against the parallelism.
    pub accelerator_resources: Vec<String>,
    /// Default Gateway for `router.gateway: {}`, (namespace, name).
    pub default_gateway: Option<(String, String)>,
}

impl Default for EngineConfig {
    /// The CLI's defaults: 8 GPUs a node, embedded presets, `nvidia.com/gpu`.
    fn default() -> Self {
        EngineConfig {
            max_gpus_per_node: 8,
            presets_dir: None,
            system_namespace: crate::presets::SYSTEM_NAMESPACE_DEFAULT.to_string(),
            gpu_resource: "nvidia.com/gpu".to_string(),
            accelerator_resources: Vec::new(),
            default_gateway: None,
        }
    }
}

impl EngineConfig {
    /// The engine: presets loaded (from `presets_dir` or embedded), mutation and validation
    /// counting the same accelerator names, the default Gateway set. Errors: presets that do
    /// not load.
    pub fn engine(&self) -> anyhow::Result<Engine> {
        use crate::presets::PresetStore;
        let presets = match &self.presets_dir {
            Some(dir) => PresetStore::from_dir(dir, &self.system_namespace)?,
            None => PresetStore::embedded(&self.system_namespace)?,
        };
        let mut engine = Engine::with_presets(presets);
        engine.validate_cfg.max_gpus_per_node = self.max_gpus_per_node;
        engine.mutate_cfg.gpu_resource = self.gpu_resource.clone();
        engine.mutate_cfg.extra_accelerators = self.accelerator_resources.clone();
        // Validation counts with the same names as mutation (`mutate::is_accelerator`).
        let counted = &mut engine.validate_cfg.accelerator_resources;
        for r in std::iter::once(&self.gpu_resource).chain(&self.accelerator_resources) {
            if !counted.contains(r) {
                counted.push(r.clone());
            }
        }
        if let Some((ns, name)) = &self.default_gateway {
            engine.set_default_gateway(ns, name);
        }
        Ok(engine)
    }
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificates {
    /// A CA and a localhost certificate generated at start; the CA certificate is written to
    /// `ca_out` (default: `llmisvc-ca.crt` in the temporary directory). Listens on
    /// 127.0.0.1:8443 by default.
    Generated { ca_out: Option<PathBuf> },
    /// PEM files, reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// Our own CA and serving certificate in a Secret (in [`ServeConfig::secret_namespace`]),
    /// the CA bundle injected into the webhook configurations and CRDs.
    SelfManaged {
        /// What the API server calls (a Service or a URL base).
        target: Target,
        /// Name of the certificate Secret.
        secret_name: String,
        /// Validity of the serving certificate (renewed when a third is left; the CA's is ten
        /// times this).
        validity: Duration,
        /// How often to check the Secret.
        check_interval: Duration,
    },
}

/// `llmisvc serve`'s settings (the CLI's flags, parsed; see `llmisvc serve --help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Listen address; `None`: 0.0.0.0:8443, or 127.0.0.1:8443 with generated certificates.
    pub addr: Option<SocketAddr>,
    pub certificates: Certificates,
    /// Directory of policy files; reloaded when files change.
    pub policies_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Largest request body in bytes (413 beyond).
    pub body_limit: usize,
    /// Per-request timeout (at least 1 s).
    pub request_timeout: Duration,
    /// How long a connection may read nothing before it is closed; at least the request
    /// timeout plus 1 s.
    pub idle_timeout: Duration,
    /// How often to check certificate and policy files for changes (at least 1 s).
    pub reload_interval: Duration,
    /// Namespace of the self-managed certificate Secret and of the reconciler's Lease.
    pub secret_namespace: String,
    /// Read presets from the cluster through a watch cache (built-in presets fill in names the
    /// cluster does not have); /readyz waits for the first sync.
    pub cluster_presets: bool,
    /// Serve /bench/noop and /bench/decode (load benchmarks only).
    pub bench_endpoints: bool,
    /// Also run the reconciler in this process (leader-elected with a Lease in
    /// `secret_namespace`), with these builder settings.
    pub reconcile: Option<BuildOptions>,
    pub engine: EngineConfig,
}

/// `llmisvc serve`: re-executes once with the allocator options
/// ([`crate::process::tune_allocator`]), logs in `cfg.log_format`, serves until SIGTERM or
/// SIGINT.
pub fn serve(cfg: ServeConfig) -> anyhow::Result<ExitCode> {
    tune_allocator();
    init_logging(cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve_async(cfg))?;
    Ok(ExitCode::SUCCESS)
}

fn load_engine(cfg: &ServeConfig) -> anyhow::Result<Engine> {
    let mut engine = cfg.engine.engine()?;
    if let Some(dir) = &cfg.policies_dir {
        engine.policies = PolicySet::load_dir(dir)?;
    }
    Ok(engine)
}

async fn serve_async(cfg: ServeConfig) -> anyhow::Result<()> {
    let second = Duration::from_secs(1);
    let interval = cfg.reload_interval.max(second);
    let mut self_managed = None;
    let (resolver, files, default_addr) = match &cfg.certificates {
        Certificates::SelfManaged {
            target,
            secret_name,
            validity,
            check_interval,
        } => {
            use crate::certs::selfmanaged::{SelfManaged, ensure_secret, inject_ca_bundle};
            let hours = (*validity).max(Duration::from_secs(3600));
            let cfg = SelfManaged {
                secret_namespace: cfg.secret_namespace.clone(),
                secret_name: secret_name.clone(),
                target: target.clone(),
                ca_validity: hours * 10,
                serving_validity: hours,
                renew_fraction: 1.0 / 3.0,
                check_interval: (*check_interval).max(second),
                // Every replica checks twice, and at least two minutes pass, between a new CA
                // joining the bundle and a certificate it signed being served.
                ca_propagation: 2 * (*check_interval).max(Duration::from_secs(60)),
            };
            let client = kube::Client::try_default().await?;
            let material = ensure_secret(&client, &cfg).await?;
            inject_ca_bundle(&client, &cfg, &material.ca_bundle).await?;
            let resolver = Arc::new(CertResolver::new(
                &material.serving.cert,
                &material.serving.key,
            )?);
            self_managed = Some((client, cfg, material));
            (resolver, None, "0.0.0.0:8443")
        }
        Certificates::Files { cert, key } => {
            let files = CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            let (c, k) = files.read()?;
            (
                Arc::new(CertResolver::new(&c, &k)?),
                Some(files),
                "0.0.0.0:8443",
            )
        }
        Certificates::Generated { ca_out } => {
            // Embedded default: a CA and a serving certificate for localhost, made now.
            let bundle = certs::localhost_bundle(Duration::from_secs(30 * 86400))?;
            let ca_out = ca_out
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("llmisvc-ca.crt"));
            std::fs::write(&ca_out, &bundle.ca.cert)?;
            tracing::info!(ca = %ca_out.display(), "generated a CA and a serving certificate for localhost");
            (
                Arc::new(CertResolver::new(
                    &bundle.serving.cert,
                    &bundle.serving.key,
                )?),
                None,
                "127.0.0.1:8443",
            )
        }
    };
    let addr = cfg.addr.unwrap_or(default_addr.parse()?);
    let state = AppState::new(load_engine(&cfg)?, resolver.clone());
    let opts = ServerOptions {
        body_limit: cfg.body_limit,
        request_timeout: cfg.request_timeout.max(second),
        idle_timeout: cfg.idle_timeout.max(cfg.request_timeout + second),
        bench_endpoints: cfg.bench_endpoints,
        ..Default::default()
    };
    let server = Server::bind(addr, state.clone(), opts).await?;
    let local = server.local_addr()?;

    if let Some(files) = files {
        let st = state.clone();
        tokio::spawn(watch_files(files, resolver.clone(), interval, move |r| {
            st.metrics.record_reload(r.is_ok());
            st.update_cert_metric();
        }));
    }
    if let Some((client, cfg, material)) = self_managed.clone() {
        tokio::spawn(crate::certs::selfmanaged::maintain(
            client,
            cfg,
            resolver.clone(),
            material,
        ));
    }
    if cfg.cluster_presets {
        let client = match &self_managed {
            Some((c, _, _)) => c.clone(),
            None => kube::Client::try_default().await?,
        };
        state
            .ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(watch_cluster_presets(
            client,
            state.clone(),
            cfg.engine.system_namespace.clone(),
        ));
    }
    if let Some(dir) = cfg.policies_dir.clone() {
        crate::server::namespaces::start_for_policies(&state).await;
        let st = state.clone();
        tokio::spawn(watch_policies(dir, st, interval));
    }

    // One shutdown signal for the server and the reconciler: on SIGTERM the reconciler stops
    // and releases its Lease (so another replica takes over at once, not after the lease
    // expires) while the server drains.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut reconciler = None;
    if let Some(build) = &cfg.reconcile {
        let client = kube::Client::try_default().await?;
        let cfg = crate::reconcile::controller::serve_config(
            &cfg.engine.system_namespace,
            &cfg.secret_namespace,
            build.clone(),
        );
        let mut stop = stop_rx.clone();
        reconciler = Some(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::reconcile::controller::run(client, cfg, stopped).await {
                tracing::error!(error = %e, "reconciler stopped");
            }
        }));
    }

    tracing::info!(addr = %local, "llmisvc webhook listening (POST /mutate /validate /convert; GET /healthz /readyz /metrics)");
    if let Certificates::Generated { ca_out } = &cfg.certificates {
        let ca = ca_out
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("llmisvc-ca.crt"));
        let sample =
            serde_json::to_string(&crate::server::review::sample_admission_review("demo-uid"))?;
        tracing::info!(
            "try it: curl -sS --cacert {} -H 'Content-Type: application/json' --data '{}' https://127.0.0.1:{}/mutate",
            ca.display(),
            sample,
            local.port()
        );
    }
    server
        .run(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await;
    if let Some(r) = reconciler
        && tokio::time::timeout(std::time::Duration::from_secs(10), r)
            .await
            .is_err()
    {
        tracing::warn!("the reconciler did not stop within 10 s");
    }
    tracing::info!("stopped");
    Ok(())
}

fn dir_stamp(dir: &std::path::Path) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let md = std::fs::metadata(e.path()).ok();
            (
                e.path(),
                md.as_ref().and_then(|m| m.modified().ok()),
                md.map_or(0, |m| m.len()),
            )
        })
        .collect();
    v.sort();
    v
}

/// Reloads the policies when the directory changes; a broken file keeps the old set.
async fn watch_policies(dir: PathBuf, state: Arc<AppState>, interval: Duration) {
    let mut last = dir_stamp(&dir);
    loop {
        tokio::time::sleep(interval).await;
        let now = dir_stamp(&dir);
        if now == last {
            continue;
        }
        last = now;
        match PolicySet::load_dir(&dir) {
            Ok(policies) => {
                state.update_engine(|engine| engine.policies = policies.clone());
                tracing::info!(dir = %dir.display(), "reloaded policies");
            }
            Err(e) => {
                tracing::warn!(error = %e, "policies changed but do not load; keeping the old ones")
            }
        }
    }
}

/// The preset store from the cluster's LLMInferenceServiceConfigs plus the built-in presets for
/// names the cluster does not define. A config that does not load is skipped (and logged): one
/// bad preset must not take the others down. Validation rejects such configs when written.
pub fn merged_preset_store(
    cluster: Vec<serde_json::Value>,
    system_namespace: &str,
) -> anyhow::Result<crate::presets::PresetStore> {
    use crate::presets::{EMBEDDED_FILES, Preset, PresetStore, parse_yaml_documents};
    let mut objs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for obj in cluster {
        match Preset::from_object(&obj, system_namespace) {
            Ok(p) => {
                seen.insert((p.namespace.clone(), p.name.clone()));
                objs.push(obj);
            }
            Err(e) => tracing::warn!(error = %e, "skipping a preset that does not load"),
        }
    }
    for (file, text) in EMBEDDED_FILES {
        for mut obj in parse_yaml_documents(text, file)? {
            if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                m.insert(
                    "namespace".into(),
                    serde_json::Value::String(system_namespace.into()),
                );
            }
            let p = Preset::from_object(&obj, system_namespace)?;
            if seen.insert((p.namespace.clone(), p.name.clone())) {
                objs.push(obj);
            }
        }
    }
    Ok(PresetStore::from_objects(objs, system_namespace)?)
}

/// Keeps the engine's presets in sync with the cluster (a kube-runtime reflector: requests
/// never wait on the API server).
async fn watch_cluster_presets(
    client: kube::Client,
    state: Arc<AppState>,
    system_namespace: String,
) {
    use futures::StreamExt;
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let gvk = GroupVersionKind::gvk(crate::api::GROUP, "v1alpha2", "LLMInferenceServiceConfig");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "llminferenceserviceconfigs");
    let api: Api<DynamicObject> = Api::all_with(client, &ar);

    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let reader = writer.as_reader();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    futures::pin_mut!(stream);
    let mut synced = false;
    loop {
        let item = stream.next().await;
        match item {
            None => return,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "preset watch error; retrying");
                continue;
            }
            Some(Ok(_)) => {}
        }
        if !synced {
            if reader.wait_until_ready().await.is_err() {
                return;
            }
            synced = true;
        }
        let objs: Vec<serde_json::Value> = reader
            .state()
            .iter()
            .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
            .collect();
        match merged_preset_store(objs, &system_namespace) {
            Ok(store) => {
                state.update_engine(|engine| {
                    let (ns, name) = engine.mutate_cfg.default_gateway.clone();
                    engine.presets = store.clone();
                    engine.set_default_gateway(&ns, &name);
                });
                state
                    .ready
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    presets = state.engine().presets.len(),
                    "presets updated from the cluster"
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not rebuild presets"),
        }
    }
}
