//! The mutating webhook's expansion steps: everything that happens to an `LLMInferenceService`
//! after its presets have been merged.
//!
//! [`expand`] runs the steps in order ([`Stage`]): defaults, GPU resources, the vLLM command
//! line, model storage, multi-node (LeaderWorkerSet) wiring, prefill/decode disaggregation and
//! router wiring. Every step works on the object as `serde_json::Value`, so fields unknown to
//! llmisvc are never dropped.
//!
//! Rules every step follows:
//! - **Fill only what is absent.** A value the user (or a preset) set is never removed or
//!   changed. The two documented exceptions keep every user token: the vLLM `args`
//!   rearrangement (see [`vllm`]) and the start-rank wrapper of data-parallel worker pods with
//!   `dataLocal > 1` (see [`worker`]).
//! - **Idempotent**: `expand(expand(x)) == expand(x)`; the API server may call the webhook twice.
//! - **Deterministic**, and `status` is never touched.
//! - Wrong JSON types give a [`MutateError`] naming the field path; nothing panics.
//!
//! Only kind `LLMInferenceService` is expanded; `LLMInferenceServiceConfig` is returned unchanged.
//!
//! Conventions (shared with the reconciler):
//! - annotation [`GENERATED_ARGS_ANNOTATION`] on the service records the vLLM arguments the
//!   webhook generated per pod, so a later run can tell them from the user's own;
//! - the model is mounted at [`MODEL_MOUNT_PATH`]; LoRA adapter `name` at `/mnt/lora/<name>`;
//! - vLLM listens on `cfg.vllm_port` (8000), except the decode pool of a prefill/decode
//!   deployment, where the routing sidecar owns 8000 and vLLM moves to `cfg.vllm_port + 1`;
//! - pods per LeaderWorkerSet group are not stored: [`group_size`] computes them.

use serde_json::Value;

use crate::model::json::{self, JsonError, Path};
use crate::model::view::{PoolView, ServiceView};

mod defaults;
mod gpus;
mod podspec;
mod prefill;
mod router;
mod storage;
pub mod vllm;
pub mod worker;

pub use crate::model::view::group_size;

/// Where the model is mounted in every vLLM container.
pub const MODEL_MOUNT_PATH: &str = "/mnt/models";
/// Where LoRA adapters are mounted (`/mnt/lora/<adapter name>`).
pub const LORA_MOUNT_ROOT: &str = "/mnt/lora";
/// Annotation (on the service) holding the arguments the webhook generated, per pod.
pub const GENERATED_ARGS_ANNOTATION: &str = "serving.kserve.io/generated-args";
pub use gpus::{ACCELERATOR_PATTERNS, is_accelerator, matches_accelerator};

/// Why an object could not be expanded. [`MutateError::field`] and [`MutateError::detail`]
/// split it into the Kubernetes field path and the reason, for a `Status` cause
/// (`crate::pipeline::Refused::field_errors`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MutateError {
    /// A field has the wrong JSON type (field path, e.g. `spec.template.containers[0].args`, and
    /// the JSON type expected).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A field has a value the webhook cannot work with.
    #[error("{path}: {message}")]
    Invalid {
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The object is not an `LLMInferenceService` (or `LLMInferenceServiceConfig`).
    #[error("unsupported object: apiVersion {api_version:?}, kind {kind:?}")]
    UnsupportedKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
}

impl MutateError {
    /// The field path the error is about (`spec.parallelism.tensor`); `None` for the object
    /// itself (`<root>`) and an unsupported kind.
    pub fn field(&self) -> Option<&str> {
        match self {
            MutateError::Json(e) => e.field(),
            MutateError::Invalid { path, .. } => Some(path.as_str()),
            MutateError::UnsupportedKind { .. } => None,
        }
    }

