//! `llmisvc serve`: wiring of the server (TLS material, engine, reloads, signals). The HTTP
//! layer is in [`crate::server`]; the decisions in the pure modules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::certs;
use crate::certs::CertResolver;
use crate::pipeline::Engine;
use crate::policy::PolicySet;
use crate::server::tls::{CertFiles, watch_files};
use crate::server::{AppState, Server, ServerOptions, shutdown_signal};

/// Settings of the pure pipeline, shared by `serve`, `validate` and `render`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Largest GPU count a node of the cluster's GPU profile has.
    #[arg(long, default_value_t = 8)]
    pub max_gpus_per_node: u32,
    /// Directory of LLMInferenceServiceConfig presets (YAML); default: the presets compiled in
    /// from deploy/presets/.
    #[arg(long)]
    pub presets_dir: Option<PathBuf>,
    /// Namespace of the platform's presets (looked up after the object's own namespace).
    #[arg(long, default_value = crate::presets::SYSTEM_NAMESPACE_DEFAULT)]
    pub system_namespace: String,
    /// Extended resource name injected for GPUs.
    #[arg(long, default_value = "nvidia.com/gpu")]
    pub gpu_resource: String,
    /// An extended resource name counted as an accelerator besides `nvidia.com/gpu`,
    /// `nvidia.com/mig-*`, `amd.com/gpu`, `gpu.intel.com/*` and `--gpu-resource` (repeatable; a
    /// trailing `*` matches any suffix, e.g. `example.com/npu-*`): a container that names one
    /// gets no `--gpu-resource` injected, and validation counts it against the parallelism.
    #[arg(long = "accelerator-resource", value_name = "NAME")]
    pub accelerator_resources: Vec<String>,
    /// Default Gateway for `router.gateway: {}`, NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME")]
    pub default_gateway: Option<String>,
}

impl EngineArgs {
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
        if let Some(gw) = &self.default_gateway {
            let (ns, name) = crate::cli::parse_ns_name(gw)?;
            engine.set_default_gateway(&ns, &name);
        }
        Ok(engine)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address [default: 0.0.0.0:8443; 127.0.0.1:8443 with generated certificates].
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Serving certificate (PEM); reloaded when the file changes.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serving key (PEM); reloaded when the file changes.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Without --tls-cert: where to write the generated CA certificate.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Directory of policy files; reloaded when files change.
    #[arg(long)]
    pub policies_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub body_limit: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
    /// Seconds a connection may read nothing before it is closed (HTTP/1.1 keep-alive and
    /// HTTP/2 alike); longer than the request timeout.
    #[arg(long, default_value_t = 90)]
    pub idle_timeout: u64,
    /// How often to check certificate and policy files for changes, in seconds.
    #[arg(long, default_value_t = 2)]
    pub reload_interval: u64,
    /// Manage our own CA and serving certificate in a Secret and inject the CA bundle into the
    /// webhook configurations and CRDs (clusters without cert-manager).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub self_managed_certs: bool,
    /// Self-managed: the Service the API server calls, NAMESPACE/NAME.
    #[arg(
        long,
        value_name = "NS/NAME",
        requires = "self_managed_certs",
        conflicts_with = "webhook_url"
    )]
    pub service: Option<String>,
    /// Self-managed: the URL base the API server calls (out-of-cluster), e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL", requires = "self_managed_certs")]
    pub webhook_url: Option<String>,
    /// Self-managed: namespace of the certificate Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = "llmisvc-system")]
    pub secret_namespace: String,
    /// Self-managed: name of the certificate Secret.
    #[arg(long, default_value = "llmisvc-webhook-certs")]
    pub secret_name: String,
    /// Self-managed: validity of the serving certificate in hours (renewed when a third is left).
    #[arg(long, default_value_t = 24 * 90)]
    pub cert_validity_hours: u64,
    /// Self-managed: how often to check the Secret, in seconds.
    #[arg(long, default_value_t = 60)]
    pub cert_check_interval: u64,
    /// Read presets (LLMInferenceServiceConfigs) from the cluster through a watch cache;
    /// built-in presets fill in names the cluster does not have. /readyz waits for the first sync.
    #[arg(long)]
    pub cluster_presets: bool,
    /// Serve /bench/noop and /bench/decode (load benchmarks only).
    #[arg(long, hide = true)]
    pub bench_endpoints: bool,
    /// Also run the reconciler in this process (leader-elected with a Lease in the
    /// `--secret-namespace`).
    #[arg(long)]
    pub reconcile: bool,
    /// With --reconcile: where KEDA reads WVA's metric.
    #[command(flatten)]
    pub wva: crate::reconcile::controller::WvaArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

