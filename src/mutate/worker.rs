//! Step 5: multi-node pools (`worker` set; the reconciler creates a LeaderWorkerSet).
//!
//! Leader (`template`) and worker pods get matching flags. LeaderWorkerSet injects
//! `LWS_LEADER_ADDRESS` and `LWS_WORKER_INDEX` into every container, and Kubernetes expands
//! `$(VAR)` in `args`:
//!
//! - data parallel: leader `--data-parallel-address $(LWS_LEADER_ADDRESS)
//!   --data-parallel-start-rank 0`; workers `--headless --data-parallel-address
//!   $(LWS_LEADER_ADDRESS) --data-parallel-start-rank <LWS_WORKER_INDEX × dataLocal>`.
//!   With `dataLocal` 1 (or unset) the rank is `$(LWS_WORKER_INDEX)`. With `dataLocal > 1`
//!   Kubernetes cannot multiply, so the worker's command gets a minimal shell wrapper
//!   `["/bin/sh", "-c", "exec \"$@\" --data-parallel-start-rank $(( ${LWS_WORKER_INDEX:-0} * N ))",
//!   "llmisvc-dp-rank", <original command...>]`: the original command (default `vllm serve`)
//!   and args run unchanged with the computed rank appended. The wrapper is recognised by its
//!   `$0` marker `llmisvc-dp-rank`, so it is never applied twice, and removed again (the original
//!   command restored) when it is no longer needed. It is not applied when the command is a
//!   shell script or the user passes `--data-parallel-start-rank` themselves.
//! - pipeline parallel (Ray-free, vLLM's multiprocessing executor): leader `--nnodes P
//!   --node-rank 0 --master-addr $(LWS_LEADER_ADDRESS) --distributed-executor-backend mp`;
//!   workers add `--headless` and `--node-rank $(LWS_WORKER_INDEX)`.
//!
//! GPU resources and volumes reach the worker pods through the GPU and storage steps.
//! Pods per group are not stored anywhere: [`crate::model::view::group_size`] computes them (data / dataLocal, or
//! pipeline).

use serde_json::{Value, json};

use super::podspec::{RANK_WRAPPER_MARKER, is_rank_wrapper};
use super::vllm;
use super::{Ctx, MutateConfig, MutateError, Pool, Role, podspec};

fn rank_script(local: i64) -> String {
    format!("exec \"$@\" --data-parallel-start-rank $(( ${{LWS_WORKER_INDEX:-0}} * {local} ))")
}

/// The start-rank wrappers (the worker step's vLLM argument pass runs before, from
/// [`super::expand`]).
pub(crate) fn apply(
    obj: &mut Value,
    ctx: &Ctx,
    cfg: &MutateConfig,
    record: &vllm::Record,
) -> Result<(), MutateError> {
    for pool in [Pool::Decode, Pool::Prefill] {
        let Some(info) = ctx.pool(pool) else {
            continue;
        };
        let local = info.view.sizes.data_local.unwrap_or(1);
        let wanted = info.view.is_data_parallel() && local > 1;
        let path = podspec::pod_path(pool, Role::Worker);
        let Some(pod) = podspec::pod_mut(obj, pool, Role::Worker)? else {
            continue;
        };
        let (main, cpath) = podspec::main_mut(pod, path)?;
        let cmd = podspec::command(main, &cpath)?;
        let args = record.current_args(main, &cpath, ctx, cfg, pool, Role::Worker)?;
        let user_rank = args
            .iter()
            .any(|a| vllm::flag_key_ref(a).as_deref() == Some("--data-parallel-start-rank"));
        let wanted = wanted && !user_rank;
        let new_cmd = match cmd {
            // Our wrapper: keep it current, or unwrap when no longer needed.
            Some(mut c) if is_rank_wrapper(&c) => {
                if wanted {
                    let script = rank_script(local);
                    if c[2] == script {
                        continue; // already current
                    }
                    c[2] = script;
                    c
                } else {
                    c.split_off(4)
                }
            }
            _ if !wanted => continue,
            Some(c) if podspec::is_shell(&c) => continue,
            other => {
                let inner = other
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| vec!["vllm".into(), "serve".into()]);
                let mut c = vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    rank_script(local),
                    RANK_WRAPPER_MARKER.to_string(),
                ];
                c.extend(inner);
                c
            }
        };
        main.insert("command".into(), json!(new_cmd));
    }
    Ok(())
}
