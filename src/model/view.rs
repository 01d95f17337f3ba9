//! A service read once: [`ServiceView`] and its pools ([`PoolView`]).
//!
//! The shape of an `LLMInferenceService` as KServe's controller reads it
//! (pkg/apis/serving/v1alpha2/llm_inference_service_types.go): the decode pool inline in `spec`
//! and an optional `spec.prefill` pool of the same shape; a pool with a `worker` pod template is
//! multi-node (a LeaderWorkerSet); a `prefill` pool with a `template` splits prefill and decode;
//! `router` has three optional parts, each either managed by the service or naming existing
//! objects (`refs`). The views own what they read (the mutating webhook edits the object after
//! reading it) and keep nothing of the `Value` they were read from.
//!
//! [`PoolView`] is the only place that answers GPUs per pod, pods per LeaderWorkerSet group and
//! data-parallel ranks per pod, by the rules of [`crate::parallelism::Sizes`].
//!
//! Two ways to read: [`ServiceView::read`] (a wrong JSON type is a [`JsonError`] naming the field,
//! for the mutating webhook, which refuses such an object) and [`ServiceView::read_lenient`] (a
//! wrong type counts as absent, for preset selection, which runs before validation reports it).

use serde_json::Value;

use super::children::Pool;
use super::json::{self, JsonError, Obj, Path};
use crate::parallelism::Sizes;

/// The API version a service is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// `serving.kserve.io/v1alpha1`.
    V1alpha1,
    /// `serving.kserve.io/v1alpha2` (and anything else: the storage version).
    #[default]
    V1alpha2,
}

impl Version {
    /// The version of an `apiVersion` (`group/version`).
    pub fn of(api_version: &str) -> Version {
        if api_version.ends_with("/v1alpha1") {
            Version::V1alpha1
        } else {
            Version::V1alpha2
        }
    }
}

/// One part of `spec.router` (`route`, `gateway`, `scheduler`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    /// Not set: the service has no such part.
    #[default]
    Absent,
    /// Set without refs: the service's own object (made by the reconciler, defaults by the
    /// presets and the mutating webhook).
    Managed,
    /// Names existing objects (`route.http.refs`, `gateway.refs`, `scheduler.pool.ref.name`).
    Refs,
}

impl Part {
    /// Set at all.
    pub fn present(self) -> bool {
        self != Part::Absent
    }
}

/// The shape of `spec.router`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterView {
    /// `route`: `Refs` when `http.refs` is a non-empty list.
    pub route: Part,
    /// `gateway`: `Refs` when `refs` is a non-empty list.
    pub gateway: Part,
    /// `scheduler`: `Refs` when `pool.ref.name` is a non-empty string.
    pub scheduler: Part,
    /// `scheduler.pool.ref.name`, when set.
    pub pool_ref: Option<String>,
}

impl RouterView {
    /// Reads a `router` object (wrong types count as absent: the shape only).
    pub fn read(router: &Obj) -> RouterView {
        let part = |key: &str, refs: &[&str]| -> Part {
            let Some(v) = json::present(router, key).filter(|v| v.is_object()) else {
                return Part::Absent;
            };
            let mut cur = v;
            for k in refs {
                match cur.get(k) {
                    Some(x) => cur = x,
                    None => return Part::Managed,
                }
            }
            // `refs` lists, `ref.name` a string.
            let named = match cur {
                Value::Array(a) => key != "scheduler" && !a.is_empty(),
                Value::String(s) => key == "scheduler" && !s.is_empty(),
                _ => false,
            };
            if named { Part::Refs } else { Part::Managed }
        };
        let scheduler = part("scheduler", &["pool", "ref", "name"]);
        RouterView {
            route: part("route", &["http", "refs"]),
            gateway: part("gateway", &["refs"]),
            pool_ref: (scheduler == Part::Refs)
                .then(|| router["scheduler"]["pool"]["ref"]["name"].as_str())
                .flatten()
                .map(str::to_string),
            scheduler,
        }
    }
}

/// One pool (`spec` for decode, `spec.prefill`), as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolView {
    /// `parallelism`'s sizes.
    pub sizes: Sizes,
    /// `parallelism.dataRPCPort`.
    pub rpc_port: Option<i64>,
    /// `parallelism.expert`.
    pub expert: Option<bool>,
    /// `parallelism` set at all.
    pub has_parallelism: bool,
    /// `template` set (single-node pods, or the leaders of a multi-node pool).
    pub has_template: bool,
    /// `worker` set: a multi-node pool (a LeaderWorkerSet).
    pub has_worker: bool,
    /// `replicas` (when an integer).
    pub replicas: Option<i64>,
    /// `scaling` set (an autoscaler instead of fixed replicas).
    pub has_scaling: bool,
}

