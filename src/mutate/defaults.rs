//! Step 1: scalar defaults.
//!
//! - `model.name` from `metadata.name` when absent (only when `model` exists);
//! - `replicas: 1` when neither `replicas` nor `scaling` is set (decode, and prefill when present);
//! - `parallelism.dataRPCPort: 5555` when data parallelism (`data` or `dataLocal`) is used;
//! - `storageInitializer.enabled: true` when absent.
//!
//! Router sub-objects are filled by the router step.

use serde_json::{Value, json};

use super::{Ctx, MutateError, Pool, podspec};
use crate::model::json::{self, Obj, Path};

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx) -> Result<(), MutateError> {
    let spec = podspec::spec_mut(obj)?;
    let sp = Path::Lit("spec");
    if let (Some(name), Some(model)) = (&ctx.view.name, json::child_mut(spec, "model", &sp)?) {
        json::set_default_with(model, "name", || json!(name));
    }
    let si = json::ensure_obj(spec, "storageInitializer", &sp)?;
    json::set_default(si, "enabled", Value::Bool(true));

    for pool in [Pool::Decode, Pool::Prefill] {
        let Some(info) = ctx.pool(pool) else { continue };
        let Some(p) = podspec::pool_mut(obj, pool)? else {
            continue;
        };
        pool_defaults(p, podspec::pool_path(pool), info.view.is_data_parallel())?;
    }
    Ok(())
}

fn pool_defaults(p: &mut Obj, path: &str, data_parallel: bool) -> Result<(), MutateError> {
    if !json::has(p, "replicas") && !json::has(p, "scaling") {
        p.insert("replicas".into(), json!(1));
    }
    if data_parallel {
        let par = json::ensure_obj(p, "parallelism", &Path::Lit(path))?;
        json::set_default_with(par, "dataRPCPort", || json!(5555));
    }
    Ok(())
}