    /// The reason without the field path (`must be an integer, not a string`).
    pub fn detail(&self) -> String {
        match self {
            MutateError::Json(e) => e.detail(),
            MutateError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The value the error is about, as Kubernetes shows it in `Invalid value: <value>` (a
    /// wrong JSON type's value); `None` otherwise.
    pub fn value(&self) -> Option<&str> {
        match self {
            MutateError::Json(e) => e.value(),
            _ => None,
        }
    }
}

/// Settings of the mutation pipeline.
#[derive(Clone, Debug)]
pub struct MutateConfig {
    /// Accelerator resource injected into `main` containers (default `nvidia.com/gpu`).
    pub gpu_resource: String,
    /// Accelerator resource names recognised besides [`ACCELERATOR_PATTERNS`] and
    /// `gpu_resource` (a trailing `*` matches any suffix), e.g. `example.com/npu`.
    pub extra_accelerators: Vec<String>,
    /// (namespace, name) of the default Gateway.
    pub default_gateway: (String, String),
    /// Image of the storage initializer init container.
    pub storage_initializer_image: String,
    /// Image of the llm-d routing sidecar of prefill/decode deployments.
    pub routing_sidecar_image: String,
    /// Port of the workload (vLLM, or the routing sidecar in front of it).
    pub vllm_port: i32,
    /// gRPC port of the endpoint picker Service.
    pub epp_port: i32,
    /// Default data parallel RPC port.
    pub data_rpc_port: i32,
    /// KV connector used by both sides of a prefill/decode deployment.
    pub kv_connector: String,
}

impl Default for MutateConfig {
    fn default() -> Self {
        Self {
            gpu_resource: "nvidia.com/gpu".into(),
            extra_accelerators: Vec::new(),
            default_gateway: ("llmisvc-system".into(), "llmisvc-gateway".into()),
            storage_initializer_image: "kserve/storage-initializer:v0.15.2".into(),
            routing_sidecar_image: "ghcr.io/llm-d/llm-d-routing-sidecar:v0.3.0".into(),
            vllm_port: 8000,
            epp_port: 9002,
            data_rpc_port: 5555,
            kv_connector: "NixlConnector".into(),
        }
    }
}

/// The expansion steps, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Scalar defaults: model name, replicas, data RPC port, storage initializer.
    Defaults,
    /// Accelerator resources and the tensor parallel default.
    Gpus,
    /// The vLLM command line of every `main` container.
    Vllm,
    /// Volumes, mounts and init containers for the model and LoRA adapters.
    Storage,
    /// Multi-node (LeaderWorkerSet) flags of leader and worker pods.
    Worker,
    /// Prefill/decode disaggregation: KV transfer roles and the routing sidecar.
    Prefill,
    /// Scheduler InferencePool, HTTPRoute and Gateway defaults.
    Router,
}

impl Stage {
    /// All stages in order.
    pub const ALL: [Stage; 7] = [
        Stage::Defaults,
        Stage::Gpus,
        Stage::Vllm,
        Stage::Storage,
        Stage::Worker,
        Stage::Prefill,
        Stage::Router,
    ];

    /// Lower-case name (`defaults`, `gpus`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Defaults => "defaults",
            Stage::Gpus => "gpus",
            Stage::Vllm => "vllm",
            Stage::Storage => "storage",
            Stage::Worker => "worker",
            Stage::Prefill => "prefill",
            Stage::Router => "router",
        }
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown stage {s:?}"))
    }
}

/// Runs every step in order on an object whose presets are already merged.
pub fn expand(obj: &Value, cfg: &MutateConfig) -> Result<Value, MutateError> {
    expand_owned(obj.clone(), cfg)
}

/// [`expand`], working in place on an object the caller gives away (no copy of the object).
pub fn expand_owned(obj: Value, cfg: &MutateConfig) -> Result<Value, MutateError> {
    expand_until_owned(obj, cfg, Stage::Router)
}

/// Runs the steps up to and including `stage` (for `llmisvc render --stage`).
pub fn expand_until(obj: &Value, cfg: &MutateConfig, stage: Stage) -> Result<Value, MutateError> {
    expand_until_owned(obj.clone(), cfg, stage)
}