/// How a view treats a wrong JSON type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Lenient,
}

/// `r` in `mode`: a lenient read turns a wrong type into absence.
fn take<T>(r: Result<Option<T>, JsonError>, mode: Mode) -> Result<Option<T>, JsonError> {
    match (r, mode) {
        (Err(_), Mode::Lenient) => Ok(None),
        (r, _) => r,
    }
}

impl PoolView {
    /// Reads a pool object; `path` is its path (`spec`, `spec.prefill`).
    pub fn read(m: &Obj, path: &Path) -> Result<PoolView, JsonError> {
        Self::read_in(m, path, Mode::Strict)
    }

    /// [`PoolView::read`], wrong types counted as absent.
    pub fn read_lenient(m: &Obj) -> PoolView {
        Self::read_in(m, &Path::ROOT, Mode::Lenient).unwrap_or_default()
    }

    fn read_in(m: &Obj, path: &Path, mode: Mode) -> Result<PoolView, JsonError> {
        let mut view = PoolView {
            has_template: take(json::child(m, "template", path), mode)?.is_some(),
            has_worker: take(json::child(m, "worker", path), mode)?.is_some(),
            // Read for their shape only, in either mode (their types are validation's).
            replicas: json::present(m, "replicas").and_then(Value::as_i64),
            has_scaling: json::present(m, "scaling").is_some_and(Value::is_object),
            ..PoolView::default()
        };
        if let Some(par) = take(json::child(m, "parallelism", path), mode)? {
            let pp = path.key("parallelism");
            let int = |k: &str| take(json::get_int(par, k, &pp), mode);
            view.has_parallelism = true;
            view.sizes = Sizes {
                tensor: int("tensor")?,
                pipeline: int("pipeline")?,
                data: int("data")?,
                data_local: int("dataLocal")?,
            };
            view.rpc_port = int("dataRPCPort")?;
            view.expert = take(json::get_bool(par, "expert", &pp), mode)?;
        }
        Ok(view)
    }

    /// A view of `sizes` (for rules that checked the sizes themselves), with or without a worker.
    pub fn of_sizes(sizes: Sizes, has_worker: bool) -> PoolView {
        PoolView {
            sizes,
            has_worker,
            ..PoolView::default()
        }
    }

    /// Multi-node: a `worker` (the reconciler makes a LeaderWorkerSet).
    pub fn multi_node(&self) -> bool {
        self.has_worker
    }

    /// `data` or `dataLocal` set.
    pub fn is_data_parallel(&self) -> bool {
        self.sizes.is_data_parallel()
    }

    /// `pipeline` set.
    pub fn is_pipeline_parallel(&self) -> bool {
        self.sizes.pipeline.is_some()
    }

    /// Data-parallel ranks in one pod ([`Sizes::local_ranks`]).
    pub fn local_ranks(&self) -> i64 {
        self.sizes.local_ranks(self.multi_node())
    }

    /// GPUs each pod of the pool needs ([`Sizes::gpus_per_pod`]); `None` when no size that
    /// implies GPUs is set.
    pub fn gpus_per_pod(&self) -> Option<i64> {
        self.sizes
            .any()
            .then(|| self.sizes.gpus_per_pod(self.multi_node()))
    }

    /// Pods in one LeaderWorkerSet group, leader included ([`Sizes::pods_per_group`]); 1 for a
    /// single-node pool.
    pub fn group_size(&self) -> i64 {
        if self.multi_node() {
            self.sizes.pods_per_group()
        } else {
            1
        }
    }
}

/// Pods per LeaderWorkerSet group of a multi-node pool from its sizes as the reconciler holds
/// them ([`PoolView::group_size`]), at least 1, saturated to `i32` (LeaderWorkerSet's `size`).
pub fn group_size(data: Option<i32>, data_local: Option<i32>, pipeline: Option<i32>) -> i32 {
    let sizes = Sizes {
        tensor: None,
        pipeline: pipeline.map(i64::from),
        data: data.map(i64::from),
        data_local: data_local.map(i64::from),
    };
    i32::try_from(PoolView::of_sizes(sizes, true).group_size()).unwrap_or(i32::MAX)
}

