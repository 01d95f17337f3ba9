//! Shapes shared by `v1alpha1` and `v1alpha2`.
//!
//! Field names, optionality and JSON types follow KServe's Go API
//! (`pkg/apis/serving/v1alpha2/llm_inference_service_types.go`). Every struct that is
//! llmisvc's own keeps fields it does not know in `extra`, so a manifest written for a newer
//! KServe survives a round trip through these types unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{Embedded, Opaque};

/// Fields this version of llmisvc does not know; kept verbatim.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// Inline workload fields of a pool: the decode pool (inline in the spec) and `prefill`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadCommon {
    /// Number of pods (for multi-node: number of LeaderWorkerSet groups). Exclusive with `scaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Autoscaling. Exclusive with `replicas`; exactly one of `wva` or `keda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingSpec>,
    /// How the model is spread over GPUs and nodes (tensor, pipeline, data, expert parallelism).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<ParallelismSpec>,
    /// Labels added to the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Pod spec of the serving pods (the leader pods when `worker` is set). Container `main` runs vLLM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Embedded<PodSpec>>,
    /// Pod spec of the worker pods of a multi-node deployment (a LeaderWorkerSet). Needs data or pipeline parallelism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Embedded<PodSpec>>,
    /// Rolling update parameters of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<RolloutStrategy>,
}

/// Rolling update parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Pods that may be unavailable during an update (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Pods that may be created above the desired count during an update (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// KV cache offloading to CPU memory and secondary tiers (v1alpha2 only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KvCacheOffloadingSpec {
    /// CPU memory for the KV cache per pod.
    pub cpu: Quantity,
    /// Eviction policy: `lru` (default) or `arc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["lru", "arc"]))]
    pub eviction_policy: Option<String>,
    /// Secondary tiers below CPU memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<Vec<SecondaryTierSpec>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// One secondary KV cache tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecondaryTierSpec {
    /// A file system tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system: Option<FileSystemTierSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A file system tier: exactly one of `emptyDir` or `pvc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSystemTierSpec {
    /// A node-local emptyDir of the given size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirTierSpec>,
    /// A persistent volume claim: exactly one of `spec` or `ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcTierSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// emptyDir tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDirTierSpec {
    /// Size limit of the emptyDir.
    pub size: Quantity,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// PVC tier: a claim template (`spec`) or an existing claim (`ref`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcTierSpec {
    /// A claim created for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PersistentVolumeClaimSpec>,
    /// An existing claim.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<PvcRefTierSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Reference to an existing claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcRefTierSpec {
    /// Claim name.
    pub name: String,
    /// Path inside the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// LoRA adapters served on top of the base model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoraSpec<A> {
    /// Adapters to load (each a model spec: `uri`, `name`). Names are unique and differ from the base model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::schemaless")]
    pub adapters: Option<Vec<A>>,
    /// Maximum LoRA rank (vLLM `--max-lora-rank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_rank: Option<i32>,
    /// Adapters loaded at once (vLLM `--max-loras`); defaults to the number of adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_adapters: Option<i32>,
    /// Adapters kept in CPU memory (vLLM `--max-cpu-loras`); defaults to the number of adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_cpu_adapters: Option<i32>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Confidential model settings (v1alpha2 only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfidentialSpec {
    /// Serve the model confidentially.
    pub enabled: bool,
    /// Key resource id used to decrypt the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// The storage initializer init container that downloads the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageInitializerSpec {
    /// Download the model with an init container (default true). When false, vLLM pulls the model itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Parallelism of the model across GPUs and nodes.
///
/// GPUs per pod: tensor x dataLocal with data parallelism, tensor otherwise.
/// Pods per group (multi-node): data / dataLocal, or pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParallelismSpec {
    /// Tensor parallel size: GPUs one model replica is split over within a pod (vLLM `--tensor-parallel-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tensor: Option<i32>,
    /// Pipeline parallel size: nodes the model layers are split over (vLLM `--pipeline-parallel-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub pipeline: Option<i32>,
    /// Data parallel size: total model replicas across the group (vLLM `--data-parallel-size`). Set with `dataLocal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub data: Option<i32>,
    /// Data parallel replicas per pod (vLLM `--data-parallel-size-local`). `data` must be a multiple of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub data_local: Option<i32>,
    /// RPC port for data parallel coordination (vLLM `--data-parallel-rpc-port`, default 5555).
    #[serde(
        default,
        rename = "dataRPCPort",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 65535))]
    pub data_rpc_port: Option<i32>,
    /// Expert parallelism for mixture-of-experts models (vLLM `--enable-expert-parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<bool>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Autoscaling of a workload: `maxReplicas` and exactly one of `wva` or `keda`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingSpec {
    /// Lower bound of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// Upper bound of replicas.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Workload Variant Autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wva: Option<WvaSpec>,
    /// KEDA ScaledObject with the given triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keda: Option<DirectKedaScalingSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Workload Variant Autoscaler settings and the actuator (HPA or KEDA) it drives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WvaSpec {
    /// Relative cost of this variant (decimal string, default "10.0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\d+(\.\d+)?$"))]
    pub variant_cost: Option<String>,
    /// Use an HPA as actuator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaScalingSpec>,
    /// Use KEDA as actuator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keda: Option<KedaScalingSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// HPA actuator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaScalingSpec {
    /// Scale-up and scale-down behavior of the HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// KEDA ScaledObject settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaScalingSpec {
    /// Seconds between trigger polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,
    /// Seconds after the last active trigger before scaling to idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cooldown_period: Option<i32>,
    /// Seconds after creation before the first cooldown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_cooldown_period: Option<i32>,
    /// Replicas when no trigger is active; must be below `minReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,
    /// Replicas used when triggers fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<KedaFallback>,
    /// Advanced ScaledObject settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<KedaAdvancedConfig>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// KEDA settings with the triggers to scale on: [`KedaScalingSpec`] inline plus `triggers`
