//! What KServe's LLMInferenceService controller calls a service's children: their names, the
//! labels and label values they carry, their ports and the group/version/kinds they are made of.
//! Pure data and naming rules; `reconcile::build` makes the objects, `mutate::router` and the
//! presets' `{{ ChildName ... }}` name the ones a route or pool points at.
//!
//! ## Names
//!
//! KServe names every child with knative's `kmeta.ChildName(parent, suffix)`: `parent + suffix`,
//! or, when that is longer than 63 characters, a shortened parent followed by an MD5 hex digest
//! (see [`child_name`]). The presets' `{{ ChildName ... }}`, the mutating webhook's route and
//! pool defaults, the reconciler's builder and its status all call this module, so a route's
//! backend always names the object the reconciler creates.
//!
//! `<n>` is the service name:
//!
//! | object | suffix |
//! |---|---|
//! | decode `Deployment` / `LeaderWorkerSet` | `-kserve` / `-kserve-mn` |
//! | prefill `Deployment` / `LeaderWorkerSet` | `-kserve-prefill` / `-kserve-mn-prefill` |
//! | workload `Service` | `-kserve-workload-svc` |
//! | scheduler `Deployment` / `Service` / `ServiceAccount` | `-kserve-router-scheduler` / `-epp-service` / `-epp-sa` |
//! | scheduler `Role` / `RoleBinding` | `-epp-role` / `-epp-rb` |
//! | scheduler `ClusterRoleBinding` (`system:auth-delegator`) | `ChildName(<namespace>, "-<n>-epp-auth-rb")` |
//! | `InferencePool` | `-inference-pool` |
//! | `HTTPRoute` | `-kserve-route` |
//! | `HorizontalPodAutoscaler` / KEDA `ScaledObject` | `-kserve-hpa` / `-kserve-keda` (prefill `-kserve-prefill-hpa` / `-kserve-prefill-keda`) |

use super::md5;

// ---------------------------------------------------------------------------------------------
// Labels and label values every child carries (KServe's `pkg/controller/v1alpha2/llmisvc`
// `*Labels` helpers and `LLMComponent*` constants)
// ---------------------------------------------------------------------------------------------

/// API version of the owner.
pub const OWNER_API_VERSION: &str = "serving.kserve.io/v1alpha2";
/// Label every child carries; used to find children to prune.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "llmisvc";
/// `app.kubernetes.io/name`: the service name.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/part-of`.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF_LABEL`].
pub const PART_OF: &str = "llminferenceservice";
/// `kserve.io/component`: `workload` on serving pods (leaders for multi-node).
pub const COMPONENT_LABEL: &str = "kserve.io/component";
/// `llm-d.ai/role`: `both`, `decode` or `prefill`.
pub const ROLE_LABEL: &str = "llm-d.ai/role";
/// `app.kubernetes.io/component`: which part of the service an object is (values below, as
/// KServe's `LLMComponent*` constants).
pub const APP_COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// [`APP_COMPONENT_LABEL`] of the scheduler's objects and the InferencePool.
pub const SCHEDULER_COMPONENT: &str = "llminferenceservice-router-scheduler";
/// [`APP_COMPONENT_LABEL`] of the HTTPRoute.
pub const ROUTER_COMPONENT: &str = "llminferenceservice-router";
/// [`APP_COMPONENT_LABEL`] of the decode workload, the workload Service and the autoscalers.
pub const WORKLOAD_COMPONENT: &str = "llminferenceservice-workload";
/// On cluster-scoped children (the scheduler's `system:auth-delegator` ClusterRoleBinding),
/// which cannot have a namespaced owner: the service's namespace (with [`NAME_LABEL`] and
/// [`MANAGED_BY_LABEL`], what they are pruned and cleaned up by).
pub const SERVICE_NAMESPACE_LABEL: &str = "llmisvc/service-namespace";
/// The finalizer by which the reconciler deletes a service's cluster-scoped children (KServe's
/// name, so services that KServe's controller finalized are finalized the same way).
pub const FINALIZER: &str = "serving.kserve.io/llmisvc-finalizer";
/// Is the child cluster-scoped (no namespace, no owner reference)?
pub fn cluster_scoped(kind: &str) -> bool {
    kind == "ClusterRoleBinding"
}
/// The port of the workload Service (vLLM, or the routing sidecar in front of it), and the
/// port an HTTPRoute's InferencePool backend names.
pub const WORKLOAD_PORT: i64 = 8000;