/// A service (or its `spec`), read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// From `apiVersion`.
    pub version: Version,
    /// `metadata.name`.
    pub name: Option<String>,
    /// `spec` set at all.
    pub has_spec: bool,
    /// The decode pool (inline in `spec`).
    pub decode: PoolView,
    /// `spec.prefill`, when set.
    pub prefill: Option<PoolView>,
    /// `spec.router`.
    pub router: RouterView,
}

impl ServiceView {
    /// Reads a whole service; a wrong JSON type is an error naming the field.
    pub fn read(svc: &Value) -> Result<ServiceView, JsonError> {
        let root = json::as_obj(svc, &Path::ROOT)?;
        let mut view = ServiceView {
            version: Version::of(json::get_str(root, "apiVersion", &Path::ROOT)?.unwrap_or("")),
            ..ServiceView::default()
        };
        if let Some(meta) = json::child(root, "metadata", &Path::ROOT)? {
            view.name = json::get_str(meta, "name", &Path::Lit("metadata"))?.map(str::to_string);
        }
        if let Some(spec) = json::child(root, "spec", &Path::ROOT)? {
            view.read_spec(spec, Mode::Strict)?;
        }
        Ok(view)
    }

    /// Reads a `spec` alone (a preset's or a service's), wrong types counted as absent.
    pub fn read_lenient(spec: &Value) -> ServiceView {
        let mut view = ServiceView::default();
        if let Some(spec) = spec.as_object() {
            // A lenient read has no errors.
            let _ = view.read_spec(spec, Mode::Lenient);
        }
        view
    }

    fn read_spec(&mut self, spec: &Obj, mode: Mode) -> Result<(), JsonError> {
        let sp = Path::Lit("spec");
        self.has_spec = true;
        self.decode = PoolView::read_in(spec, &sp, mode)?;
        if let Some(p) = take(json::child(spec, "prefill", &sp), mode)? {
            self.prefill = Some(PoolView::read_in(p, &sp.key("prefill"), mode)?);
        }
        if let Some(r) = take(json::child(spec, "router", &sp), mode)? {
            self.router = RouterView::read(r);
        }
        Ok(())
    }

    /// The pool `pool`, when the service has it.
    pub fn pool(&self, pool: Pool) -> Option<&PoolView> {
        match pool {
            Pool::Decode => Some(&self.decode),
            Pool::Prefill => self.prefill.as_ref(),
        }
    }

