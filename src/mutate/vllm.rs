//! Step 3: the vLLM command line of every `main` container.
//!
//! Generated arguments, in order: the model (`/mnt/models`, or the Hugging Face repo id / URI
//! when vLLM pulls the model itself), `--served-model-name`, `--port`, parallelism flags,
//! LoRA flags, then (later steps) multi-node flags and `--kv-transfer-config`.
//!
//! **User arguments never wipe generated flags, and generated flags never duplicate user ones**
//! (kserve/kserve#5048). The container's `args` become `generated + user + VLLM_ADDITIONAL_ARGS`:
//! the user's own arguments (those in `args` the webhook did not generate) follow the generated
//! ones, the `VLLM_ADDITIONAL_ARGS` env value (split on whitespace) is appended, and a generated
//! flag the user also passes (`--flag value`, `--flag=value`, `--flag_name`, or the short forms
//! `-tp`, `-pp`, `-dp`, `-dpl`) is dropped, so the user's value is the only one. A first user
//! argument that is not a flag (or `--model`) replaces the generated model argument.
//!
//! Idempotence: annotation [`GENERATED_ARGS_ANNOTATION`] on the service holds, per pod
//! (`template`, `worker`, `prefill.template`, `prefill.worker`), the generated tokens written in
//! front of the user's arguments (`prefix`) and the appended `VLLM_ADDITIONAL_ARGS` tokens
//! (`suffix`). A later run strips exactly those (when `args` still starts/ends with them) to find
//! the user's arguments again, then regenerates from the current spec, so spec changes on update
//! are picked up and nothing is duplicated.
//!
//! Containers whose command is a shell script (`/bin/bash -c ...`, as in KServe's own presets)
//! build their command line themselves: their `args` and env are left alone.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::json;
use super::{
    Ctx, GENERATED_ARGS_ANNOTATION, MutateConfig, MutateError, PODS, Pool, Role, Stage, pod_key,
    podspec, storage, worker,
};

/// One generated flag (or the model positional) with its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Normalised flag name, or `<model>` for the positional model argument.
    pub key: String,
    pub tokens: Vec<String>,
}

impl Item {
    pub fn flag(name: &str, values: &[String]) -> Item {
        let mut tokens = vec![name.to_string()];
        tokens.extend(values.iter().cloned());
        Item {
            key: name.to_string(),
            tokens,
        }
    }
    pub fn switch(name: &str) -> Item {
        Item::flag(name, &[])
    }
    pub fn value(name: &str, v: impl ToString) -> Item {
        Item::flag(name, &[v.to_string()])
    }
}

const MODEL_KEY: &str = "<model>";

/// The normalised flag name of an argument token, `None` for values and positionals.
pub fn flag_key(tok: &str) -> Option<String> {
    if !tok.starts_with('-')
        || tok.len() < 2
        || tok[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return None;
    }
    let name = tok.split('=').next().unwrap_or(tok);
    let name = match name {
        "-tp" => "--tensor-parallel-size",
        "-pp" => "--pipeline-parallel-size",
        "-dp" => "--data-parallel-size",
        "-dpl" => "--data-parallel-size-local",
        other => other,
    };
    let norm = if let Some(rest) = name.strip_prefix("--") {
        format!("--{}", rest.replace('_', "-"))
    } else {
        name.to_string()
    };
    Some(norm)
}

/// The merged argument list: generated items minus those the user overrides, then the user's
/// arguments, then the additional ones. Also returns the generated prefix actually written.
pub fn merge(
    generated: &[Item],
    user: &[String],
    additional: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut keys: BTreeSet<String> = user
        .iter()
        .chain(additional)
        .filter_map(|t| flag_key(t))
        .collect();
    if user.first().is_some_and(|t| flag_key(t).is_none()) || keys.contains("--model") {
        keys.insert(MODEL_KEY.to_string());
    }
    let prefix: Vec<String> = generated
        .iter()
        .filter(|it| !keys.contains(&it.key))
        .flat_map(|it| it.tokens.iter().cloned())
        .collect();
    let mut out = prefix.clone();
    out.extend(user.iter().cloned());
    out.extend(additional.iter().cloned());
    (out, prefix)
}

