//! `serving.kserve.io/v1alpha1`: the older served version.
//!
//! Differs from v1alpha2 in `model.criticality` (only here), no `model.confidential` and no
//! `kvCacheOffloading`, the older InferencePool shape (`selector` map, `targetPortNumber`,
//! `extensionRef`), and a smaller status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::*;
use super::resource::custom_resource;

custom_resource!(
    LLMInferenceService,
    "llminferenceservices",
    "v1alpha1",
    LLMInferenceServiceSpec,
    LLMInferenceServiceStatus
);
custom_resource!(
    LLMInferenceServiceConfig,
    "llminferenceserviceconfigs",
    "v1alpha1",
    LLMInferenceServiceSpec,
    LLMInferenceServiceConfigStatus
);

/// The desired state of an LLM inference service (and of a preset, for LLMInferenceServiceConfig).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMInferenceServiceSpec {
    /// The model to serve: `uri`, served `name`, `criticality`, LoRA adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// The init container that downloads the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_initializer: Option<StorageInitializerSpec>,
    #[serde(flatten)]
    pub workload: WorkloadCommon,
    /// Routing: HTTPRoute, Gateway, ingress and the endpoint picker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterSpec<InferencePoolSpecV1Alpha2>>,
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

/// The prefill pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrefillSpec {
    #[serde(flatten)]
    pub workload: WorkloadCommon,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// The model to serve.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Where the model is: `hf://org/model[:revision]`, `pvc://claim[/path]`, `oci://image`, `s3://bucket/path`, ...
    pub uri: String,
    /// Name clients use in the `model` field of requests; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Importance for the endpoint picker: Critical, Standard or Sheddable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Critical", "Standard", "Sheddable"]))]
    pub criticality: Option<String>,
    /// LoRA adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSpec<ModelSpec>>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// InferencePool spec, `inference.networking.x-k8s.io/v1alpha2` shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpecV1Alpha2 {
    /// Labels of the pool's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<std::collections::BTreeMap<String, String>>,
    /// Port the model servers listen on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port_number: Option<i32>,
    /// The endpoint picker serving this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<ExtensionRef>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Endpoint picker reference (v1alpha2 InferencePool).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRef {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// gRPC port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port_number: Option<i32>,
    /// FailOpen or FailClose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["FailOpen", "FailClose"]))]
    pub failure_mode: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Observed state of an LLMInferenceService (v1alpha1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMInferenceServiceStatus {
    /// Main URL of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions.
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
    pub addresses: Option<Vec<Addressable>>,
    /// Routing objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterStatus>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}

/// Routing objects in status (v1alpha1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterStatus {
    /// Gateways the route is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<ObservedGateway>>,
    /// Scheduler objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<ObservedSchedulerStatus>,
}

/// Observed state of a preset (v1alpha1).
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
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    #[schemars(skip)]
    pub extra: Extra,
}
