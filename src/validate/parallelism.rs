//! Parallelism and GPUs: what vLLM will need per pod against what the pod templates request.
//!
//! GPUs per pod and pods per group are [`crate::model::view::PoolView`]'s (tensor x dataLocal
//! with data parallelism, tensor with pipeline parallelism over pods, tensor otherwise). A pod's GPU count is the sum over its
//! containers (not init containers) of the accelerator limits.

use serde_json::Value;

use super::ValidateConfig;
use super::json::{Obj, Sink, child, index, key, whole_quantity};
use crate::model::view::PoolView;
use crate::parallelism::Sizes;

/// The sizes of a `parallelism` block, each already checked to be > 0 (invalid ones are `None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Parallelism {
    pub present: bool,
    /// The valid sizes.
    pub sizes: Sizes,
    pub expert: Option<bool>,
    /// Some size was present but not a positive integer.
    pub invalid: bool,
}

impl Parallelism {
    pub fn read(workload: &Obj, s: &mut Sink) -> Self {
        let p = workload.obj("parallelism", s);
        let mut out = Parallelism {
            present: p.present(),
            ..Default::default()
        };
        let size = |k: &str, s: &mut Sink, invalid: &mut bool| -> Option<i64> {
            let present = p.has(k);
            match p.int(k, s) {
                Some(v) if v > 0 => Some(v),
                Some(v) => {
                    s.invalid_int(p.path_of(k), v, format!("{k} must be greater than 0"));
                    *invalid = true;
                    None
                }
                None => {
                    *invalid |= present;
                    None
                }
            }
        };
        let mut invalid = false;
        out.sizes = Sizes {
            tensor: size("tensor", s, &mut invalid),
            pipeline: size("pipeline", s, &mut invalid),
            data: size("data", s, &mut invalid),
            data_local: size("dataLocal", s, &mut invalid),
        };
        if let Some(port) = p.int("dataRPCPort", s)
            && !(1..=65535).contains(&port)
        {
            s.invalid_int(
                p.path_of("dataRPCPort"),
                port,
                "must be a port number between 1 and 65535",
            );
        }
        out.expert = p.bool("expert", s);
        out.invalid = invalid;
        out
    }

    /// Reads without reporting (for the old object on UPDATE).
    pub fn read_quiet(workload: Option<&Value>) -> Self {
        let mut s = Sink::default();
        let w = Obj::of(workload, "", &mut s);
        Self::read(&w, &mut s)
    }

    /// The pool's view with these sizes ([`PoolView`]: GPUs per pod, pods per group).
    pub fn view(&self, multi_node: bool) -> PoolView {
        PoolView::of_sizes(self.sizes, multi_node)
    }

    pub fn is_data_parallel(&self) -> bool {
        self.sizes.is_data_parallel()
    }
    pub fn is_pipeline_parallel(&self) -> bool {
        self.sizes.pipeline.is_some()
    }

    /// tensor x pipeline x data, missing = 1.
    pub fn total_size(&self) -> i64 {
        let Sizes {
            tensor,
            pipeline,
            data,
            ..
        } = self.sizes;
        tensor
            .unwrap_or(1)
            .saturating_mul(pipeline.unwrap_or(1))
            .saturating_mul(data.unwrap_or(1))
    }

    /// Pods in one LeaderWorkerSet group ([`PoolView::group_size`] of a multi-node pool).
    pub fn pods_per_group(&self) -> i64 {
        self.view(true).group_size()
    }
}

/// The accelerators a pod template requests.
#[derive(Clone, Debug, Default)]
pub struct PodGpus {
    /// Sum over containers.
    pub total: i64,
    /// (container index, container name, resource name, count) of containers with a non-zero count.
    pub containers: Vec<(usize, String, String, i64)>,
    /// Path of the template (`spec.template`).
    pub path: String,
}

impl PodGpus {
    /// The path to blame: the limit of the only GPU container, else the containers list.
    pub fn blame_path(&self) -> String {
        match self.containers.as_slice() {
            [(i, _, res, _)] => key(
                &child(
                    &child(&index(&child(&self.path, "containers"), *i), "resources"),
                    "limits",
                ),
                res,
            ),
            _ => child(&self.path, "containers"),
        }
    }

    /// `container "main" requests 2 nvidia.com/gpu`, or the total over several containers.
    pub fn describe(&self, cfg: &ValidateConfig) -> String {
        match self.containers.as_slice() {
            [] => format!(
                "no container requests a GPU ({})",
                cfg.accelerator_resources.join(", ")
            ),
            [(_, name, res, n)] => format!("container {name:?} requests {n} {res}"),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(_, name, res, n)| format!("{name:?}: {n} {res}"))
                    .collect();
                format!(
                    "its containers request {} GPUs in total ({})",
                    self.total,
                    parts.join(", ")
                )
            }
        }
    }
}

