//! The jobs, wired together: the same pure calls serve the webhook and the offline CLI.
//! No I/O here; the server keeps an `Engine` behind an `ArcSwap` and swaps it on reload.

use serde_json::Value;

use crate::api::Kind;
use crate::convert;
use crate::mutate::{self, MutateConfig, Stage};
use crate::policy::PolicySet;
use crate::presets::{self, PresetStore, ResolveOptions, SYSTEM_NAMESPACE_DEFAULT};
use crate::validate::{self, ErrorKind, FieldError, Outcome, ValidateConfig};

/// Everything a request needs, built once (presets parsed and templates compiled, policies
/// compiled) and shared read-only.
#[derive(Clone)]
pub struct Engine {
    pub presets: PresetStore,
    pub resolve: ResolveOptions,
    pub mutate_cfg: MutateConfig,
    pub validate_cfg: ValidateConfig,
    pub policies: PolicySet,
}

impl Default for Engine {
    /// No presets, no policies: the steps and built-in rules only.
    fn default() -> Self {
        let presets = PresetStore::from_objects(Vec::new(), SYSTEM_NAMESPACE_DEFAULT)
            .unwrap_or_else(|_| unreachable!("an empty preset store always loads"));
        Self::with_presets(presets)
    }
}

/// Where mutation stops (`llmisvc render --stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopAfter {
    Presets,
    Step(Stage),
    End,
}

impl Engine {
    pub fn with_presets(presets: PresetStore) -> Self {
        let mut engine = Engine {
            presets,
            resolve: ResolveOptions::default(),
            mutate_cfg: MutateConfig::default(),
            validate_cfg: ValidateConfig::default(),
            policies: PolicySet::empty(),
        };
        let (ns, name) = engine.mutate_cfg.default_gateway.clone();
        engine.set_default_gateway(&ns, &name);
        engine
    }

    /// The Gateway that `router.gateway: {}` means, for the router step and for presets'
    /// `{{ .GlobalConfig.IngressGateway* }}` alike, so the two never disagree.
    pub fn set_default_gateway(&mut self, namespace: &str, name: &str) {
        self.mutate_cfg.default_gateway = (namespace.to_string(), name.to_string());
        let globals = presets::TemplateGlobals {
            ingress_gateway_name: name.to_string(),
            ingress_gateway_namespace: namespace.to_string(),
            ..self.presets.globals().clone()
        };
        self.presets = self.presets.clone().with_globals(globals);
    }

    /// The engine with the presets shipped in `deploy/presets/` (compiled into the binary).
    pub fn builtin() -> Result<Self, presets::PresetError> {
        Ok(Self::with_presets(PresetStore::embedded(
            SYSTEM_NAMESPACE_DEFAULT,
        )?))
    }

    /// The mutating webhook's decision: the expanded object.
    pub fn mutate(&self, obj: &Value) -> Result<Value, String> {
        self.mutate_until(obj, StopAfter::End)
    }

    /// Mutation stopped after a step (for `render --stage`).
    pub fn mutate_until(&self, obj: &Value, stop: StopAfter) -> Result<Value, String> {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::from_name);
        if kind != Some(Kind::Service) {
            // Presets are not expanded themselves; they are checked by validation.
            return Ok(obj.clone());
        }
        let resolved = presets::resolve_owned(obj.clone(), &self.presets, &self.resolve)
            .map_err(|e| e.to_string())?;
        match stop {
            StopAfter::Presets => Ok(resolved.object),
            StopAfter::Step(stage) => {
                mutate::expand_until_owned(resolved.object, &self.mutate_cfg, stage)
                    .map_err(|e| e.to_string())
            }
            StopAfter::End => {
                mutate::expand_owned(resolved.object, &self.mutate_cfg).map_err(|e| e.to_string())
            }
        }
    }

    /// The validating webhook's decision. A preset whose templates do not compile is rejected
    /// here, when it is written, not later when a service uses it.
    pub fn validate(&self, old: Option<&Value>, new: &Value) -> Outcome {
        let mut outcome = validate::validate(old, new, &self.validate_cfg, &self.policies);
        if new.get("kind").and_then(Value::as_str) == Some(Kind::Config.name())
            && let Err(e) = presets::Preset::from_object(new, self.presets.system_namespace())
        {
            outcome.errors.push(FieldError {
                kind: ErrorKind::Invalid,
                field: "spec".into(),
                value: None,
                detail: format!("{e}"),
            });
        }
        outcome
    }

    /// The conversion webhook's job for one object.
    pub fn convert(&self, obj: &Value, to: &str) -> Result<Value, String> {
        convert::convert(obj, to).map_err(|e| e.to_string())
    }
}