/// Generated items of one pod for the steps up to `upto`.
pub(crate) fn generate(
    ctx: &Ctx,
    cfg: &MutateConfig,
    pool: Pool,
    role: Role,
    upto: Stage,
) -> Vec<Item> {
    let Some(info) = ctx.pool(pool) else {
        return Vec::new();
    };
    let par = &info.par;
    let mut items = Vec::new();
    if let Some((model, revision)) = storage::model_arg(ctx) {
        items.push(Item {
            key: MODEL_KEY.into(),
            tokens: vec![model],
        });
        if let Some(rev) = revision {
            items.push(Item::value("--revision", rev));
        }
    }
    if let Some(name) = &ctx.model_name {
        items.push(Item::value("--served-model-name", name));
    }
    let port = if upto >= Stage::Prefill && pool == Pool::Decode && ctx.disaggregated() {
        cfg.vllm_port + 1
    } else {
        cfg.vllm_port
    };
    items.push(Item::value("--port", port));
    if let Some(t) = par.tensor {
        items.push(Item::value("--tensor-parallel-size", t));
    }
    if let Some(p) = par.pipeline {
        items.push(Item::value("--pipeline-parallel-size", p));
    }
    if par.is_data_parallel() {
        let data = par.data.unwrap_or_else(|| par.local_ranks(info.has_worker));
        items.push(Item::value("--data-parallel-size", data));
        if let Some(l) = par.data_local {
            items.push(Item::value("--data-parallel-size-local", l));
        }
        items.push(Item::value(
            "--data-parallel-rpc-port",
            par.rpc_port.unwrap_or(cfg.data_rpc_port as i64),
        ));
    }
    if par.expert {
        items.push(Item::switch("--enable-expert-parallel"));
    }
    if let Some(lora) = ctx.lora.as_ref().filter(|l| !l.adapters.is_empty()) {
        let n = lora.adapters.len() as i64;
        items.push(Item::switch("--enable-lora"));
        if let Some(r) = lora.max_rank {
            items.push(Item::value("--max-lora-rank", r));
        }
        items.push(Item::value("--max-loras", lora.max_adapters.unwrap_or(n)));
        items.push(Item::value(
            "--max-cpu-loras",
            lora.max_cpu_adapters.unwrap_or(n),
        ));
        let modules: Vec<String> = lora
            .adapters
            .iter()
            .map(|a| format!("{}={}", a.name, storage::adapter_path(ctx, a)))
            .collect();
        items.push(Item::flag("--lora-modules", &modules));
    }
    if upto >= Stage::Worker && info.has_worker {
        items.extend(worker::multinode_items(par, role, cfg));
    }
    if upto >= Stage::Prefill && ctx.disaggregated() {
        items.push(Item::value("--kv-transfer-config", kv_transfer_config(cfg)));
    }
    items
}

/// The KV transfer configuration both sides of a prefill/decode pair carry (llm-d convention:
/// the same connector with `kv_role: kv_both` on prefill and decode, so the roles always match).
pub fn kv_transfer_config(cfg: &MutateConfig) -> String {
    json!({ "kv_connector": cfg.kv_connector, "kv_role": "kv_both" }).to_string()
}