/// (KServe's `DirectKEDAScalingSpec`, which embeds `KEDAScalingSpec` with `json:",inline"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectKedaScalingSpec {
    /// The shared KEDA settings (and any field this version does not know).
    #[serde(flatten)]
    pub settings: KedaScalingSpec,
    /// KEDA triggers (at least one).
    pub triggers: Vec<KedaTrigger>,
}

/// KEDA fallback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaFallback {
    /// Failures before the fallback applies.
    pub failure_threshold: i32,
    /// Replicas during fallback.
    pub replicas: i32,
    /// static, currentReplicas, currentReplicasIfHigher or currentReplicasIfLower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]))]
    pub behavior: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// KEDA advanced config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaAdvancedConfig {
    /// HPA settings of the ScaledObject (its name is managed and must not be set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<KedaHpaConfig>,
    /// Restore the original replica count when the ScaledObject is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,
    /// Composite metric formula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<KedaScalingModifiers>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// HPA config inside KEDA.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaHpaConfig {
    /// HPA name (managed; leave empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HPA behavior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// KEDA scaling modifiers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaScalingModifiers {
    /// Formula over the triggers' metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// Target value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Activation target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    /// AverageValue or Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["AverageValue", "Value"]))]
    pub metric_type: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A KEDA trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaTrigger {
    /// Scaler type (prometheus, cpu, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// Trigger name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scaler metadata.
    pub metadata: BTreeMap<String, String>,
    /// Use cached metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cached_metrics: Option<bool>,
    /// Metric type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// TriggerAuthentication reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<KedaAuthRef>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// TriggerAuthentication reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaAuthRef {
    /// Name.
    pub name: String,
    /// TriggerAuthentication or ClusterTriggerAuthentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Routing: HTTPRoute, Gateway binding, ingress and the endpoint picker (scheduler).
/// `{}` for any part asks llmisvc to manage it with defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterSpec<P> {
    /// The HTTPRoute: managed (`{}` or `http.spec`) or existing routes (`http.refs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<GatewayRoutesSpec>,
    /// Gateways the route attaches to: `{}` for the default gateway, or `refs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// Ingress objects to expose the service through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// The endpoint picker: prefix-cache and load-aware routing over an InferencePool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerSpec<P>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// HTTP routes of the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRoutesSpec {
    /// HTTPRoute: `refs` to existing routes, or an inline `spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRouteSpec>,
    /// Traffic group this service belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub group: Option<String>,
    /// Weight of this service in its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000000))]
    pub weight: Option<i32>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// An HTTPRoute: references or an inline spec (exclusive).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Existing HTTPRoutes in the service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Vec<LocalObjectReference>>,
    /// Inline Gateway API HTTPRouteSpec (gateway.networking.k8s.io/v1); checked by the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Opaque>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Gateways the route attaches to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Gateway references; empty means the configured default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Vec<GatewayObjectReference>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Ingress references.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Ingress objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Vec<UntypedObjectReference>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// The endpoint picker (EPP) and its InferencePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerSpec<P> {
    /// The InferencePool: an inline `spec` or a `ref` to an existing pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<InferencePoolSpec<P>>,
    /// Labels of the scheduler pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the scheduler pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Pod spec of the endpoint picker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Embedded<PodSpec>>,
    /// Endpoint picker configuration: `inline` or a ConfigMap `ref` (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<SchedulerConfigSpec>,
    /// Scheduler replicas (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Tokenizer sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Tokenizer pod template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenizerSpec {
    /// Pod spec of the tokenizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Embedded<PodSpec>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Endpoint picker configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerConfigSpec {
    /// Inline EndpointPickerConfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<Opaque>,
    /// ConfigMap key holding the EndpointPickerConfig.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<ConfigMapKeySelector>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A key of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeySelector {
    /// Key.
    pub key: String,
    /// ConfigMap name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the ConfigMap or key may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// The InferencePool: inline spec or reference. `P` is the version's InferencePool spec shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec<P> {
    /// Inline InferencePool spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<P>,
    /// An existing InferencePool in the service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<LocalObjectReference>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// OpenTelemetry tracing of vLLM and the scheduler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracingSpec {
    /// OTLP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter_endpoint: Option<String>,
    /// Sampler name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// Sampler argument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_arg: Option<String>,
    /// Exporter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A reference by name in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
}

/// A reference by name and optional namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UntypedObjectReference {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A Gateway reference with an optional listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayObjectReference {
    /// Gateway name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Gateway namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listener name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Status shapes
// ---------------------------------------------------------------------------------------------

/// A Knative-style condition (type, status, severity, reason, message, lastTransitionTime).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (Ready, WorkloadsReady, RouterReady, PresetsUpToDate, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// Error, Warning or Info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Last time the status changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// One-word CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An address the service is reachable at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Addressable {
    /// Address name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// CA certificates (PEM) to trust for this address.
    #[serde(default, rename = "CACerts", skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// Token audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// A typed object reference (Gateway API style).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A Gateway the route is attached to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedGateway {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listeners used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<String>>,
    /// HTTPRoutes attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_routes: Option<Vec<ObjectReference>>,
}

/// The scheduler's objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSchedulerStatus {
    /// The InferencePool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_pool: Option<ObjectReference>,
    /// The endpoint picker Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ObjectReference>,
}