// ---------------------------------------------------------------------------------------------
// Ports and group/version/kinds of the children
// ---------------------------------------------------------------------------------------------

/// The endpoint picker's gRPC port (the scheduler Service's `grpc` port, the InferencePool's
/// `endpointPickerRef.port`), as KServe's scheduler preset and the gateway-api-inference-
/// extension's default.
pub const EPP_GRPC_PORT: i64 = 9002;
/// The endpoint picker's gRPC health port (the scheduler Service's `grpc-health` port), as
/// KServe's scheduler preset `config/llmisvcconfig/config-llm-scheduler.yaml` (`containerPort`,
/// the probes' `port`, `--grpc-health-port`).
pub const EPP_GRPC_HEALTH_PORT: i64 = 9003;
/// The endpoint picker's metrics port (the scheduler Service's `metrics` port), as KServe's
/// scheduler preset `config/llmisvcconfig/config-llm-scheduler.yaml`.
pub const EPP_METRICS_PORT: i64 = 9090;
/// `apiVersion` of Deployments.
pub const DEPLOYMENT_API_VERSION: &str = "apps/v1";
/// `apiVersion` of LeaderWorkerSets (LWS v0.9).
pub const LWS_API_VERSION: &str = "leaderworkerset.x-k8s.io/v1";
/// The InferencePool's group (gateway-api-inference-extension v1).
pub const INFERENCE_POOL_GROUP: &str = "inference.networking.k8s.io";
/// The group of the older, experimental InferencePool API (`v1alpha2`), which KServe's
/// controller still reads and lets the scheduler read (`workload.go`'s Role rules).
pub const INFERENCE_POOL_X_GROUP: &str = "inference.networking.x-k8s.io";
/// `apiVersion` of the older InferencePool (Gateway API Inference Extension v0.x), which KServe
/// creates alongside the v1 one where it is served.
pub const POOL_V1ALPHA2_API_VERSION: &str = "inference.networking.x-k8s.io/v1alpha2";
/// `apiVersion` of the InferencePool made.
pub const INFERENCE_POOL_API_VERSION: &str = "inference.networking.k8s.io/v1";
/// Group of the Gateway API objects (HTTPRoute, Gateway).
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// `apiVersion` of the HTTPRoute made.
pub const HTTP_ROUTE_API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// `apiVersion` of the HorizontalPodAutoscalers made.
pub const HPA_API_VERSION: &str = "autoscaling/v2";
/// `apiVersion` of KEDA's ScaledObject.
pub const SCALED_OBJECT_API_VERSION: &str = "keda.sh/v1alpha1";
/// `apiVersion` of Roles, RoleBindings and ClusterRoleBindings.
pub const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// The longest Kubernetes name made here (a DNS label).
pub const LONGEST: usize = 63;
const MD5_HEX_LEN: usize = 32;
const HEAD: usize = LONGEST - MD5_HEX_LEN;

fn md5_hex(s: &str) -> String {
    md5::hex(s.as_bytes())
}

/// knative's `kmeta.ChildName`: `parent + suffix` when it fits in 63 characters; otherwise the
/// parent cut to `31 - len(suffix)` characters, the MD5 of the parent, then the suffix; and for
/// suffixes of 31 characters or more, the parent cut to 31 characters, the MD5 of
/// `parent + suffix`, padded with the start of the suffix, trailing non-alphanumerics removed.
pub fn child_name(parent: &str, suffix: &str) -> String {
    if parent.len() + suffix.len() <= LONGEST {
        return format!("{parent}{suffix}");
    }
    if suffix.len() >= HEAD {
        let h = md5_hex(&format!("{parent}{suffix}"));
        let mut ret = format!("{}{h}", byte_prefix(parent, HEAD));
        if ret.len() < LONGEST {
            ret.push_str(byte_prefix(suffix, LONGEST - ret.len()));
        }
        return ret
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string();
    }
    format!(
        "{}{}{suffix}",
        byte_prefix(parent, HEAD - suffix.len()),
        md5_hex(parent)
    )
}

