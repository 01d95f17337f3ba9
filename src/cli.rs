//! The command line: clap's argument structs (the only module that knows clap), each turned
//! into the plain settings of the library ([`crate::serve::ServeConfig`],
//! [`crate::serve::EngineConfig`], [`crate::reconcile::controller::Config`]), and a thin
//! dispatch to the subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::Kind;
use crate::api::crd::{self, ConversionTarget, CrdOptions};
use crate::reconcile::controller;
use crate::serve::{Certificates, EngineConfig, ServeConfig};

#[derive(Debug, Parser)]
#[command(
    name = "llmisvc",
    version,
    about = "Admission webhook, CRD conversion server and reconciler for KServe's LLMInferenceService"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the mutating, validating and conversion webhooks over TLS.
    Serve(Box<ServeArgs>),
    /// Run the reconciler (Deployments, LeaderWorkerSets, Services, scheduler, InferencePool, HTTPRoute).
    Reconcile(ReconcileArgs),
    /// Print objects as the mutating webhook would store them (offline, no cluster).
    Render(RenderArgs),
    /// Mutate and validate objects offline, as the API server would (exit 1 when invalid).
    Validate(ValidateArgs),
    /// Print the CustomResourceDefinitions (or write them to a directory).
    Crds(CrdsArgs),
    /// Generate a CA and a serving certificate (ca.crt, ca.key, tls.crt, tls.key).
    Certs(CertsArgs),
    /// Print the Mutating/ValidatingWebhookConfigurations (or write them to a directory).
    WebhookConfig(WebhookConfigArgs),
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Point the conversion webhook at this URL base (e.g. https://127.0.0.1:8443); `/convert` is appended.
    #[arg(long, conflicts_with = "conversion_service")]
    pub conversion_url: Option<String>,
    /// Point the conversion webhook at this Service, NAMESPACE/NAME (port 443).
    #[arg(long, value_name = "NS/NAME")]
    pub conversion_service: Option<String>,
    /// PEM file whose content becomes the conversion webhook's caBundle.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Write one file per CRD into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt, tls.key into.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// DNS SANs of the serving certificate (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// IP SANs of the serving certificate (repeatable).
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<std::net::IpAddr>,
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    pub algorithm: KeyAlgorithmArg,
    /// Validity of the serving certificate in days.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
    /// Validity of the CA in days.
    #[arg(long, default_value_t = 3650)]
    pub ca_days: u64,
}

#[derive(Debug, Args)]
pub struct WebhookConfigArgs {
    /// Point the webhooks at this Service, NAMESPACE/NAME (port 443).
    #[arg(long, value_name = "NS/NAME", conflicts_with = "url")]
    pub service: Option<String>,
    /// Point the webhooks at this URL base (e.g. https://127.0.0.1:8443); /mutate and /validate are appended.
    #[arg(long, value_name = "BASE_URL")]
    pub url: Option<String>,
    /// PEM file whose content becomes the caBundle.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Write webhooks.yaml into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Manifest file(s) (YAML or JSON, multi-document); `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Print the RFC 6902 JSON patch the webhook would answer instead of the object.
    #[arg(long)]
    pub diff: bool,
    /// Stop after this step: presets, defaults, gpus, vllm, storage, worker, prefill, router.
    #[arg(long)]
    pub stage: Option<String>,
    /// Apply only the object's baseRefs, no well-known presets.
    #[arg(long)]
    pub no_well_known: bool,
    /// For every field mutation set or changed, print the source that set it.
    #[arg(long, conflicts_with_all = ["diff", "stage"])]
    pub explain: bool,
    /// Print every child object the reconciler would apply for each service (its Deployments
    /// or LeaderWorkerSets, Services, scheduler and RBAC, InferencePool, HTTPRoute,
    /// autoscalers), built by the reconciler's own builder after mutation and validation.
    #[arg(long, conflicts_with_all = ["diff", "stage", "explain", "no_well_known"])]
    pub objects: bool,
    /// The reconciler's WVA Prometheus settings, for `--objects` of `scaling.wva.keda`.
    #[command(flatten)]
    pub wva: WvaArgs,
    /// Output format.
    #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub output: String,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest file(s) (YAML or JSON, multi-document); `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Directory of policy files to enforce.
    #[arg(long)]
    pub policies_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--log-format` ([`crate::process::LogFormat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for crate::process::LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}