/// mimalloc's options for a server whose load comes in bursts. By default (mimalloc v3) freed
/// memory goes back to the system only after a second (`purge_delay` 1000 ms), in 2 MiB units
/// (transparent huge pages allowed), and arenas are committed eagerly: after a burst of large
/// reviews the process kept nearly all of its peak. Purging at once, without huge pages and
/// committing on demand lowers both the peak and the after-burst RSS (`tests/pure/memory.rs`,
/// docs/performance.md). mimalloc reads these when the process loads, before any Rust code
/// runs (some, like huge pages, cannot change later), so `serve` and `reconcile` re-execute
/// once with them set; variables already set (by the operator) are kept as they are.
const ALLOCATOR_ENV: [(&str, &str); 3] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_ALLOW_THP", "0"),
];

/// Re-executes the process with [`ALLOCATOR_ENV`] unless it already runs with it (or the
/// operator set `MIMALLOC_PURGE_DELAY`). Returns only when no re-execution happened. Used by
/// `serve` and `reconcile` (whose watch caches' initial LISTs are such a burst).
pub(crate) fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in ALLOCATOR_ENV {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // Only returns on failure; then serve with mimalloc's defaults.
    let e = cmd.exec();
    eprintln!("llmisvc: could not re-execute with the allocator options ({e}); continuing");
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tune_allocator();
    init_logging(args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve_async(args))?;
    Ok(ExitCode::SUCCESS)
}

fn load_engine(args: &ServeArgs) -> anyhow::Result<Engine> {
    let mut engine = args.engine.engine()?;
    if let Some(dir) = &args.policies_dir {
        engine.policies = PolicySet::load_dir(dir)?;
    }
    Ok(engine)
}

async fn serve_async(args: ServeArgs) -> anyhow::Result<()> {
    let interval = Duration::from_secs(args.reload_interval.max(1));
    let mut self_managed = None;
    let (resolver, files, default_addr) = match (&args.tls_cert, &args.tls_key) {
        _ if args.self_managed_certs => {
            use crate::certs::selfmanaged::{SelfManaged, ensure_secret, inject_ca_bundle};
            use crate::webhook_config::Target;
            let target = match (&args.service, &args.webhook_url) {
                (Some(svc), _) => {
                    let (namespace, name) = crate::cli::parse_ns_name(svc)?;
                    Target::Service { namespace, name }
                }
                (None, Some(url)) => Target::Url(url.clone()),
                (None, None) => anyhow::bail!(
                    "--self-managed-certs needs --service NS/NAME or --webhook-url URL"
                ),
            };
            let hours = Duration::from_secs(3600 * args.cert_validity_hours.max(1));
            let cfg = SelfManaged {
                secret_namespace: args.secret_namespace.clone(),
                secret_name: args.secret_name.clone(),
                target,
                ca_validity: hours * 10,
                serving_validity: hours,
                renew_fraction: 1.0 / 3.0,
                check_interval: Duration::from_secs(args.cert_check_interval.max(1)),
                // Every replica checks twice, and at least two minutes pass, between a new CA
                // joining the bundle and a certificate it signed being served.
                ca_propagation: Duration::from_secs(2 * args.cert_check_interval.max(60)),
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
        (Some(cert), Some(key)) => {
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
        _ => {
            // Embedded default: a CA and a serving certificate for localhost, made now.
            let bundle = certs::localhost_bundle(Duration::from_secs(30 * 86400))?;
            let ca_out = args
                .ca_out
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
    let addr = args.addr.unwrap_or(default_addr.parse()?);
    let state = AppState::new(load_engine(&args)?, resolver.clone());
    let opts = ServerOptions {
        body_limit: args.body_limit,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(args.request_timeout + 1)),
        bench_endpoints: args.bench_endpoints,
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
    if args.cluster_presets {
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
            args.engine.clone(),
        ));
    }
    if let Some(dir) = args.policies_dir.clone() {
        crate::server::namespaces::start_for_policies(&state).await;
        let st = state.clone();
        tokio::spawn(watch_policies(dir, st, interval));
    }

    // One shutdown signal for the server and the reconciler: on SIGTERM the reconciler stops
    // and releases its Lease (so another replica takes over at once, not after the lease
    // expires) while the server drains.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut reconciler = None;
    if args.reconcile {
        let client = kube::Client::try_default().await?;
        let cfg = crate::reconcile::controller::serve_config(
            &args.engine.system_namespace,
            &args.secret_namespace,
            args.wva.build_options(),
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
    if args.tls_cert.is_none() && !args.self_managed_certs {
        let ca = args
            .ca_out
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
    engine_args: EngineArgs,
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
        match merged_preset_store(objs, &engine_args.system_namespace) {
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