/// The first `n` bytes of `s` (fewer when `n` falls inside a character: names are ASCII, and a
/// non-ASCII name is refused at admission anyway).
fn byte_prefix(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// Is `s` a DNS-1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters), the rule for
/// Service names?
pub fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= LONGEST
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Why no valid child names can be made from service name `name` (None: they all can). Every
/// child name is `ChildName(name, suffix)` and some children are Services (DNS-1035 labels), and
/// every child carries `app.kubernetes.io/name: <name>` (a label value, at most 63 characters).
pub fn unusable_service_name(name: &str) -> Option<String> {
    if name.len() > LONGEST {
        return Some(format!(
            "must be at most {LONGEST} characters: the children carry it as the value of label \
             app.kubernetes.io/name (it is {} characters)",
            name.len()
        ));
    }
    let svc = workload_service(name);
    if !is_dns1035_label(&svc) {
        return Some(format!(
            "the children's names are derived from it and Service names must be DNS-1035 labels \
             (lower-case letters, digits and '-', starting with a letter): {svc:?} is not one; \
             use e.g. {:?}",
            suggestion(name)
        ));
    }
    None
}

/// `name` made into a DNS-1035 label start: lower case, other characters as `-`, a leading
/// non-letter prefixed.
fn suggestion(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "m-");
    }
    s.trim_end_matches('-').to_string()
}

/// Which pool a workload serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Decode,
    Prefill,
}