/// `certs --algorithm` ([`crate::certs::KeyAlgorithm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithmArg {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl From<KeyAlgorithmArg> for crate::certs::KeyAlgorithm {
    fn from(a: KeyAlgorithmArg) -> Self {
        match a {
            KeyAlgorithmArg::EcdsaP256 => Self::EcdsaP256,
            KeyAlgorithmArg::EcdsaP384 => Self::EcdsaP384,
            KeyAlgorithmArg::Ed25519 => Self::Ed25519,
        }
    }
}

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
    pub log_format: LogFormatArg,
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
    pub wva: WvaArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `llmisvc reconcile` options.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Watch only this namespace (default: all).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Namespace of the shipped presets.
    #[arg(long, default_value = crate::presets::SYSTEM_NAMESPACE_DEFAULT)]
    pub system_namespace: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = crate::presets::SYSTEM_NAMESPACE_DEFAULT)]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = controller::LEASE_NAME)]
    pub lease_name: String,
    /// Lease duration in seconds: a standby takes over a Lease not renewed for this long
    /// (a killed leader's; one stopped with SIGTERM releases it at once). Renewal and retry
    /// every duration / 5 (1 to 2 s); a leader that cannot renew for 2/3 of it stops.
    #[arg(long, default_value_t = controller::DEFAULT_LEASE_DURATION.as_secs())]
    pub lease_duration: u64,
    /// Run without leader election (a single replica only).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Periodic resync in seconds.
    #[arg(long, default_value_t = 300)]
    pub resync: u64,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormatArg,
    #[command(flatten)]
    pub wva: WvaArgs,
}

/// Where KEDA reads the Workload Variant Autoscaler's metric (`scaling.wva.keda`); KServe
/// keeps the same settings in `inferenceservice-config` (`autoscaling-wva-controller-config`).
#[derive(Clone, Debug, Default, Args)]
pub struct WvaArgs {
    /// Prometheus URL that KEDA queries for `wva_desired_replicas` (needed by services with
    /// `scaling.wva.keda`; without it they are reported InvalidSpec).
    #[arg(long, env = "LLMISVC_WVA_PROMETHEUS_URL")]
    pub wva_prometheus_url: Option<String>,
    /// Skip TLS verification of that Prometheus (the trigger's `unsafeSsl`).
    #[arg(long, requires = "wva_prometheus_url")]
    pub wva_prometheus_insecure_skip_verify: bool,
    /// KEDA `authModes` of the Prometheus trigger (e.g. `bearer`); needs
    /// --wva-prometheus-trigger-auth.
    #[arg(long, requires_all = ["wva_prometheus_trigger_auth", "wva_prometheus_url"])]
    pub wva_prometheus_auth_modes: Option<String>,
    /// Name of the (Cluster)TriggerAuthentication holding the credentials; needs
    /// --wva-prometheus-auth-modes.
    #[arg(long, requires = "wva_prometheus_auth_modes")]
    pub wva_prometheus_trigger_auth: Option<String>,
    /// Kind of that object.
    #[arg(long, default_value = "TriggerAuthentication", value_parser = ["TriggerAuthentication", "ClusterTriggerAuthentication"])]
    pub wva_prometheus_trigger_auth_kind: String,
}

impl WvaArgs {
    /// The builder's settings.
    pub fn build_options(&self) -> crate::reconcile::build::BuildOptions {
        crate::reconcile::build::BuildOptions {
            wva_prometheus: self.wva_prometheus_url.as_ref().map(|url| {
                crate::reconcile::build::WvaPrometheus {
                    url: url.clone(),
                    insecure_skip_verify: self.wva_prometheus_insecure_skip_verify,
                    auth: match (
                        &self.wva_prometheus_auth_modes,
                        &self.wva_prometheus_trigger_auth,
                    ) {
                        (Some(modes), Some(name)) => {
                            Some(crate::reconcile::build::WvaPrometheusAuth {
                                modes: modes.clone(),
                                trigger_authentication: name.clone(),
                                kind: self.wva_prometheus_trigger_auth_kind.clone(),
                            })
                        }
                        _ => None,
                    },
                }
            }),
        }
    }
}

