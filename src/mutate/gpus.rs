//! Step 2: accelerator resources of the `main` containers and the tensor parallel default.
//!
//! GPUs per pod: `tensor × dataLocal` with data parallelism (`dataLocal` defaults to `data` in a
//! single-node pool), `tensor` otherwise (with pipeline parallelism: per node). Where a `main`
//! container names no accelerator (a resource matching [`ACCELERATOR_PATTERNS`],
//! `cfg.gpu_resource` or `cfg.extra_accelerators`, in limits or requests: [`is_accelerator`], the
//! one definition the validator counts with too) the count is written into limits and requests
//! of `cfg.gpu_resource` as a string. A container limited to `nvidia.com/mig-1g.10gb: 1` has its
//! accelerator: it gets no `nvidia.com/gpu` besides. A container that names one is left alone (validation checks
//! consistency). Nothing is injected without parallelism: CPU serving is legitimate.
//!
//! `parallelism.tensor` when absent: the GPU count the user set (divided by `dataLocal` with
//! data parallelism), or `1` when other parallelism is set and no GPUs are.

use serde_json::{Value, json};

use super::{Ctx, MutateConfig, MutateError, Pool, Role, podspec};
use crate::model::json::{self, Obj, Path};

/// Accelerator resource names, as patterns (a trailing `*` matches any non-empty suffix): whole
/// NVIDIA GPUs, NVIDIA MIG slices (`nvidia.com/mig-1g.10gb`), AMD GPUs and every Intel GPU
/// resource (`gpu.intel.com/i915`, `gpu.intel.com/xe`). Each device of one of them is one
/// device to vLLM. The validator's default list ([`crate::validate::DEFAULT_ACCELERATORS`]).
pub const ACCELERATOR_PATTERNS: &[&str] = &[
    "nvidia.com/gpu",
    "nvidia.com/mig-*",
    "amd.com/gpu",
    "gpu.intel.com/*",
];

/// Whether resource `name` matches `pattern` (exact, or a prefix when it ends with `*`).
pub fn matches_accelerator(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Whether resource `name` is an accelerator: it matches one of `patterns` (see
/// [`matches_accelerator`]). Mutation passes [`ACCELERATOR_PATTERNS`] plus its configured
/// names; validation its `accelerator_resources`, by default the same patterns.
pub fn is_accelerator<'a>(name: &str, patterns: impl IntoIterator<Item = &'a str>) -> bool {
    patterns.into_iter().any(|p| matches_accelerator(name, p))
}

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    for pool in [Pool::Decode, Pool::Prefill] {
        let Some(info) = ctx.pool(pool).cloned() else {
            continue;
        };
        let mut view = info.view.clone();

        // GPUs the user already set (leader first).
        let mut existing = None;
        for role in [Role::Template, Role::Worker] {
            if existing.is_some() {
                break;
            }
            let path = podspec::pod_path(pool, role);
            if let Some(pod) = podspec::pod_mut(obj, pool, role)? {
                existing = read_existing(pod, path, cfg)?;
            }
        }

        if view.sizes.tensor.is_none() {
            // GPUs the user set, divided by dataLocal; 1 when that does not divide (validation
            // reports the inconsistency) or no GPUs are set but other parallelism is.
            let from_gpus = match existing {
                Some(g) if g > 0 => match view.sizes.data_local {
                    Some(l) if l > 0 && view.is_data_parallel() => (g % l == 0).then(|| g / l),
                    _ => Some(g),
                },
                _ => None,
            };
            let tensor = from_gpus.or((existing.is_some() || view.sizes.any()).then_some(1));
            if let Some(t) = tensor.filter(|t| *t > 0)
                && let Some(p) = podspec::pool_mut(obj, pool)?
            {
                let pp = Path::Lit(podspec::pool_path(pool));
                json::ensure_obj(p, "parallelism", &pp)?.insert("tensor".into(), json!(t));
                view.sizes.tensor = Some(t);
            }
        }

        let Some(gpus) = view.gpus_per_pod() else {
            continue;
        };
        for role in [Role::Template, Role::Worker] {
            let path = podspec::pod_path(pool, role);
            let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
                continue;
            };
            let (main, cpath) = podspec::main_mut(pod, path)?;
            if accelerator(main, &cpath, cfg)?.is_some() {
                continue;
            }
            let res = json::ensure_obj(main, "resources", &cpath)?;
            let rpath = cpath.key("resources");
            for key in ["limits", "requests"] {
                let m = json::ensure_obj(res, key, &rpath)?;
                m.insert(cfg.gpu_resource.clone(), json!(gpus.to_string()));
            }
        }
    }
    Ok(())
}

fn read_existing(
    pod: &mut Obj,
    path: &str,
    cfg: &MutateConfig,
) -> Result<Option<i64>, MutateError> {
    let at = Path::Lit(path);
    let Some(list) = json::get_arr(pod, "containers", &at)? else {
        return Ok(None);
    };
    let Some(i) = podspec::find_named(list, "main", &at.key("containers"))? else {
        return Ok(None);
    };
    let cpath = Path::Item(path, "containers", i);
    let Some(c) = list.get(i) else {
        return Ok(None);
    };
    let c = json::as_obj(c, &cpath)?;
    Ok(accelerator(c, &cpath, cfg)?.flatten())
}

/// Whether an accelerator is named in limits (then requests), with its count when it is a
/// plain integer.
pub(crate) fn accelerator(
    c: &Obj,
    cpath: &Path,
    cfg: &MutateConfig,
) -> Result<Option<Option<i64>>, MutateError> {
    let Some(res) = json::child(c, "resources", cpath)? else {
        return Ok(None);
    };
    let rpath = cpath.key("resources");
    for key in ["limits", "requests"] {
        let Some(m) = json::child(res, key, &rpath)? else {
            continue;
        };
        let patterns = || {
            std::iter::once(cfg.gpu_resource.as_str())
                .chain(ACCELERATOR_PATTERNS.iter().copied())
                .chain(cfg.extra_accelerators.iter().map(String::as_str))
        };
        for (name, v) in m.iter() {
            if !v.is_null() && is_accelerator(name, patterns()) {
                let n = match v {
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                };
                return Ok(Some(n));
            }
        }
    }
    Ok(None)
}
