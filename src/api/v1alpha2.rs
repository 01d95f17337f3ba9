//! `serving.kserve.io/v1alpha2`: the storage version.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::api::core::v1::PodSpec;

use super::common::*;
use super::resource::custom_resource;
use super::schema::Embedded;

custom_resource!(
    LLMInferenceService,
    "llminferenceservices",
    "v1alpha2",
    LLMInferenceServiceSpec,
    LLMInferenceServiceStatus
);
custom_resource!(
    LLMInferenceServiceConfig,
    "llminferenceserviceconfigs",
    "v1alpha2",
    LLMInferenceServiceSpec,
    LLMInferenceServiceConfigStatus
);

/// The desired state of an LLM inference service (and of a preset, for LLMInferenceServiceConfig).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMInferenceServiceSpec {
    /// The model to serve: `uri` (hf://, pvc://, oci://, s3://, gs://, https://), served `name`, LoRA adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// The init container that downloads the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_initializer: Option<StorageInitializerSpec>,
    #[serde(flatten)]
    pub workload: WorkloadSpec,
    /// Routing: HTTPRoute, Gateway, ingress and the endpoint picker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterSpec<InferencePoolSpecV1>>,
    /// A disaggregated prefill pool; its KV cache is sent to the decode pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<PrefillSpec>,
    /// OpenTelemetry tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
    /// LLMInferenceServiceConfig presets to apply, in order (the last wins; the service's own values win over all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_refs: Option<Vec<LocalObjectReference>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Workload fields (the decode pool inline in the spec, and `prefill`): v1alpha1's
/// [`WorkloadCommon`] plus `kvCacheOffloading`. (Spelled out rather than flattened: serde's
/// nested `flatten` would leak these fields into the spec's unknown-field map.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
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
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// Annotations added to the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// Pod spec of the serving pods (the leader pods when `worker` is set). Container `main` runs vLLM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Embedded<PodSpec>>,
    /// Pod spec of the worker pods of a multi-node deployment (a LeaderWorkerSet). Needs data or pipeline parallelism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Embedded<PodSpec>>,
    /// Rolling update parameters of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<RolloutStrategy>,
    /// KV cache offloading to CPU memory and secondary tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_offloading: Option<KvCacheOffloadingSpec>,
}

/// The prefill pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrefillSpec {
    #[serde(flatten)]
    pub workload: WorkloadSpec,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// The model to serve.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Where the model is: `hf://org/model[:revision]`, `pvc://claim[/path]`, `oci://image`, `s3://bucket/path`, `gs://...`, `https://...`.
    pub uri: String,
    /// Name clients use in the `model` field of requests; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// LoRA adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSpec<ModelSpec>>,
    /// Confidential serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidential: Option<ConfidentialSpec>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// InferencePool spec, `inference.networking.k8s.io/v1` shape. Every field may be left to the webhook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpecV1 {
    /// Pods of the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelectorV1>,
    /// Ports the model servers listen on (1 to 8, unique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ports: Option<Vec<PortV1>>,
    /// http (default) or kubernetes.io/h2c.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["http", "kubernetes.io/h2c"]))]
    pub app_protocol: Option<String>,
    /// The endpoint picker serving this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_ref: Option<EndpointPickerRef>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Label selector of an InferencePool (v1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorV1 {
    /// Labels the pool's pods carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A port number.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PortV1 {
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub number: i32,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Endpoint picker reference (v1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerRef {
    /// API group ("" for core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind (default Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the endpoint picker Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// gRPC port of the endpoint picker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortV1>,
    /// FailOpen or FailClose (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["FailOpen", "FailClose"]))]
    pub failure_mode: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Observed state of an LLMInferenceService.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMInferenceServiceStatus {
    /// Main URL of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions: Ready, WorkloadsReady, RouterReady, PresetsUpToDate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Status annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// Primary address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// All addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<SourcedAddress>>,
    /// Routing objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterStatus>,
    /// Workload objects and their readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<WorkloadStatus>,
    /// Presets applied to the spec.
    #[serde(
        default,
        rename = "appliedConfigs",
        skip_serializing_if = "Option::is_none"
    )]
    pub applied_configs: Option<Vec<AppliedConfigRef>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// An address and where it comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcedAddress {
    #[serde(flatten)]
    pub address: Addressable,
    /// Object the address comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ObjectReference>,
    /// Models served at the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelAddress>>,
}

/// A model name served at an address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelAddress {
    /// Model name.
    pub name: String,
}

/// Routing objects in status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterStatus {
    /// Gateways the route is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<ObservedGateway>>,
    /// Scheduler objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<ObservedSchedulerStatus>,
    /// Traffic group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupStatus>,
}

/// A traffic group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// Members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<GroupMemberStatus>>,
}

/// A member of a traffic group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberStatus {
    /// Service name.
    pub name: String,
    /// Weight.
    pub weight: i32,
    /// Whether the member is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    /// Backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendObjectReference>,
}

/// Gateway API BackendObjectReference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackendObjectReference {
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Workload objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadStatus {
    /// Decode workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<ObservedWorkload>,
    /// Prefill workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<ObservedWorkload>,
    /// Workload Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<TypedLocalObjectReference>,
    /// Scheduler workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<ObservedWorkload>,
}

/// A workload object and its ready replicas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedWorkload {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Ready replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
}

/// A typed reference in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// A preset applied to the spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppliedConfigRef {
    /// Preset name.
    pub name: String,
    /// Preset namespace.
    pub namespace: String,
    /// Preset (well-known) or UserRef (baseRefs).
    #[schemars(extend("enum" = ["Preset", "UserRef"]))]
    pub source: String,
}

/// Observed state of a preset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMInferenceServiceConfigStatus {
    /// Generation last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Status annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// Services that use this preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_by: Option<Vec<UntypedObjectReference>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}
