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
    Serve,
    /// Run the reconciler (Deployments, LeaderWorkerSets, Services, scheduler, InferencePool, HTTPRoute).
    Reconcile,
    /// Print an object as the mutating webhook would store it.
    Render,
    /// Mutate and validate an object offline, as the API server would.
    Validate,
    /// Print the CustomResourceDefinitions (or write them to a directory).
    Crds(CrdsArgs),
    /// Generate a CA and a serving certificate.
    Certs,
    /// Print the Mutating/ValidatingWebhookConfigurations.
    WebhookConfig,
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

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Crds(args) => crds(args),
        Command::Serve
        | Command::Reconcile
        | Command::Render
        | Command::Validate
        | Command::Certs
        | Command::WebhookConfig => {
            eprintln!("llmisvc: this subcommand is not implemented yet");
            return ExitCode::from(2);
        }
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