/// Rewrites the args of every `main` container with the items of the steps up to `upto`.
pub(crate) fn apply(
    obj: &mut Value,
    ctx: &Ctx,
    cfg: &MutateConfig,
    upto: Stage,
) -> Result<(), MutateError> {
    let mut record = read_record(obj)?;
    let mut changed = false;
    for (pool, role) in PODS {
        let path = podspec::pod_path(pool, role);
        let items = generate(ctx, cfg, pool, role, upto);
        let key = pod_key(pool, role);
        let (old_prefix, old_suffix) = record
            .get(key)
            .map(|e| (tokens_of(e, "prefix"), tokens_of(e, "suffix")))
            .unwrap_or_default();
        let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
            continue;
        };
        let (main, cpath) = podspec::main_mut(pod, &path)?;
        let cmd = podspec::command(main, &cpath)?.unwrap_or_default();
        if podspec::is_shell(&cmd) && !worker::is_rank_wrapper(&cmd) {
            continue;
        }
        let apath = format!("{cpath}.args");
        let mut current = match json::get_arr(main, "args", &apath)? {
            Some(a) => json::str_list(a, &apath)?,
            None => Vec::new(),
        };
        if !old_prefix.is_empty() && current.starts_with(&old_prefix) {
            current.drain(..old_prefix.len());
        }
        if !old_suffix.is_empty() && current.ends_with(&old_suffix) {
            current.truncate(current.len() - old_suffix.len());
        }
        let additional: Vec<String> = podspec::env_value(main, &cpath, "VLLM_ADDITIONAL_ARGS")?
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let (args, prefix) = merge(&items, &current, &additional);
        main.insert("args".into(), json!(args));
        record.insert(
            key.to_string(),
            json!({ "prefix": prefix, "suffix": additional }),
        );
        changed = true;
    }
    if changed {
        let root = json::as_obj_mut(obj, "")?;
        let meta = json::ensure_obj(root, "metadata", "metadata")?;
        let ann = json::ensure_obj(meta, "annotations", "metadata.annotations")?;
        ann.insert(
            GENERATED_ARGS_ANNOTATION.into(),
            Value::String(Value::Object(record).to_string()),
        );
    }
    Ok(())
}

fn tokens_of(entry: &Value, key: &str) -> Vec<String> {
    entry
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The record of generated args; a malformed record counts as none.
fn read_record(obj: &Value) -> Result<Map<String, Value>, MutateError> {
    let root = json::as_obj(obj, "")?;
    let Some(meta) = json::child(root, "metadata", "metadata")? else {
        return Ok(Map::new());
    };
    let Some(ann) = json::child(meta, "annotations", "metadata.annotations")? else {
        return Ok(Map::new());
    };
    let raw = json::get_str(
        ann,
        GENERATED_ARGS_ANNOTATION,
        &format!("metadata.annotations[{GENERATED_ARGS_ANNOTATION}]"),
    )?;
    Ok(raw
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flag_keys() {
        assert_eq!(flag_key("--port=9").as_deref(), Some("--port"));
        assert_eq!(
            flag_key("--tensor_parallel_size").as_deref(),
            Some("--tensor-parallel-size")
        );
        assert_eq!(flag_key("-tp").as_deref(), Some("--tensor-parallel-size"));
        assert_eq!(flag_key("-1"), None);
        assert_eq!(flag_key("/mnt/models"), None);
    }

    #[test]
    fn user_flag_replaces_generated() {
        let g = vec![
            Item {
                key: MODEL_KEY.into(),
                tokens: s(&["/mnt/models"]),
            },
            Item::value("--port", 8000),
            Item::value("--tensor-parallel-size", 2),
            Item::switch("--enable-lora"),
        ];
        let (out, prefix) = merge(&g, &s(&["--port=9000", "--x"]), &s(&["-tp", "4"]));
        assert_eq!(
            out,
            s(&[
                "/mnt/models",
                "--enable-lora",
                "--port=9000",
                "--x",
                "-tp",
                "4"
            ])
        );
        assert_eq!(prefix, s(&["/mnt/models", "--enable-lora"]));
        // A positional first user argument replaces the model.
        let (out, _) = merge(&g, &s(&["my/model"]), &[]);
        assert_eq!(out[0], "--port");
        assert_eq!(out.last().unwrap(), "my/model");
    }
}
