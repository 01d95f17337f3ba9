//! Step 6: prefill/decode disaggregation (a `prefill` pool with a `template`).
//!
//! - Both sides carry the same `--kv-transfer-config
//!   {"kv_connector":"NixlConnector","kv_role":"kv_both"}` (llm-d convention; one function
//!   generates it for both, so the roles can never mismatch, cf. ai-dynamo/dynamo#11467), and
//!   `VLLM_NIXL_SIDE_CHANNEL_HOST` from the pod IP. A pool with `kvCacheOffloading` gets a
//!   `MultiConnector` over that connector and the `OffloadingConnector` instead
//!   ([`super::vllm::multi_connector`]).
//! - The decode pool's leader/single pods get the llm-d routing sidecar: init container
//!   `llm-d-routing-sidecar` with `restartPolicy: Always`, listening on `cfg.vllm_port` (8000)
//!   and forwarding to vLLM, which moves to `cfg.vllm_port + 1` (8001); `main` gets that port.
//!   Probes are left alone: the sidecar answers `/health` on 8000.
//! - The sidecar gets a `restricted`-ready securityContext when it has none.
//! - Pool labels `llm-d.ai/role: decode` / `prefill` when absent (the endpoint picker selects
//!   prefill and decode pods by this label).

use serde_json::{Value, json};

use super::{Ctx, MutateConfig, MutateError, PODS, Pool, Role, podspec};
use crate::model::json::{self, Path};

/// Name of the routing sidecar init container.
pub const ROUTING_SIDECAR: &str = "llm-d-routing-sidecar";

/// The sidecar, env and labels (the prefill step's vLLM argument pass runs before, from
/// [`super::expand`]).
pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    if !ctx.disaggregated() {
        return Ok(());
    }
    let vllm_port = cfg.vllm_port as i64 + 1;
    for (pool, role) in PODS {
        let path = podspec::pod_path(pool, role);
        let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
            continue;
        };
        if pool == Pool::Decode && role == Role::Template {
            sidecar(pod, path, cfg, vllm_port)?;
            let (main, cpath) = podspec::main_mut(pod, path)?;
            podspec::add_port(main, &cpath, vllm_port)?;
        }
        let (main, cpath) = podspec::main_mut(pod, path)?;
        podspec::add_env(
            main,
            &cpath,
            "VLLM_NIXL_SIDE_CHANNEL_HOST",
            || json!({ "name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } }),
        )?;
    }
    for (pool, role) in [(Pool::Decode, "decode"), (Pool::Prefill, "prefill")] {
        let Some(p) = podspec::pool_mut(obj, pool)? else {
            continue;
        };
        let labels = json::ensure_obj(p, "labels", &Path::Lit(podspec::pool_path(pool)))?;
        json::set_default_with(labels, "llm-d.ai/role", || json!(role));
    }
    Ok(())
}

fn sidecar(
    pod: &mut json::Obj,
    path: &'static str,
    cfg: &MutateConfig,
    vllm_port: i64,
) -> Result<(), MutateError> {
    let (c, cpath) = podspec::named_mut(pod, path, "initContainers", ROUTING_SIDECAR)?;
    json::set_default_with(c, "image", || json!(cfg.routing_sidecar_image));
    json::set_default_with(c, "restartPolicy", || json!("Always"));
    json::set_default_with(c, "securityContext", podspec::restricted_security_context);
    if !json::has(c, "command") && !json::has(c, "args") {
        c.insert(
            "args".into(),
            json!([
                format!("--port={}", cfg.vllm_port),
                format!("--vllm-port={vllm_port}"),
                "--connector=nixlv2",
                "--secure-proxy=false"
            ]),
        );
    }
    podspec::add_port(c, &cpath, cfg.vllm_port as i64)?;
    Ok(())
}
