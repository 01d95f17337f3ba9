//! Fields of KServe's API that neither KServe's controller nor llmisvc acts on: admitted (real
//! KServe manifests apply unchanged) with a warning naming the field, KServe's meaning and why
//! it has no effect, so that nothing the user wrote is ignored silently (issue 18, "every spec
//! field has a consumer"; `tests/pure/spec_consumers.rs`).

use super::json::{Obj, Sink};

/// Warnings for `spec.router.ingress.refs` and `spec.router.scheduler.config.ref.optional`.
///
/// - `router.ingress.refs[i]` (`name`, `namespace`): KServe's API documents a user-managed
///   Ingress whose hosts would fill the status URLs (`IngressSpec`, v1alpha2
///   llm_inference_service_types.go), but KServe's controller reads no Ingress
///   (pkg/controller/v1alpha2/llmisvc only owns `netv1.Ingress` and checks `router.ingress`
///   against route groups); llmisvc neither.
/// - `router.scheduler.config.ref.optional: true`: a `ConfigMapKeySelector` field KServe does not
///   read: its controller fails the reconcile when the ConfigMap or key is missing
///   (config_merge.go); llmisvc mounts the ConfigMap into the endpoint picker, which cannot
///   start without it, so `optional` cannot make a missing config acceptable either.
pub fn check(spec: &Obj, s: &mut Sink) {
    let router = spec.obj("router", s);
    let ingress = router.obj("ingress", s);
    for (_, r) in ingress.objs("refs", s) {
        let name = r.str("name", s).unwrap_or_default();
        let ns = r.str("namespace", s).unwrap_or_default();
        s.warn(format!(
            "{}, {}: Ingress {ns}{}{name} is not read: KServe documents a user-managed Ingress \
             whose hosts give the status URLs, but neither KServe's controller nor llmisvc reads \
             Ingress objects; expose the service with spec.router.gateway and spec.router.route",
            r.path_of("name"),
            r.path_of("namespace"),
            if ns.is_empty() { "" } else { "/" },
        ));
    }
    let cref = router.obj("scheduler", s).obj("config", s).obj("ref", s);
    if cref.bool("optional", s) == Some(true) {
        s.warn(format!(
            "{}: has no effect: the endpoint picker needs its configuration; as with KServe \
             (which fails the reconcile), a missing ConfigMap or key is an error (with llmisvc \
             the picker pod does not start until it exists)",
            cref.path_of("optional")
        ));
    }
}
