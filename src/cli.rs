//! The command line: a thin dispatch to the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::api::Kind;
use crate::api::crd::{self, ConversionTarget, CrdOptions};

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
    Serve(Box<crate::serve::ServeArgs>),
    /// Run the reconciler (Deployments, LeaderWorkerSets, Services, scheduler, InferencePool, HTTPRoute).
    Reconcile(crate::reconcile::controller::ReconcileArgs),
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
    pub algorithm: crate::certs::KeyAlgorithm,
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
    pub wva: crate::reconcile::controller::WvaArgs,
    /// Output format.
    #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub output: String,
    #[command(flatten)]
    pub engine: crate::serve::EngineArgs,
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
    pub engine: crate::serve::EngineArgs,
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Crds(args) => crds(args),
        Command::Certs(args) => certs(args),
        Command::WebhookConfig(args) => webhook_config(args),
        Command::Serve(args) => crate::serve::serve(*args),
        Command::Validate(args) => validate(args),
        Command::Render(args) => render(args),
        Command::Reconcile(args) => crate::reconcile::controller::run_cli(args),
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
            algorithm: args.algorithm,
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
            // Field errors one a line, as validation's below; anything else with its origin.
            Err(refused) => {
                match refused.field_errors() {
                    Some(errors) => errors.iter().for_each(|e| println!("{e}")),
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
            println!("{e}");
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
            let entries = crate::explain::explain(&engine, &doc)
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
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
            let objs = engine
                .children(&doc, &args.wva.build_options())
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            out.extend(objs);
            continue;
        }
        let mutated = engine
            .mutate_until(&doc, stop)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
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