/// Reads the GPUs of a pod template, checking that requests equal limits. `None` when the
/// template is absent or not an object.
pub fn pod_gpus(tpl: &Obj, cfg: &ValidateConfig, s: &mut Sink) -> Option<PodGpus> {
    tpl.present().then_some(())?;
    let mut out = PodGpus {
        path: tpl.path.clone(),
        ..Default::default()
    };
    for (i, c) in tpl.objs("containers", s) {
        let name = c.str("name", s).unwrap_or("").to_string();
        let res = c.obj("resources", s);
        let limits = res.obj("limits", s);
        let requests = res.obj("requests", s);
        // The accelerator resources this container names, limits first, each once.
        let mut names: Vec<&str> = Vec::new();
        for m in [limits.map, requests.map].into_iter().flatten() {
            for r in m.keys() {
                let patterns = cfg.accelerator_resources.iter().map(String::as_str);
                if crate::mutate::is_accelerator(r, patterns) && !names.contains(&r.as_str()) {
                    names.push(r);
                }
            }
        }
        for r in names {
            let count = |o: &Obj, s: &mut Sink| -> Option<i64> {
                let v = o.raw(r)?;
                match whole_quantity(v) {
                    Some(n) if n >= 0 => Some(n),
                    _ => {
                        s.invalid(
                            key(&o.path, r),
                            v,
                            format!("{r} must be a whole, non-negative number of devices"),
                        );
                        None
                    }
                }
            };
            let limit = count(&limits, s);
            let request = count(&requests, s);
            match (limit, request) {
                (None, Some(req)) if !limits.has(r) => {
                    s.required(
                        key(&limits.path, r),
                        format!("{r} is an extended resource: it must be set in limits (requests alone are rejected by Kubernetes); set limits[{r}]: {req}"),
                    );
                }
                (Some(l), Some(req)) if l != req => {
                    s.invalid_int(
                        key(&requests.path, r),
                        req,
                        format!("requests of the extended resource {r} must equal its limits ({l}); set requests[{r}]: {l} or remove it"),
                    );
                }
                _ => {}
            }
            let n = limit.or(request).unwrap_or(0);
            if n > 0 {
                out.total = out.total.saturating_add(n);
                out.containers.push((i, name.clone(), r.to_string(), n));
            }
        }
    }
    Some(out)
}

