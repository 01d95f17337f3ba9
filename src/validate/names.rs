//! `metadata.name` of a service: every child's name is derived from it ([`crate::model::children`]).

use super::json::Sink;

/// Refuses a service name from which no valid child names can be made: KServe would accept
/// it and then fail to create the children (a dot, as in `llama-3.2-3b-instruct`, or a leading
/// digit makes every Service name invalid; more than 63 characters cannot be the
/// `app.kubernetes.io/name` label every child carries). An empty name (not yet generated) and
/// presets (`LLMInferenceServiceConfig`, which have no children) are not checked.
pub fn check_child_names(name: &str, is_config: bool, s: &mut Sink) {
    if is_config || name.is_empty() {
        return;
    }
    if let Some(why) = crate::model::children::unusable_service_name(name) {
        s.invalid_str("metadata.name", name, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_table() {
        let long = "a".repeat(64);
        for (name, is_config, ok) in [
            ("m", false, true),
            (
                "customer-support-assistant-llama-31-70b-instruct",
                false,
                true,
            ),
            ("llama-3-2-3b-instruct", false, true),
            ("llama-3.2-3b-instruct", false, false),
            ("llama-3.2-3b-instruct", true, true),
            ("3b-instruct", false, false),
            (long.as_str(), false, false),
            ("", false, true),
        ] {
            let mut s = Sink::default();
            check_child_names(name, is_config, &mut s);
            assert_eq!(s.errors.is_empty(), ok, "{name:?}: {:?}", s.errors);
            for e in &s.errors {
                assert_eq!(e.field, "metadata.name");
            }
        }
    }
}