/// [`expand_until`], working in place on an object the caller gives away.
pub fn expand_until_owned(
    mut obj: Value,
    cfg: &MutateConfig,
    stage: Stage,
) -> Result<Value, MutateError> {
    {
        let root = json::as_obj(&obj, &Path::ROOT)?;
        let kind = json::get_str(root, "kind", &Path::ROOT)?.unwrap_or_default();
        let api_version = json::get_str(root, "apiVersion", &Path::ROOT)?.unwrap_or_default();
        match kind {
            "LLMInferenceService" => {}
            "LLMInferenceServiceConfig" => return Ok(obj),
            _ => {
                return Err(MutateError::UnsupportedKind {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                });
            }
        }
        if root.get("spec").is_none_or(Value::is_null) {
            return Ok(obj);
        }
    }
    // The vLLM passes' results: args and the generated-args record, written once at the end
    // (see `vllm::Record`).
    let mut record = vllm::Record::default();
    let mut ctx = Ctx::default();
    for st in Stage::ALL {
        if st > stage {
            break;
        }
        // Only the defaults and GPU steps write fields the context is read from (model name,
        // `dataRPCPort`, `tensor`); the later steps see the context as read before `vllm`.
        if st <= Stage::Vllm {
            ctx = Ctx::read(&obj, cfg)?;
        }
        // The vLLM argument list is built in one place (`vllm`): the steps that add flags
        // (vllm, worker, prefill) each run its pass up to themselves first.
        if matches!(st, Stage::Vllm | Stage::Worker | Stage::Prefill) {
            vllm::apply(&mut obj, st, &mut record)?;
        }
        match st {
            Stage::Defaults => defaults::apply(&mut obj, &ctx)?,
            Stage::Gpus => gpus::apply(&mut obj, &ctx, cfg)?,
            Stage::Vllm => {}
            Stage::Storage => storage::apply(&mut obj, &ctx, cfg)?,
            Stage::Worker => worker::apply(&mut obj, &ctx, cfg, &record)?,
            Stage::Prefill => prefill::apply(&mut obj, &ctx, cfg)?,
            Stage::Router => router::apply(&mut obj, &ctx, cfg)?,
        }
    }
    record.finish(&mut obj, &ctx, cfg)?;
    Ok(obj)
}

// ---------------------------------------------------------------------------------------------
// The read-only view every step starts from
// ---------------------------------------------------------------------------------------------

/// The decode pool (inline in the spec) or the prefill pool.
pub(crate) use crate::model::children::Pool;

/// The pod spec of a pool: `template` (single-node pods, or leaders) or `worker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Template,
    Worker,
}

/// Every pod spec location, in processing order.
pub(crate) const PODS: [(Pool, Role); 4] = [
    (Pool::Decode, Role::Template),
    (Pool::Decode, Role::Worker),
    (Pool::Prefill, Role::Template),
    (Pool::Prefill, Role::Worker),
];

/// `template`, `worker`, `prefill.template`, `prefill.worker`.
pub(crate) fn pod_key(pool: Pool, role: Role) -> &'static str {
    let path = podspec::pod_path(pool, role);
    path.strip_prefix("spec.").unwrap_or(path)
}

/// One pool: its view ([`crate::model::view::PoolView`]: sizes, template, worker) and the
/// vLLM KV cache offloading the steps need.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolInfo {
    pub view: PoolView,
    /// The vLLM `OffloadingConnector` configuration of `kvCacheOffloading`, when set.
    pub kv_offloading: Option<Value>,
    /// `kvCacheOffloading.secondary`: the tiers (their volumes are the storage step's).
    pub kv_secondary: Vec<Value>,
}