impl ReconcileArgs {
    /// The controller configuration.
    pub fn config(&self) -> controller::Config {
        let lease = (!self.no_leader_election).then(|| {
            let mut lc = controller::LeaseConfig::new(&self.lease_namespace);
            lc.name = self.lease_name.clone();
            lc.duration = Duration::from_secs(self.lease_duration.max(1));
            lc.retry = controller::LeaseConfig::retry_for(lc.duration);
            lc
        });
        controller::Config {
            namespace: self.namespace.clone(),
            system_namespace: self.system_namespace.clone(),
            lease,
            resync: Duration::from_secs(self.resync.max(1)),
            error_delay: Duration::from_secs(5),
            build: self.wva.build_options(),
        }
    }
}

impl EngineArgs {
    /// The settings, `--default-gateway` parsed. Errors: a gateway not `NAMESPACE/NAME`.
    pub fn config(&self) -> anyhow::Result<EngineConfig> {
        Ok(EngineConfig {
            max_gpus_per_node: self.max_gpus_per_node,
            presets_dir: self.presets_dir.clone(),
            system_namespace: self.system_namespace.clone(),
            gpu_resource: self.gpu_resource.clone(),
            accelerator_resources: self.accelerator_resources.clone(),
            default_gateway: self
                .default_gateway
                .as_deref()
                .map(parse_ns_name)
                .transpose()?,
        })
    }

    /// The engine these flags give ([`EngineConfig::engine`]).
    pub fn engine(&self) -> anyhow::Result<crate::pipeline::Engine> {
        self.config()?.engine()
    }
}

