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
        // The fields the user wrote: `.namespace` only when it is set.
        let fields = if ns.is_empty() {
            r.path_of("name")
        } else {
            format!("{}, {}", r.path_of("name"), r.path_of("namespace"))
        };
        s.warn(format!(
            "{fields}: Ingress {ns}{}{name} is not read: KServe documents a user-managed Ingress \
             whose hosts give the status URLs, but neither KServe's controller nor llmisvc reads \
             Ingress objects; expose the service with spec.router.gateway and spec.router.route",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The ingress warning names the fields the user wrote: `.namespace` only when it is set.
    #[test]
    fn ingress_ref_warnings_name_the_fields_written() {
        for (r, fields, object) in [
            (
                json!({"name": "ing"}),
                "spec.router.ingress.refs[0].name:",
                "Ingress ing ",
            ),
            (
                json!({"name": "ing", "namespace": "demo"}),
                "spec.router.ingress.refs[0].name, spec.router.ingress.refs[0].namespace:",
                "Ingress demo/ing ",
            ),
        ] {
            let spec = json!({"router": {"ingress": {"refs": [r]}}});
            let mut s = Sink::default();
            check(&Obj::of(Some(&spec), "spec", &mut s), &mut s);
            assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
            let w = &s.warnings[0];
            assert!(w.starts_with(fields), "{w}");
            assert!(w.contains(object), "{w}");
            assert_eq!(
                w.contains(".namespace"),
                fields.contains(".namespace"),
                "{w}"
            );
        }
    }
}