    /// Prefill/decode disaggregation: a prefill pool with pods (`spec.prefill.template`).
    pub fn disaggregated(&self) -> bool {
        self.prefill.as_ref().is_some_and(|p| p.has_template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What a view answers about one pool, in one line: sizes (`t` tensor, `p` pipeline, `d`
    /// data, `dl` dataLocal), multi-node, GPUs per pod, pods per group, local ranks.
    fn pool_line(p: &PoolView) -> String {
        let Sizes {
            tensor,
            pipeline,
            data,
            data_local,
        } = p.sizes;
        let size =
            |name: &str, v: Option<i64>| v.map(|v| format!("{name}{v} ")).unwrap_or_default();
        format!(
            "{}{}{}{}{} gpus={} group={} local={}",
            size("t", tensor),
            size("p", pipeline),
            size("d", data),
            size("dl", data_local),
            if p.multi_node() { "multi" } else { "single" },
            p.gpus_per_pod().map_or("-".to_string(), |g| g.to_string()),
            p.group_size(),
            p.local_ranks(),
        )
    }

    /// Single-node, multi-node, prefill/decode and v1alpha1-shaped services.
    #[test]
    fn views_of_the_service_shapes() {
        // (service, version, decode, prefill: `-` none, `pods` split)
        let cases = [
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
                       "spec": {"template": {}, "parallelism": {"tensor": 4}}}),
                Version::V1alpha2,
                "t4 single gpus=4 group=1 local=1",
                "-",
            ),
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2", "spec": {"template": {}}}),
                Version::V1alpha2,
                "single gpus=- group=1 local=1",
                "-",
            ),
            // 16 ranks, 8 a pod: 2 pods a group
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2",
                       "spec": {"template": {}, "worker": {},
                                "parallelism": {"tensor": 1, "data": 16, "dataLocal": 8}}}),
                Version::V1alpha2,
                "t1 d16 dl8 multi gpus=8 group=2 local=8",
                "-",
            ),
            // pipeline over pods: one stage a pod
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2",
                       "spec": {"template": {}, "worker": {}, "parallelism": {"tensor": 2, "pipeline": 3}}}),
                Version::V1alpha2,
                "t2 p3 multi gpus=2 group=3 local=1",
                "-",
            ),
            // pipeline in one pod: all stages share it
            (
                json!({"spec": {"template": {}, "parallelism": {"tensor": 2, "pipeline": 2}}}),
                Version::V1alpha2,
                "t2 p2 single gpus=4 group=1 local=1",
                "-",
            ),
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2",
                       "spec": {"template": {}, "parallelism": {"tensor": 2},
                                "prefill": {"template": {}, "parallelism": {"tensor": 1, "data": 4}}}}),
                Version::V1alpha2,
                "t2 single gpus=2 group=1 local=1",
                "pods t1 d4 single gpus=4 group=1 local=4",
            ),
            // a prefill pool without pods: no split
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha2",
                       "spec": {"template": {}, "prefill": {"replicas": 2}}}),
                Version::V1alpha2,
                "single gpus=- group=1 local=1",
                "single gpus=- group=1 local=1",
            ),
            (
                json!({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
                       "spec": {"worker": {}, "template": {}, "parallelism": {"data": 4, "dataLocal": 2, "tensor": 2}}}),
                Version::V1alpha1,
                "t2 d4 dl2 multi gpus=4 group=2 local=2",
                "-",
            ),
        ];
        for (input, version, decode, prefill) in cases {
            let v = ServiceView::read(&input).unwrap();
            assert_eq!(v.version, version, "{input}");
            assert_eq!(pool_line(&v.decode), decode, "{input}");
            let got = match &v.prefill {
                None => "-".to_string(),
                Some(p) if v.disaggregated() => format!("pods {}", pool_line(p)),
                Some(p) => pool_line(p),
            };
            assert_eq!(got, prefill, "{input}");
            // The lenient read of the spec sees the same pools.
            let lenient = ServiceView::read_lenient(&input["spec"]);
            assert_eq!(lenient.decode, v.decode, "{input}");
            assert_eq!(lenient.prefill, v.prefill, "{input}");
        }
    }

    #[test]
    fn router_shapes() {
        let cases = [
            (json!({}), Part::Absent, Part::Absent, Part::Absent, None),
            (
                json!({"route": {}, "gateway": {}, "scheduler": {}}),
                Part::Managed,
                Part::Managed,
                Part::Managed,
                None,
            ),
            (
                json!({"route": {"http": {"refs": [{"name": "r"}]}}, "gateway": {"refs": [{"name": "g"}]},
                       "scheduler": {"pool": {"ref": {"name": "p"}}}}),
                Part::Refs,
                Part::Refs,
                Part::Refs,
                Some("p"),
            ),
            (
                json!({"route": {"http": {"refs": []}}, "gateway": {"refs": []},
                       "scheduler": {"pool": {"ref": {"name": ""}}}}),
                Part::Managed,
                Part::Managed,
                Part::Managed,
                None,
            ),
            (
                json!({"route": null, "gateway": "x"}),
                Part::Absent,
                Part::Absent,
                Part::Absent,
                None,
            ),
        ];
        for (router, route, gateway, scheduler, pool_ref) in cases {
            let v = RouterView::read(router.as_object().unwrap());
            assert_eq!(
                (v.route, v.gateway, v.scheduler, v.pool_ref.as_deref()),
                (route, gateway, scheduler, pool_ref),
                "{router}"
            );
        }
    }

    #[test]
    fn strict_reads_name_the_field_lenient_ones_skip_it() {
        let svc = json!({"apiVersion": "serving.kserve.io/v1alpha2",
                         "spec": {"prefill": {"parallelism": {"tensor": "2"}}}});
        let e = ServiceView::read(&svc).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.prefill.parallelism.tensor: expected an integer"
        );
        let v = ServiceView::read_lenient(&svc["spec"]);
        assert_eq!(v.prefill.unwrap().sizes.tensor, None);
        let e = ServiceView::read(&json!({"spec": {"worker": []}})).unwrap_err();
        assert_eq!(e.to_string(), "spec.worker: expected an object");
    }
}
