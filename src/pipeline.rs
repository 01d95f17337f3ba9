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

/// What [`Engine::admit`] gives: the object to store, and warnings for the user.
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Why [`Engine::admit`] (and [`Engine::mutate`], [`Engine::mutate_until`]) refuses: field
/// errors of the service as written (answered like validation's), or the typed error of the
/// step that failed. The edge turns it into an answer: [`Refused::field_errors`] gives the
/// Kubernetes field errors (`/mutate` answers them as a 422 `Status` with `details.causes`,
/// like validation errors), `Display` one line (the CLI).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refused {
    /// KServe's rules on the service as written ([`validate::kserve::check_as_written`]).
    #[error("{}", join_errors(&.0.errors))]
    Invalid(Outcome),
    /// Presets could not be resolved or rendered ([`presets::resolve_owned`]).
    #[error(transparent)]
    Preset(#[from] presets::PresetError),
    /// An expansion step failed ([`mutate::expand_until_owned`]), naming the field.
    #[error(transparent)]
    Mutate(#[from] mutate::MutateError),
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Refused {
    /// The refusal as Kubernetes field errors (`FieldValueInvalid` for a step's error, the
    /// field its path; a wrong JSON type with its value and validation's wording:
    /// `spec.parallelism.tensor: Invalid value: "four": must be an integer, not a string`):
    /// `None` when it names no field of the object (an unsupported kind, a preset whose own
    /// template fails), which the edge answers as one message.
    pub fn field_errors(&self) -> Option<Vec<FieldError>> {
        let one = |field: &str, value: Option<&str>, detail: String| {
            Some(vec![FieldError {
                kind: ErrorKind::Invalid,
                field: field.to_string(),
                value: value.map(str::to_string),
                detail,
            }])
        };
        match self {
            Refused::Invalid(o) => Some(o.errors.clone()),
            Refused::Preset(e) => e.field().and_then(|(f, m)| one(f, None, m.to_string())),
            Refused::Mutate(e) => e.field().and_then(|f| one(f, e.value(), e.detail())),
        }
    }
}

/// Why [`Engine::children`] gives no children.
#[derive(Debug, thiserror::Error)]
pub enum ChildrenError {
    /// Only an `LLMInferenceService` has children.
    #[error("kind {0:?} has no children: only an LLMInferenceService has")]
    NotAService(String),
    /// Mutation refused the service.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Validation of the mutated service failed (the API server would refuse it).
    #[error("refused: {}", join_errors(&.0.errors))]
    Invalid(Outcome),
    /// The reconciler's builder failed.
    #[error(transparent)]
    Build(#[from] crate::reconcile::build::BuildError),
}

fn kind_of(obj: &Value) -> Option<Kind> {
    obj.get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::from_name)
}

/// The owner uid in objects rendered before the service exists ([`Engine::children`]).
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

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

    /// The mutating webhook's decision: the service as written checked against KServe's rules
    /// that expansion would hide ([`validate::kserve::check_as_written`]), then expanded; with
    /// the warnings to give (a baseRef naming a config that does not exist yet).
    pub fn admit(&self, obj: &Value) -> Result<Admitted, Refused> {
        if kind_of(obj) == Some(Kind::Service) {
            let mut s = validate::json::Sink::default();
            validate::kserve::check_as_written(obj, &mut s);
            if !s.errors.is_empty() {
                return Err(Refused::Invalid(Outcome {
                    errors: s.errors,
                    warnings: s.warnings,
                }));
            }
        }
        self.expand(obj, StopAfter::End)
    }

    /// The expanded object ([`Engine::admit`] without its warnings).
    pub fn mutate(&self, obj: &Value) -> Result<Value, Refused> {
        self.admit(obj).map(|a| a.object)
    }

    /// Mutation stopped after a step (for `render --stage`).
    pub fn mutate_until(&self, obj: &Value, stop: StopAfter) -> Result<Value, Refused> {
        self.expand(obj, stop).map(|a| a.object)
    }

    fn expand(&self, obj: &Value, stop: StopAfter) -> Result<Admitted, Refused> {
        if kind_of(obj) != Some(Kind::Service) {
            // Presets are not expanded themselves; they are checked by validation.
            return Ok(Admitted {
                object: obj.clone(),
                warnings: Vec::new(),
            });
        }
        let resolved = presets::resolve_owned(obj.clone(), &self.presets, &self.resolve)?;
        let warnings = resolved.missing.iter().map(|m| m.warning()).collect();
        // Stored un-expanded until its baseRefs exist: the steps would bake in values derived
        // from an incomplete spec.
        let pending = !presets::missing_base_refs(&resolved.object).is_empty();
        let object = match stop {
            _ if pending => resolved.object,
            StopAfter::Presets => resolved.object,
            StopAfter::Step(stage) => {
                mutate::expand_until_owned(resolved.object, &self.mutate_cfg, stage)?
            }
            StopAfter::End => mutate::expand_owned(resolved.object, &self.mutate_cfg)?,
        };
        Ok(Admitted { object, warnings })
    }

    /// The validating webhook's decision. A preset whose templates do not compile is rejected
    /// here, when it is written, not later when a service uses it. A service whose baseRefs
    /// name configs that do not exist is admitted with a warning (as by [`Engine::admit`]).
    pub fn validate(&self, old: Option<&Value>, new: &Value) -> Outcome {
        self.validate_in(old, new, &crate::policy::Offline)
    }

    /// [`Engine::validate`] with the labels of the object's namespace from `namespaces`, for
    /// policies that select namespaces by label (`serve`: its namespace watch cache).
    pub fn validate_in(
        &self,
        old: Option<&Value>,
        new: &Value,
        namespaces: &dyn crate::policy::NamespaceLookup,
    ) -> Outcome {
        // An object being deleted is not validated at all: no built-in check, no policy.
        if validate::is_deleting(old, new) {
            return Outcome::default();
        }
        // The built-in checks, then the platform policies (which sit above `validate`).
        let mut outcome = validate::validate(old, new, &self.validate_cfg);
        outcome.merge(self.policies.evaluate_in(old, new, namespaces));
        if kind_of(new) == Some(Kind::Service) {
            outcome.warnings.extend(
                presets::missing_refs(new, &self.presets)
                    .iter()
                    .map(|m| m.warning()),
            );
        }
        if kind_of(new) == Some(Kind::Config)
            && let Err(e) = presets::Preset::from_object(new, self.presets.system_namespace())
        {
            // A template error names the string it is in (`spec.template...args[0]`).
            let (field, detail) = match &e {
                presets::PresetError::Template { field, message, .. } => (
                    field.clone(),
                    format!(
                        "the template does not compile: {message}; fix the {{{{ ... }}}} placeholder (KServe's Go-template syntax)"
                    ),
                ),
                _ => ("spec".to_string(), e.to_string()),
            };
            outcome.errors.push(FieldError {
                kind: ErrorKind::Invalid,
                field,
                value: None,
                detail,
            });
        }
        outcome
    }

    /// The child objects the reconciler would apply for `obj`, a service as written by its user:
    /// admitted (mutated, then validated: errors refuse it, as the API server would), then
    /// built by the reconciler's own builder ([`crate::reconcile::build::build_with`]). A
    /// missing namespace is `default`; a missing uid (assigned by the API server) is
    /// [`PLACEHOLDER_UID`] in the owner references.
    pub fn children(
        &self,
        obj: &Value,
        opts: &crate::reconcile::build::BuildOptions,
    ) -> Result<Vec<Value>, ChildrenError> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if Kind::from_name(kind) != Some(Kind::Service) {
            return Err(ChildrenError::NotAService(kind.to_string()));
        }
        let mut obj = obj.clone();
        if let Some(Value::Object(m)) = obj.get_mut("metadata")
            && m.get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            m.insert("namespace".into(), "default".into());
        }
        let mut stored = self.mutate(&obj)?;
        let outcome = self.validate(None, &stored);
        if !outcome.errors.is_empty() {
            return Err(ChildrenError::Invalid(outcome));
        }
        if let Some(Value::Object(m)) = stored.get_mut("metadata") {
            m.entry("uid").or_insert_with(|| PLACEHOLDER_UID.into());
        }
        Ok(crate::reconcile::build::build_with(&stored, opts)?)
    }

    /// The conversion webhook's job for one object.
    pub fn convert(&self, obj: &Value, to: &str) -> Result<Value, convert::ConvertError> {
        convert::convert(obj, to)
    }
}