/// A LoRA adapter.
#[derive(Clone, Debug)]
pub(crate) struct Adapter {
    pub name: String,
    pub uri: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct LoraInfo {
    pub adapters: Vec<Adapter>,
    pub max_rank: Option<i64>,
    pub max_adapters: Option<i64>,
    pub max_cpu_adapters: Option<i64>,
}

/// What the steps need to know about the object, read before the defaults, GPU and vLLM steps
/// (the later steps do not change what it is read from).
#[derive(Clone, Debug, Default)]
pub(crate) struct Ctx {
    /// The service as [`crate::model::view`] reads it.
    pub view: ServiceView,
    pub model_uri: Option<String>,
    pub model_name: Option<String>,
    pub storage_initializer: bool,
    pub lora: Option<LoraInfo>,
    pub decode: PoolInfo,
    pub prefill: Option<PoolInfo>,
}

impl Ctx {
    fn read(obj: &Value, _cfg: &MutateConfig) -> Result<Ctx, MutateError> {
        use json::{as_obj, child, get_bool, get_int, get_str};
        let view = ServiceView::read(obj)?;
        let root = as_obj(obj, &Path::ROOT)?;
        let mut ctx = Ctx {
            decode: PoolInfo {
                view: view.decode.clone(),
                ..PoolInfo::default()
            },
            prefill: view.prefill.clone().map(|view| PoolInfo {
                view,
                ..PoolInfo::default()
            }),
            view,
            ..Ctx::default()
        };
        let Some(spec) = child(root, "spec", &Path::ROOT)? else {
            return Ok(ctx);
        };
        let sp = Path::Lit("spec");
        ctx.storage_initializer = true;
        if let Some(si) = child(spec, "storageInitializer", &sp)?
            && let Some(enabled) = get_bool(si, "enabled", &sp.key("storageInitializer"))?
        {
            ctx.storage_initializer = enabled;
        }
        if let Some(model) = child(spec, "model", &sp)? {
            let mp = sp.key("model");
            ctx.model_uri = get_str(model, "uri", &mp)?.map(str::to_string);
            ctx.model_name = get_str(model, "name", &mp)?.map(str::to_string);
            if let Some(lora) = child(model, "lora", &mp)? {
                let lp = mp.key("lora");
                let mut info = LoraInfo {
                    max_rank: get_int(lora, "maxRank", &lp)?,
                    max_adapters: get_int(lora, "maxAdapters", &lp)?,
                    max_cpu_adapters: get_int(lora, "maxCpuAdapters", &lp)?,
                    ..LoraInfo::default()
                };
                if let Some(list) = json::get_arr(lora, "adapters", &lp)? {
                    let ap = lp.key("adapters");
                    for (i, a) in list.iter().enumerate() {
                        let p = ap.idx(i);
                        let a = as_obj(a, &p)?;
                        let uri = get_str(a, "uri", &p)?;
                        let name = get_str(a, "name", &p)?;
                        if let (Some(uri), Some(name)) = (uri, name) {
                            info.adapters.push(Adapter {
                                name: name.to_string(),
                                uri: uri.to_string(),
                            });
                        }
                    }
                }
                ctx.lora = Some(info);
            }
        }
        read_kv(spec, &sp, &mut ctx.decode)?;
        if let (Some(prefill), Some(info)) = (child(spec, "prefill", &sp)?, ctx.prefill.as_mut()) {
            read_kv(prefill, &sp.key("prefill"), info)?;
        }
        return Ok(ctx);

        /// `kvCacheOffloading` of a pool.
        fn read_kv(
            m: &serde_json::Map<String, Value>,
            path: &Path,
            info: &mut PoolInfo,
        ) -> Result<(), MutateError> {
            let Some(kv) = json::present(m, "kvCacheOffloading") else {
                return Ok(());
            };
            let kp = path.key("kvCacheOffloading");
            let kvo = json::as_obj(kv, &kp)?;
            if let Some(tiers) = json::get_arr(kvo, "secondary", &kp)? {
                info.kv_secondary = tiers.clone();
            }
            info.kv_offloading = crate::presets::template::offloading_connector_config(kv)
                .map_err(|message| MutateError::Invalid {
                    path: kp.key("cpu").to_string(),
                    message,
                })?;
            Ok(())
        }
    }

    pub fn pool(&self, pool: Pool) -> Option<&PoolInfo> {
        match pool {
            Pool::Decode => Some(&self.decode),
            Pool::Prefill => self.prefill.as_ref(),
        }
    }

    /// Prefill/decode disaggregation: a prefill pool with pods.
    pub fn disaggregated(&self) -> bool {
        self.view.disaggregated()
    }
}