/// Checks one workload (`spec` or `spec.prefill`). `partial`: an LLMInferenceServiceConfig
/// preset, where a missing worker may come from another preset.
pub fn check_workload(w: &Obj, cfg: &ValidateConfig, partial: bool, s: &mut Sink) {
    if !w.present() {
        return;
    }
    let par = Parallelism::read(w, s);
    let ppath = w.path_of("parallelism");
    let dp = par.is_data_parallel();
    let pp = par.is_pipeline_parallel();

    if !partial && w.has("worker") && !dp && !pp {
        s.forbidden(
            w.path_of("worker"),
            "a worker (multi-node deployment) needs data parallelism (parallelism.data and parallelism.dataLocal) or pipeline parallelism (parallelism.pipeline); set one of them or remove worker",
        );
    }
    if !partial && w.has("worker") && !w.has("template") {
        s.required(
            w.path_of("template"),
            "a multi-node pool (worker set) needs a leader pod template; set template (a preset usually provides it: kserve-config-llm-worker-pipeline-parallel or -data-parallel)",
        );
    }
    if dp && pp {
        s.invalid(
            &ppath,
            w.raw("parallelism").unwrap_or(&Value::Null),
            "pipeline parallelism and data parallelism (data, dataLocal) are exclusive; remove parallelism.pipeline or parallelism.data and parallelism.dataLocal",
        );
    }
    match (par.sizes.data, par.sizes.data_local) {
        (Some(d), None) if !w.obj("parallelism", &mut Sink::default()).has("dataLocal") => s.required(
            child(&ppath, "dataLocal"),
            format!("dataLocal must be set when data is set; set parallelism.dataLocal to the data parallel replicas per pod (a divisor of {d})"),
        ),
        (None, Some(dl)) if !w.obj("parallelism", &mut Sink::default()).has("data") => s.required(
            child(&ppath, "data"),
            format!("data must be set when dataLocal is set; set parallelism.data to a multiple of {dl}"),
        ),
        (Some(d), Some(dl)) if d % dl != 0 => s.invalid_int(
            child(&ppath, "data"),
            d,
            format!("data ({d}) must be a multiple of dataLocal ({dl}); set data: {} or dataLocal to a divisor of {d}", (d / dl + 1) * dl),
        ),
        _ => {}
    }
    // Pipeline stages without a worker share one pod (single-node pipeline parallelism);
    // data parallel ranks beyond dataLocal need more pods, hence a worker.
    let skip = partial || par.invalid || pp || w.has("worker") || !dp;
    if !skip && par.pods_per_group() > 1 {
        let why = if dp {
            format!(
                "data ({}) / dataLocal ({}) = {} pods per replica",
                par.sizes.data.unwrap_or(1),
                par.sizes.data_local.unwrap_or(1),
                par.pods_per_group()
            )
        } else {
            format!(
                "pipeline ({}) = {} pods per replica",
                par.sizes.pipeline.unwrap_or(1),
                par.pods_per_group()
            )
        };
        s.required(
            w.path_of("worker"),
            format!("{why} need a worker pod template (a multi-node LeaderWorkerSet); set worker, or reduce to one pod per replica"),
        );
    }
    if par.expert == Some(true)
        && par
            .sizes
            .tensor
            .unwrap_or(1)
            .saturating_mul(par.sizes.data.unwrap_or(1))
            == 1
    {
        s.warn(format!(
            "{}: expert parallelism is enabled but tensor x data = 1, so there is nothing to spread the experts over; raise tensor or data parallelism or remove expert",
            child(&ppath, "expert")
        ));
    }

    let leader = pod_gpus(&w.obj("template", s), cfg, s);
    let worker = pod_gpus(&w.obj("worker", s), cfg, s);

    // Node capacity, per pod.
    let max = i64::from(cfg.max_gpus_per_node);
    for g in [&leader, &worker].into_iter().flatten() {
        if g.total > max {
            s.invalid_int(
                g.blame_path(),
                g.total,
                format!(
                    "a pod may request at most {max} GPUs (a node of the configured GPU profile has {max}); spread the model over several nodes with pipeline or data parallelism and a worker"
                ),
            );
        }
    }

    if par.invalid || (dp && pp) {
        return;
    }
    let any_gpu = [&leader, &worker]
        .into_iter()
        .flatten()
        .any(|g| g.total > 0);
    if !par.present && !any_gpu {
        return; // CPU serving.
    }
    let multi_node = w.has("worker");
    let need = par.view(multi_node).gpus_per_pod().unwrap_or(1);
    let t = par.sizes.tensor.unwrap_or(1);
    let why = if dp {
        format!(
            "tensor ({t}) x dataLocal ({}) needs {need} GPUs per pod",
            par.sizes.data_local.unwrap_or(1)
        )
    } else if pp && multi_node {
        format!(
            "tensor ({t}) needs {need} GPUs per pod (pipeline parallelism runs one stage per pod)"
        )
    } else if pp {
        format!(
            "tensor ({t}) x pipeline ({}) needs {need} GPUs in the single pod (no worker: all stages in one pod)",
            par.sizes.pipeline.unwrap_or(1)
        )
    } else if par.sizes.tensor.is_some() {
        format!("tensor ({t}) needs {need} GPUs per pod")
    } else {
        format!("without parallelism.tensor vLLM uses {need} GPU per pod")
    };
    let hint = |g: i64| -> String {
        let per = if dp {
            par.sizes.data_local.unwrap_or(1)
        } else {
            1
        };
        if g > 0 && g % per == 0 {
            format!("set parallelism.tensor: {} or request {need} GPUs", g / per)
        } else {
            format!("request {need} GPUs")
        }
    };
    // A pod with no GPU and a need of one is CPU serving (the mutator injects GPUs where wanted).
    // A preset (partial) without GPUs is fine: they are injected when a service uses it.
    let mismatch = |g: &PodGpus| g.total != need && (g.total > 0 || (need > 1 && !partial));
    let tensor_path = child(&ppath, "tensor");
    let primary = leader.as_ref().or(worker.as_ref());
    if let Some(g) = primary
        && mismatch(g)
    {
        let detail = format!(
            "{why}, but {}{}; {}",
            pod_word(g, &w.path),
            g.describe(cfg),
            hint(g.total)
        );
        match par.sizes.tensor {
            Some(t) => s.invalid_int(tensor_path, t, detail),
            None => s.invalid_int(g.blame_path(), g.total, detail),
        }
    }
    if let (Some(l), Some(wk)) = (&leader, &worker)
        && l.total != wk.total
    {
        s.invalid_int(
            wk.blame_path(),
            wk.total,
            format!(
                "leader and worker pods must request the same number of GPUs: {} requests {}, {} requests {}; every pod of the group runs the same share of the model",
                l.path, l.total, wk.path, wk.total
            ),
        );
    }
}

fn pod_word(g: &PodGpus, base: &str) -> String {
    if g.path.ends_with(".worker") {
        "in the worker pod, ".to_string()
    } else if g.path != child(base, "template") {
        format!("in {}, ", g.path)
    } else {
        String::new()
    }
}

/// UPDATE: the total parallelism size may not change.
pub fn check_immutable(old: Option<&Value>, new: Option<&Value>, path: &str, s: &mut Sink) {
    let (Some(old), Some(new)) = (old, new) else {
        return;
    };
    let before = Parallelism::read_quiet(Some(old)).total_size();
    let after = Parallelism::read_quiet(Some(new)).total_size();
    if before != after {
        s.invalid_int(
            child(path, "parallelism"),
            after,
            format!(
                "the total parallelism size (tensor x pipeline x data) is immutable: it was {before} and would become {after}; keep the product at {before} or create a new LLMInferenceService"
            ),
        );
    }
}
