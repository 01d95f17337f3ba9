//! The MutatingWebhookConfiguration and ValidatingWebhookConfiguration for both kinds.

use serde_json::{Value, json};

use crate::api::GROUP;
use crate::api::crd::base64_encode;

/// Where the API server reaches the webhooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Service {
        namespace: String,
        name: String,
    },
    /// A URL base like `https://127.0.0.1:8443`; paths are appended.
    Url(String),
}

impl Default for Target {
    fn default() -> Self {
        Target::Service {
            namespace: "llmisvc-system".into(),
            name: "llmisvc-webhook".into(),
        }
    }
}

pub const MUTATING_NAME: &str = "llmisvc-mutating";
pub const VALIDATING_NAME: &str = "llmisvc-validating";

fn client_config(target: &Target, path: &str, ca: Option<&[u8]>) -> Value {
    let mut cc = match target {
        Target::Service { namespace, name } => json!({
            "service": {"namespace": namespace, "name": name, "path": path, "port": 443}
        }),
        Target::Url(base) => json!({"url": format!("{}{path}", base.trim_end_matches('/'))}),
    };
    if let Some(ca) = ca {
        cc["caBundle"] = Value::String(base64_encode(ca));
    }
    cc
}

fn rules() -> Value {
    json!([{
        "apiGroups": [GROUP],
        "apiVersions": ["v1alpha1", "v1alpha2"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["llminferenceservices", "llminferenceserviceconfigs"],
        "scope": "Namespaced",
    }])
}

/// One webhook configuration of `kind` named `name` whose one webhook `webhook` is served at
/// `path`; the settings both share (rules, `failurePolicy: Fail`, 10 s timeout, equivalent
/// matching) are here once.
fn webhook_config(
    kind: &str,
    name: &str,
    webhook: &str,
    target: &Target,
    path: &str,
    ca: Option<&[u8]>,
) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "llmisvc"}},
        "webhooks": [{
            "name": webhook,
            "clientConfig": client_config(target, path, ca),
            "rules": rules(),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
        }]
    })
}

/// Both configurations as JSON objects (mutating first). The mutating webhook is reinvoked
/// (`reinvocationPolicy: IfNeeded`) when another mutating webhook changes the object after it.
pub fn webhook_configs(target: &Target, ca: Option<&[u8]>) -> [Value; 2] {
    let mut mutating = webhook_config(
        "MutatingWebhookConfiguration",
        MUTATING_NAME,
        "mutate.llmisvc.serving.kserve.io",
        target,
        "/mutate",
        ca,
    );
    mutating["webhooks"][0]["reinvocationPolicy"] = json!("IfNeeded");
    let validating = webhook_config(
        "ValidatingWebhookConfiguration",
        VALIDATING_NAME,
        "validate.llmisvc.serving.kserve.io",
        target,
        "/validate",
        ca,
    );
    [mutating, validating]
}

/// As a YAML stream for `kubectl apply -f -`.
pub fn webhook_configs_yaml(
    target: &Target,
    ca: Option<&[u8]>,
) -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for doc in webhook_configs(target, ca) {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&doc)?);
    }
    Ok(out)
}

/// File in `webhook-config/` holding the committed copy.
pub const FILE_NAME: &str = "webhooks.yaml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_target_appends_paths_and_ca() {
        let [m, v] = webhook_configs(&Target::Url("https://127.0.0.1:9/".into()), Some(b"PEM"));
        assert_eq!(
            m["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9/mutate"
        );
        assert_eq!(
            v["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9/validate"
        );
        assert_eq!(m["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(m["webhooks"][0]["reinvocationPolicy"], "IfNeeded");
        assert!(v["webhooks"][0].get("reinvocationPolicy").is_none());
        let typed: k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration =
            serde_json::from_value(m).unwrap();
        assert_eq!(
            typed.webhooks.unwrap()[0].failure_policy.as_deref(),
            Some("Fail")
        );
    }
}