/// The decode workload (`Deployment`, or `LeaderWorkerSet` when `multi_node`).
pub fn decode(n: &str, multi_node: bool) -> String {
    child_name(n, if multi_node { "-kserve-mn" } else { "-kserve" })
}
/// The prefill workload.
pub fn prefill(n: &str, multi_node: bool) -> String {
    child_name(
        n,
        if multi_node {
            "-kserve-mn-prefill"
        } else {
            "-kserve-prefill"
        },
    )
}
/// The HorizontalPodAutoscaler of a pool.
pub fn hpa(n: &str, pool: Pool) -> String {
    match pool {
        Pool::Decode => child_name(n, "-kserve-hpa"),
        Pool::Prefill => child_name(n, "-kserve-prefill-hpa"),
    }
}
/// The KEDA ScaledObject of a pool.
pub fn scaled_object(n: &str, pool: Pool) -> String {
    match pool {
        Pool::Decode => child_name(n, "-kserve-keda"),
        Pool::Prefill => child_name(n, "-kserve-prefill-keda"),
    }
}
/// The ServiceAccount of a multi-node workload's pods: the LeaderWorkerSet's own name, as
/// KServe's `mainLWSName` / `prefillLWSName`.
pub fn multi_node_sa(n: &str, pool: Pool) -> String {
    match pool {
        Pool::Decode => decode(n, true),
        Pool::Prefill => prefill(n, true),
    }
}
/// The Role of the multi-node decode pods' routing sidecar.
pub fn multi_node_role(n: &str) -> String {
    child_name(n, "-kserve-mn-role")
}
/// Its RoleBinding.
pub fn multi_node_role_binding(n: &str) -> String {
    child_name(n, "-kserve-mn-rb")
}
/// The ServiceAccount of single-node decode pods that run the llm-d routing sidecar, as
/// KServe's `expectedSingleNodeMainServiceAccount` (`<n>-kserve`, the Deployment's name).
pub fn single_node_sa(n: &str) -> String {
    decode(n, false)
}
/// The Role of the single-node decode pods' routing sidecar (KServe's `-kserve-role`).
pub fn single_node_role(n: &str) -> String {
    child_name(n, "-kserve-role")
}
/// Its RoleBinding (KServe's `-kserve-rb`).
pub fn single_node_role_binding(n: &str) -> String {
    child_name(n, "-kserve-rb")
}
/// The standalone tokenizer's Deployment and Service (KServe's `tokenizerDeploymentName` /
/// `tokenizerServiceName`: both `<n>-tokenizer`).
pub fn tokenizer(n: &str) -> String {
    child_name(n, "-tokenizer")
}
/// The workload Service (the HTTPRoute's backend without a scheduler).
pub fn workload_service(n: &str) -> String {
    child_name(n, "-kserve-workload-svc")
}
/// The scheduler (endpoint picker) Deployment.
pub fn scheduler(n: &str) -> String {
    child_name(n, "-kserve-router-scheduler")
}
/// The scheduler's Service (the InferencePool's endpoint picker).
pub fn epp_service(n: &str) -> String {
    child_name(n, "-epp-service")
}
/// The scheduler's ServiceAccount.
pub fn epp_sa(n: &str) -> String {
    child_name(n, "-epp-sa")
}
/// The scheduler's Role.
pub fn epp_role(n: &str) -> String {
    child_name(n, "-epp-role")
}
/// The scheduler's RoleBinding.
pub fn epp_role_binding(n: &str) -> String {
    child_name(n, "-epp-rb")
}
/// The scheduler's `system:auth-delegator` ClusterRoleBinding (cluster-scoped, so the
/// namespace is part of the name).
pub fn epp_auth_binding(namespace: &str, n: &str) -> String {
    child_name(namespace, &format!("-{n}-epp-auth-rb"))
}
/// The InferencePool.
pub fn pool(n: &str) -> String {
    child_name(n, "-inference-pool")
}
/// The HTTPRoute.
pub fn route(n: &str) -> String {
    child_name(n, "-kserve-route")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_concatenated() {
        assert_eq!(child_name("x", "-y"), "x-y");
        assert_eq!(route("m"), "m-kserve-route");
        assert_eq!(epp_auth_binding("ns", "m"), "ns-m-epp-auth-rb");
    }

    /// knative.dev/pkg/kmeta.ChildName's two shortening branches.
    #[test]
    fn long_names_are_hashed_as_knative_does() {
        let parent = "customer-support-assistant-llama-31-70b-instruct";
        let n = workload_service(parent);
        assert_eq!(n.len(), 63, "{n}");
        assert_eq!(
            n,
            format!(
                "customer-su{}-kserve-workload-svc",
                md5::hex(parent.as_bytes())
            )
        );
        // A suffix of 31 characters or more: the whole name is hashed.
        let long_suffix = "-abcdefghijklmnopqrstuvwxyz012345";
        let n = child_name("p", long_suffix);
        assert_eq!(n, "p".to_string() + long_suffix);
        // Padding that ends in a non-alphanumeric is trimmed.
        let (parent, suffix) = ("q".repeat(29), "-.abcdefghijklmnopqrstuvwxyz0123456");
        assert_eq!(
            child_name(&parent, suffix),
            format!(
                "{parent}{}",
                md5::hex(format!("{parent}{suffix}").as_bytes())
            )
        );
        let n = child_name(&"p".repeat(40), long_suffix);
        assert_eq!(n.len(), 63);
        assert_eq!(
            n,
            format!(
                "{}{}",
                "p".repeat(31),
                md5::hex(format!("{}{long_suffix}", "p".repeat(40)).as_bytes())
            )
        );
    }

    #[test]
    fn every_child_of_a_long_name_is_a_valid_distinct_label() {
        let n = "customer-support-assistant-llama-31-70b-instruct";
        let all = [
            decode(n, false),
            decode(n, true),
            prefill(n, false),
            prefill(n, true),
            hpa(n, Pool::Decode),
            hpa(n, Pool::Prefill),
            scaled_object(n, Pool::Decode),
            scaled_object(n, Pool::Prefill),
            workload_service(n),
            scheduler(n),
            epp_service(n),
            epp_sa(n),
            epp_role(n),
            epp_role_binding(n),
            epp_auth_binding("a-rather-long-team-namespace", n),
            pool(n),
            route(n),
        ];
        for c in &all {
            assert!(is_dns1035_label(c), "{c}");
        }
        let mut d = all.to_vec();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), all.len());
    }

    #[test]
    fn unusable_names() {
        for (name, ok) in [
            ("m", true),
            ("customer-support-assistant-llama-31-70b-instruct", true),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
            ("llama-3.2-3b-instruct", false),
            ("3b-instruct", false),
            ("Llama", false),
        ] {
            assert_eq!(unusable_service_name(name).is_none(), ok, "{name}");
        }
        let m = unusable_service_name("llama-3.2-3b-instruct").unwrap();
        assert!(m.contains("\"llama-3-2-3b-instruct\""), "{m}");
    }

    #[test]
    fn no_panic_on_non_ascii() {
        let n = "é".repeat(40);
        let c = child_name(&n, "-kserve");
        assert!(c.ends_with("-kserve"));
        assert!(unusable_service_name(&n).is_some());
    }
}