impl ServeArgs {
    /// The settings: the certificate source from `--tls-cert`/`--tls-key`,
    /// `--self-managed-certs` or neither, `NAMESPACE/NAME` values parsed. Errors: a malformed
    /// `--service` or `--default-gateway`, `--self-managed-certs` without a target.
    pub fn config(&self) -> anyhow::Result<ServeConfig> {
        let certificates = if self.self_managed_certs {
            use crate::webhook_config::Target;
            let target = match (&self.service, &self.webhook_url) {
                (Some(svc), _) => {
                    let (namespace, name) = parse_ns_name(svc)?;
                    Target::Service { namespace, name }
                }
                (None, Some(url)) => Target::Url(url.clone()),
                (None, None) => anyhow::bail!(
                    "--self-managed-certs needs --service NS/NAME or --webhook-url URL"
                ),
            };
            Certificates::SelfManaged {
                target,
                secret_name: self.secret_name.clone(),
                validity: Duration::from_secs(3600 * self.cert_validity_hours),
                check_interval: Duration::from_secs(self.cert_check_interval),
            }
        } else if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            Certificates::Files {
                cert: cert.clone(),
                key: key.clone(),
            }
        } else {
            Certificates::Generated {
                ca_out: self.ca_out.clone(),
            }
        };
        Ok(ServeConfig {
            addr: self.addr,
            certificates,
            policies_dir: self.policies_dir.clone(),
            log_format: self.log_format.into(),
            body_limit: self.body_limit,
            request_timeout: Duration::from_secs(self.request_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            reload_interval: Duration::from_secs(self.reload_interval),
            secret_namespace: self.secret_namespace.clone(),
            cluster_presets: self.cluster_presets,
            bench_endpoints: self.bench_endpoints,
            reconcile: self.reconcile.then(|| self.wva.build_options()),
            engine: self.engine.config()?,
        })
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Crds(args) => crds(args),
        Command::Certs(args) => certs(args),
        Command::WebhookConfig(args) => webhook_config(args),
        Command::Serve(args) => args.config().and_then(crate::serve::serve),
        Command::Validate(args) => validate(args),
        Command::Render(args) => render(args),
        Command::Reconcile(args) => controller::run_blocking(args.config(), args.log_format.into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("llmisvc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `NAMESPACE/NAME`.
pub fn parse_ns_name(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => anyhow::bail!("expected NAMESPACE/NAME, got {s:?}"),
    }
}

fn crd_options(args: &CrdsArgs) -> anyhow::Result<CrdOptions> {
    let conversion = if let Some(url) = &args.conversion_url {
        ConversionTarget::Url(url.clone())
    } else if let Some(svc) = &args.conversion_service {
        let (namespace, name) = parse_ns_name(svc)?;
        ConversionTarget::Service { namespace, name }
    } else {
        ConversionTarget::default()
    };
    let ca_bundle = match &args.ca_bundle {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?)
        }
        None => None,
    };
    Ok(CrdOptions {
        conversion,
        ca_bundle,
    })
}

fn crds(args: CrdsArgs) -> anyhow::Result<ExitCode> {
    let opts = crd_options(&args)?;
    match &args.write {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            for kind in Kind::ALL {
                let path = dir.join(crd::file_name(kind));
                std::fs::write(&path, crd::crd_yaml(kind, &opts)?)?;
                eprintln!("wrote {}", path.display());
            }
        }
        None => print!("{}", crd::crds_yaml(&opts)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_ca(path: &Option<PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    match path {
        Some(p) => {
            Ok(Some(std::fs::read(p).map_err(|e| {
                anyhow::anyhow!("reading {}: {e}", p.display())
            })?))
        }
        None => Ok(None),
    }
}

fn certs(args: CertsArgs) -> anyhow::Result<ExitCode> {
    use crate::certs::{ServingSpec, generate_bundle, write_bundle};
    let day = std::time::Duration::from_secs(86400);
    let dns = if args.dns.is_empty() && args.ips.is_empty() {
        vec!["localhost".to_string()]
    } else {
        args.dns
    };
    let bundle = generate_bundle(
        day * args.ca_days as u32,
        &ServingSpec {
            dns,
            ips: args.ips,
            validity: day * args.days as u32,
            algorithm: args.algorithm.into(),
        },
    )?;
    write_bundle(&args.out_dir, &bundle)?;
    eprintln!(
        "wrote ca.crt, ca.key, tls.crt, tls.key to {}",
        args.out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn webhook_config(args: WebhookConfigArgs) -> anyhow::Result<ExitCode> {
    use crate::webhook_config::{FILE_NAME, Target, webhook_configs_yaml};
    let target = if let Some(url) = args.url {
        Target::Url(url)
    } else if let Some(svc) = args.service {
        let (namespace, name) = parse_ns_name(&svc)?;
        Target::Service { namespace, name }
    } else {
        Target::default()
    };
    let yaml = webhook_configs_yaml(&target, read_ca(&args.ca_bundle)?.as_deref())?;
    match args.write {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(FILE_NAME), yaml)?;
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads YAML/JSON documents from files (or stdin for `-`).
pub fn read_documents(files: &[PathBuf]) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for f in files {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?
        };
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let v = serde_json::Value::deserialize(de)
                .map_err(|e| anyhow::anyhow!("{}: document {}: {e}", f.display(), i + 1))?;
            if !v.is_null() {
                docs.push((format!("{}#{}", f.display(), i + 1), v));
            }
        }
    }
    Ok(docs)
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut engine = args.engine.engine()?;
    if let Some(dir) = &args.policies_dir {
        engine.policies = crate::policy::PolicySet::load_dir(dir)?;
    }
    let mut invalid = false;
    for (origin, doc) in read_documents(&args.files)? {
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let mutated = match engine.admit(&doc) {
            Ok(a) => a,
            // Field errors one a line with their document, as validation's below; anything
            // else with its origin and name.
            Err(refused) => {
                match refused.field_errors() {
                    Some(errors) => errors.iter().for_each(|e| println!("{origin}: {e}")),
                    None => println!("{origin} ({name}): {refused}"),
                }
                invalid = true;
                continue;
            }
        };
        let outcome = engine.validate(None, &mutated.object);
        let mut warnings = mutated.warnings;
        warnings.extend(outcome.warnings.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        warnings.retain(|w| seen.insert(w.clone()));
        for w in &warnings {
            eprintln!("Warning: {w}");
        }
        for e in &outcome.errors {
            println!("{origin}: {e}");
        }
        if outcome.errors.is_empty() {
            eprintln!("{origin} ({name}): valid");
        } else {
            invalid = true;
        }
    }
    Ok(if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A refused document in `render`: its field errors as `validate` and kubectl print them
/// (`<origin>: field: Invalid value: v: why`, exit 1); a refusal naming no field is an error.
fn refusal(origin: &str, refused: &crate::pipeline::Refused) -> anyhow::Result<ExitCode> {
    match refused.field_errors() {
        Some(errors) => field_errors(origin, &errors),
        None => Err(anyhow::anyhow!("{origin}: {refused}")),
    }
}

fn field_errors(origin: &str, errors: &[crate::validate::FieldError]) -> anyhow::Result<ExitCode> {
    for e in errors {
        eprintln!("{origin}: {e}");
    }
    Ok(ExitCode::from(1))
}

fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    use crate::pipeline::StopAfter;
    let mut engine = args.engine.engine()?;
    engine.resolve.no_well_known = args.no_well_known;
    let stop = match args.stage.as_deref() {
        None => StopAfter::End,
        Some("presets") => StopAfter::Presets,
        Some(s) => StopAfter::Step(
            s.parse::<crate::mutate::Stage>()
                .map_err(|_| anyhow::anyhow!("unknown stage {s:?}: one of presets, defaults, gpus, vllm, storage, worker, prefill, router"))?,
        ),
    };
    let mut out = Vec::new();
    for (origin, doc) in read_documents(&args.files)? {
        if args.explain {
            let entries = match crate::explain::explain(&engine, &doc) {
                Ok(entries) => entries,
                Err(refused) => return refusal(&origin, &refused),
            };
            if args.output == "json" {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                let name = doc
                    .pointer("/metadata/name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                println!("# {origin} ({name})");
                let width = entries
                    .iter()
                    .map(|e| e.path.len())
                    .max()
                    .unwrap_or(0)
                    .min(90);
                for e in entries {
                    println!("{:width$}  {}", e.path, e.source);
                }
            }
            continue;
        }
        if args.objects {
            let objs = match engine.children(&doc, &args.wva.build_options()) {
                Ok(objs) => objs,
                Err(crate::pipeline::ChildrenError::Refused(refused)) => {
                    return refusal(&origin, &refused);
                }
                Err(crate::pipeline::ChildrenError::Invalid(outcome)) => {
                    return field_errors(&origin, &outcome.errors);
                }
                Err(e) => return Err(anyhow::anyhow!("{origin}: {e}")),
            };
            out.extend(objs);
            continue;
        }
        let mutated = match engine.mutate_until(&doc, stop) {
            Ok(m) => m,
            Err(refused) => return refusal(&origin, &refused),
        };
        out.push(if args.diff {
            serde_json::to_value(json_patch::diff(&doc, &mutated))?
        } else {
            mutated
        });
    }
    for doc in out {
        if args.output == "json" {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print!("---\n{}", serde_norway::to_string(&doc)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::LogFormat;
    use crate::webhook_config::Target;

    fn parse(argv: &[&str]) -> Command {
        Cli::try_parse_from(argv).unwrap().command
    }

    fn serve_config(argv: &[&str]) -> anyhow::Result<ServeConfig> {
        match parse(argv) {
            Command::Serve(a) => a.config(),
            c => panic!("{c:?}"),
        }
    }

    /// `serve`'s flags reach `ServeConfig` with the defaults `--help` documents.
    #[test]
    fn serve_flags_become_the_serve_config() {
        let c = serve_config(&["llmisvc", "serve"]).unwrap();
        assert_eq!(c.certificates, Certificates::Generated { ca_out: None });
        assert_eq!(c.addr, None);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.body_limit, 3 * 1024 * 1024);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.reload_interval, Duration::from_secs(2));
        assert_eq!(c.reconcile, None);
        assert!(!c.cluster_presets && !c.bench_endpoints);
        assert_eq!(c.engine, EngineConfig::default());

        let c = serve_config(&[
            "llmisvc",
            "serve",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--log-format",
            "json",
            "--reconcile",
            "--wva-prometheus-url",
            "https://prom:9090",
            "--default-gateway",
            "gw-ns/gw",
            "--max-gpus-per-node",
            "4",
        ])
        .unwrap();
        assert_eq!(
            c.certificates,
            Certificates::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        assert_eq!(c.log_format, LogFormat::Json);
        let wva = c.reconcile.unwrap().wva_prometheus.unwrap();
        assert_eq!(wva.url, "https://prom:9090");
        assert_eq!(
            c.engine.default_gateway,
            Some(("gw-ns".to_string(), "gw".to_string()))
        );
        assert_eq!(c.engine.max_gpus_per_node, 4);

        let c = serve_config(&[
            "llmisvc",
            "serve",
            "--self-managed-certs",
            "--service",
            "sys/llmisvc-webhook",
            "--secret-name",
            "s",
        ])
        .unwrap();
        assert_eq!(
            c.certificates,
            Certificates::SelfManaged {
                target: Target::Service {
                    namespace: "sys".into(),
                    name: "llmisvc-webhook".into()
                },
                secret_name: "s".into(),
                validity: Duration::from_secs(3600 * 24 * 90),
                check_interval: Duration::from_secs(60),
            }
        );
    }

    /// Malformed values are refused with the message the user saw before the split.
    #[test]
    fn serve_flags_that_do_not_parse_are_refused() {
        let e = serve_config(&["llmisvc", "serve", "--self-managed-certs"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--self-managed-certs needs --service NS/NAME or --webhook-url URL"
        );
        let e = serve_config(&["llmisvc", "serve", "--default-gateway", "gw"]).unwrap_err();
        assert_eq!(e.to_string(), "expected NAMESPACE/NAME, got \"gw\"");
        let e = serve_config(&[
            "llmisvc",
            "serve",
            "--self-managed-certs",
            "--service",
            "a/b/c",
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "expected NAMESPACE/NAME, got \"a/b/c\"");
    }

    /// `reconcile`'s flags reach the controller's `Config`.
    #[test]
    fn reconcile_flags_become_the_controller_config() {
        let Command::Reconcile(a) = parse(&["llmisvc", "reconcile"]) else {
            unreachable!()
        };
        let c = a.config();
        assert_eq!(c.namespace, None);
        assert_eq!(c.system_namespace, crate::presets::SYSTEM_NAMESPACE_DEFAULT);
        assert_eq!(c.resync, Duration::from_secs(300));
        let lease = c.lease.unwrap();
        assert_eq!(lease.name, controller::LEASE_NAME);
        assert_eq!(lease.duration, controller::DEFAULT_LEASE_DURATION);
        assert_eq!(a.log_format, LogFormatArg::Text);

        let Command::Reconcile(a) = parse(&[
            "llmisvc",
            "reconcile",
            "--namespace",
            "team",
            "--no-leader-election",
            "--resync",
            "0",
            "--log-format",
            "json",
        ]) else {
            unreachable!()
        };
        let c = a.config();
        assert_eq!(c.namespace.as_deref(), Some("team"));
        assert!(c.lease.is_none());
        assert_eq!(c.resync, Duration::from_secs(1), "at least a second");
        assert_eq!(
            crate::process::LogFormat::from(a.log_format),
            LogFormat::Json
        );
    }

    #[test]
    fn key_algorithms_keep_their_names() {
        for (name, alg) in [
            ("ecdsa-p256", crate::certs::KeyAlgorithm::EcdsaP256),
            ("ecdsa-p384", crate::certs::KeyAlgorithm::EcdsaP384),
            ("ed25519", crate::certs::KeyAlgorithm::Ed25519),
        ] {
            let Command::Certs(a) =
                parse(&["llmisvc", "certs", "--out-dir", "d", "--algorithm", name])
            else {
                unreachable!()
            };
            assert_eq!(crate::certs::KeyAlgorithm::from(a.algorithm), alg);
        }
        let Command::Certs(a) = parse(&["llmisvc", "certs", "--out-dir", "d"]) else {
            unreachable!()
        };
        assert_eq!(
            crate::certs::KeyAlgorithm::from(a.algorithm),
            crate::certs::KeyAlgorithm::default()
        );
    }
}
