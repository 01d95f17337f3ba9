//! Which objects a rule applies to.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::DEFAULT_KINDS;

/// The scope of a rule. Every part that is set must match (an empty scope matches every
/// `LLMInferenceService`).
///
/// - `namespaces`: the object's namespace is one of these.
/// - `namespaceSelector`: a label selector on the namespace's labels, as the caller's
///   [`NamespaceLookup`] gives them (`serve`: a watch cache of the cluster's namespaces). The
///   name label `kubernetes.io/metadata.name: <namespace>` (set by Kubernetes on every
///   namespace) is always known; when the other labels are not ([`NamespaceLabels::Unknown`]:
///   offline, or the namespace could not be read), a selector on them cannot be decided and
///   the rule fails closed: it is applied as if the namespace matched, and what it reports says
///   why ([`InScope::Unknown`]).
/// - `objectSelector`: a label selector on the object's own labels.
/// - `kinds`: `LLMInferenceService` (default) and/or `LLMInferenceServiceConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
}

/// A Kubernetes label selector.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    fn check(&self) -> Result<(), String> {
        for r in &self.match_expressions {
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => {
                    return Err(format!(
                        "matchExpressions key {:?}: operator {} needs values",
                        r.key, r.operator
                    ));
                }
                "Exists" | "DoesNotExist" if !r.values.is_empty() => {
                    return Err(format!(
                        "matchExpressions key {:?}: operator {} takes no values",
                        r.key, r.operator
                    ));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(format!(
                        "matchExpressions key {:?}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                        r.key
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let got = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => got.is_some_and(|g| r.values.contains(g)),
                    "NotIn" => got.is_none_or(|g| !r.values.contains(g)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    _ => false,
                }
            })
    }
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// What is known of the labels of the namespace an object is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceLabels {
    /// Its labels as the API server has them (`kubernetes.io/metadata.name` included).
    Known(BTreeMap<String, String>),
    /// Not known; why, in words that end up in the fail-closed finding (e.g. "namespace
    /// \"x\" could not be read from the API server: ...").
    Unknown(String),
}

/// Where policy evaluation gets namespace labels from. Asked at most once per evaluation, and
/// only when a rule that otherwise applies has a `namespaceSelector` on labels other than
/// `kubernetes.io/metadata.name`.
pub trait NamespaceLookup {
    /// The labels of `namespace` (a name; empty when the object names none).
    fn labels(&self, namespace: &str) -> NamespaceLabels;
}

impl<F: Fn(&str) -> NamespaceLabels> NamespaceLookup for F {
    fn labels(&self, namespace: &str) -> NamespaceLabels {
        self(namespace)
    }
}

/// Why labels are unknown without a cluster.
pub const OFFLINE_REASON: &str = "this check runs without a cluster (`llmisvc validate`, or `llmisvc serve` without a Kubernetes client configuration) and cannot read namespaces";

/// No cluster to ask (`llmisvc validate`; `serve` without a Kubernetes client configuration):
/// every namespace's labels are [`NamespaceLabels::Unknown`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Offline;

impl NamespaceLookup for Offline {
    fn labels(&self, _namespace: &str) -> NamespaceLabels {
        NamespaceLabels::Unknown(OFFLINE_REASON.to_string())
    }
}

/// Whether a rule applies to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InScope {
    Yes,
    No,
    /// Everything else matches, but `namespaceSelector` reads these namespace labels, which
    /// the caller does not know.
    Unknown(Vec<String>),
}

/// The namespace label Kubernetes sets on every namespace: known without looking it up.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl LabelSelector {
    /// The label keys the selector reads.
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .match_labels
            .keys()
            .cloned()
            .chain(self.match_expressions.iter().map(|r| r.key.clone()))
            .collect();
        k.sort();
        k.dedup();
        k
    }
}

impl Scope {
    /// Whether the scope reads namespace labels other than `kubernetes.io/metadata.name`
    /// (which only a [`NamespaceLookup`] can give).
    pub fn reads_namespace_labels(&self) -> bool {
        self.namespace_selector
            .as_ref()
            .is_some_and(|s| s.keys().iter().any(|k| k != NAME_LABEL))
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.namespace_selector {
            s.check()
                .map_err(|e| format!("scope.namespaceSelector: {e}"))?;
        }
        if let Some(s) = &self.object_selector {
            s.check()
                .map_err(|e| format!("scope.objectSelector: {e}"))?;
        }
        if let Some(k) = &self.kinds
            && let Some(bad) = k.iter().find(|k| {
                !["LLMInferenceService", "LLMInferenceServiceConfig"].contains(&k.as_str())
            })
        {
            return Err(format!(
                "scope.kinds: unknown kind {bad:?} (LLMInferenceService, LLMInferenceServiceConfig)"
            ));
        }
        Ok(())
    }

    /// [`Scope::in_scope`] as a yes/no, an undecidable namespace selector counting as a match
    /// (failing closed).
    pub fn matches(
        &self,
        obj: &Value,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        self.in_scope(obj, namespace_labels) != InScope::No
    }

    /// Whether the rule applies to `obj`; `namespace_labels` are the labels of its namespace
    /// when the caller knows them.
    pub fn in_scope(
        &self,
        obj: &Value,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> InScope {
        if !self.matches_known(obj, namespace_labels) {
            return InScope::No;
        }
        match (&self.namespace_selector, namespace_labels) {
            (Some(sel), None) => {
                let unknown: Vec<String> =
                    sel.keys().into_iter().filter(|k| k != NAME_LABEL).collect();
                if unknown.is_empty() {
                    InScope::Yes
                } else {
                    InScope::Unknown(unknown)
                }
            }
            _ => InScope::Yes,
        }
    }

    /// Every part that can be decided matches; a namespace selector on labels nobody passed
    /// is not held against the object here (see [`Scope::in_scope`]).
    fn matches_known(
        &self,
        obj: &Value,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(super::KIND_SERVICE);
        let kind_ok = match &self.kinds {
            Some(k) => k.iter().any(|k| k == kind),
            None => DEFAULT_KINDS.contains(&kind),
        };
        if !kind_ok {
            return false;
        }
        let ns = obj
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(list) = &self.namespaces
            && !list.iter().any(|n| n == ns)
        {
            return false;
        }
        if let Some(sel) = &self.namespace_selector {
            match namespace_labels {
                Some(labels) => {
                    if !sel.matches(labels) {
                        return false;
                    }
                }
                None => {
                    // Only the name label is known: decide what reads only it.
                    let name_only = LabelSelector {
                        match_labels: sel
                            .match_labels
                            .iter()
                            .filter(|(k, _)| *k == NAME_LABEL)
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        match_expressions: sel
                            .match_expressions
                            .iter()
                            .filter(|r| r.key == NAME_LABEL)
                            .cloned()
                            .collect(),
                    };
                    let known: BTreeMap<String, String> =
                        [(NAME_LABEL.to_string(), ns.to_string())].into();
                    if !name_only.matches(&known) {
                        return false;
                    }
                }
            }
        }
        if let Some(sel) = &self.object_selector
            && !sel.matches(&labels_of(obj))
        {
            return false;
        }
        true
    }
}
