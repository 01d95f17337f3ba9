//! Step 3: the vLLM command line of every `main` container.
//!
//! Generated arguments, in order: the model (`/mnt/models`, or the Hugging Face repo id / URI
//! when vLLM pulls the model itself), `--served-model-name`, `--port`, parallelism flags,
//! LoRA flags, then (later steps) multi-node flags and `--kv-transfer-config`.
//!
//! **User arguments never wipe generated flags, and generated flags never duplicate user ones**
//! (kserve/kserve#5048). The container's `args` become `generated + user + VLLM_ADDITIONAL_ARGS`:
//! the user's own arguments (those in `args` the webhook did not generate) follow the generated
//! ones, the `VLLM_ADDITIONAL_ARGS` env value (split into POSIX shell words, quotes removed, as
//! KServe's presets' `eval "exec vllm serve ... ${VLLM_ADDITIONAL_ARGS}"` does) is appended,
//! and a generated flag the user also passes (`--flag value`, `--flag=value`, `--flag_name`, or
//! the short forms `-tp`, `-pp`, `-dp`, `-dpl`) is dropped, so the user's value is the only one. A first user
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

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{
    Ctx, GENERATED_ARGS_ANNOTATION, MutateConfig, MutateError, PODS, Pool, Role, Stage, pod_key,
    podspec, storage,
};
use crate::model::json::{self, Path};
use crate::parallelism::Sizes;

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
    flag_key_ref(tok).map(Cow::into_owned)
}

/// [`flag_key`], borrowing the token when it needs no rewriting.
pub(crate) fn flag_key_ref(tok: &str) -> Option<Cow<'_, str>> {
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
    Some(match name.strip_prefix("--") {
        Some(rest) if rest.contains('_') => Cow::Owned(format!("--{}", rest.replace('_', "-"))),
        _ => Cow::Borrowed(name),
    })
}

/// The merged argument list: generated items minus those the user overrides, then the user's
/// arguments, then the additional ones. Also returns the generated prefix actually written.
pub fn merge(
    generated: &[Item],
    user: &[String],
    additional: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut items = Generated::default();
    for it in generated {
        items.push(&it.key, it.tokens.iter().map(|t| Cow::Borrowed(t.as_str())));
    }
    let user: Vec<&str> = user.iter().map(String::as_str).collect();
    let additional: Vec<&str> = additional.iter().map(String::as_str).collect();
    let (out, prefix) = merge_refs(&items, &user, &additional);
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
    (owned(out), owned(prefix))
}

/// Generated items of one pod, in order, borrowing what they can: item `i` has key
/// `keys[i].0` and the tokens from the end of item `i - 1` up to `keys[i].1`.
#[derive(Debug, Default)]
pub(crate) struct Generated<'a> {
    keys: Vec<(&'a str, usize)>,
    tokens: Vec<Cow<'a, str>>,
}

impl<'a> Generated<'a> {
    fn push(&mut self, key: &'a str, tokens: impl IntoIterator<Item = Cow<'a, str>>) {
        self.tokens.extend(tokens);
        self.keys.push((key, self.tokens.len()));
    }

    /// A flag without a value.
    pub(crate) fn switch(&mut self, name: &'static str) {
        self.push(name, [Cow::Borrowed(name)]);
    }

    /// A flag with one value.
    pub(crate) fn value(&mut self, name: &'static str, v: impl Into<Cow<'a, str>>) {
        self.push(name, [Cow::Borrowed(name), v.into()]);
    }

    /// `(key, tokens)` of every item.
    fn items(&self) -> impl Iterator<Item = (&'a str, &[Cow<'a, str>])> {
        let mut start = 0;
        self.keys.iter().map(move |&(key, end)| {
            let toks = self.tokens.get(start..end).unwrap_or_default();
            start = end;
            (key, toks)
        })
    }
}

/// [`merge`] on borrowed tokens.
fn merge_refs<'a>(
    generated: &'a Generated<'_>,
    user: &[&'a str],
    additional: &[&'a str],
) -> (Vec<&'a str>, Vec<&'a str>) {
    // A handful of user flags: a list is cheaper than a set.
    let mut keys: Vec<Cow<'a, str>> = user
        .iter()
        .chain(additional)
        .filter_map(|t| flag_key_ref(t))
        .collect();
    if user.first().is_some_and(|t| flag_key_ref(t).is_none())
        || keys.iter().any(|k| k == "--model")
    {
        keys.push(Cow::Borrowed(MODEL_KEY));
    }
    let mut prefix: Vec<&str> = Vec::with_capacity(generated.tokens.len());
    for (key, toks) in generated.items() {
        if !keys.iter().any(|k| k == key) {
            prefix.extend(toks.iter().map(|t| t.as_ref()));
        }
    }
    let mut out = Vec::with_capacity(prefix.len() + user.len() + additional.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(user);
    out.extend_from_slice(additional);
    (out, prefix)
}

/// Generated items of one pod for the steps up to `upto`.
pub(crate) fn generate<'a>(
    ctx: &'a Ctx,
    cfg: &MutateConfig,
    pool: Pool,
    role: Role,
    upto: Stage,
) -> Generated<'a> {
    let mut items = Generated::default();
    let Some(info) = ctx.pool(pool) else {
        return items;
    };
    let par = &info.view.sizes;
    if let Some((model, revision)) = storage::model_arg(ctx) {
        items.push(MODEL_KEY, [Cow::Owned(model)]);
        if let Some(rev) = revision {
            items.value("--revision", rev);
        }
    }
    if let Some(name) = &ctx.model_name {
        items.value("--served-model-name", name.as_str());
    }
    let port = if upto >= Stage::Prefill && pool == Pool::Decode && ctx.disaggregated() {
        cfg.vllm_port + 1
    } else {
        cfg.vllm_port
    };
    items.value("--port", port.to_string());
    if let Some(t) = par.tensor {
        items.value("--tensor-parallel-size", t.to_string());
    }
    if let Some(p) = par.pipeline {
        items.value("--pipeline-parallel-size", p.to_string());
    }
    if par.is_data_parallel() {
        let data = par.data.unwrap_or_else(|| info.view.local_ranks());
        items.value("--data-parallel-size", data.to_string());
        if let Some(l) = par.data_local {
            items.value("--data-parallel-size-local", l.to_string());
        }
        items.value(
            "--data-parallel-rpc-port",
            info.view
                .rpc_port
                .unwrap_or(cfg.data_rpc_port as i64)
                .to_string(),
        );
    }
    if info.view.expert == Some(true) {
        items.switch("--enable-expert-parallel");
    }
    if let Some(lora) = ctx.lora.as_ref().filter(|l| !l.adapters.is_empty()) {
        let n = lora.adapters.len() as i64;
        items.switch("--enable-lora");
        if let Some(r) = lora.max_rank {
            items.value("--max-lora-rank", r.to_string());
        }
        items.value("--max-loras", lora.max_adapters.unwrap_or(n).to_string());
        items.value(
            "--max-cpu-loras",
            lora.max_cpu_adapters.unwrap_or(n).to_string(),
        );
        let modules = lora
            .adapters
            .iter()
            .map(|a| Cow::Owned(format!("{}={}", a.name, storage::adapter_path(ctx, a))));
        items.push(
            "--lora-modules",
            std::iter::once(Cow::Borrowed("--lora-modules")).chain(modules),
        );
    }
    if upto >= Stage::Worker && info.view.multi_node() {
        multinode_items(&mut items, par, role);
    }
    let pd = upto >= Stage::Prefill && ctx.disaggregated();
    match (pd, &info.kv_offloading) {
        (true, None) => items.value("--kv-transfer-config", kv_transfer_config(cfg)),
        (true, Some(off)) => items.value("--kv-transfer-config", multi_connector(cfg, off)),
        (false, Some(off)) => items.value("--kv-transfer-config", off.to_string()),
        (false, None) => {}
    }
    items
}

/// Multi-node flags of a leader (`Role::Template`) or worker pod (see [`super::worker`]):
/// LeaderWorkerSet's `LWS_LEADER_ADDRESS` / `LWS_WORKER_INDEX`, expanded by Kubernetes in `args`.
pub(crate) fn multinode_items(items: &mut Generated<'_>, par: &Sizes, role: Role) {
    const LEADER: &str = "$(LWS_LEADER_ADDRESS)";
    let worker = role == Role::Worker;
    if par.is_data_parallel() {
        if worker {
            items.switch("--headless");
        }
        items.value("--data-parallel-address", LEADER);
        match role {
            Role::Template => items.value("--data-parallel-start-rank", "0"),
            Role::Worker if par.data_local.unwrap_or(1) <= 1 => {
                items.value("--data-parallel-start-rank", "$(LWS_WORKER_INDEX)")
            }
            Role::Worker => {} // appended by the rank wrapper
        }
    } else if let Some(p) = par.pipeline {
        if worker {
            items.switch("--headless");
        }
        items.value("--nnodes", p.to_string());
        items.value(
            "--node-rank",
            if worker { "$(LWS_WORKER_INDEX)" } else { "0" },
        );
        items.value("--master-addr", LEADER);
        items.value("--distributed-executor-backend", "mp");
    }
}

/// Prefill/decode transfer and CPU offloading together: vLLM's `MultiConnector` over the P/D
/// connector and the `OffloadingConnector` (the shape of KServe's
/// `docs/samples/llmisvc/agentic-tool-calling` P/D sample). A user `--kv-transfer-config` still
/// replaces it whole, as it replaces KServe's generated one.
pub fn multi_connector(cfg: &MutateConfig, offloading: &Value) -> String {
    serde_json::json!({
        "kv_connector": "MultiConnector",
        "kv_role": "kv_both",
        "kv_connector_extra_config": {
            "connectors": [
                { "kv_connector": cfg.kv_connector, "kv_role": "kv_both" },
                offloading,
            ]
        }
    })
    .to_string()
}

/// The KV transfer configuration both sides of a prefill/decode pair carry (llm-d convention:
/// the same connector with `kv_role: kv_both` on prefill and decode, so the roles always match).
pub fn kv_transfer_config(cfg: &MutateConfig) -> String {
    // `json!({ "kv_connector": .., "kv_role": "kv_both" }).to_string()`, without the map.
    let connector = Value::String(cfg.kv_connector.clone()).to_string();
    format!("{{\"kv_connector\":{connector},\"kv_role\":\"kv_both\"}}")
}

/// The vLLM passes of one expansion (after the `vllm`, `worker` and `prefill` steps) and the
/// record of generated args (annotation [`GENERATED_ARGS_ANNOTATION`]).
///
/// A pass finds each `main` container's own arguments (its `args` minus the generated prefix and
/// the `VLLM_ADDITIONAL_ARGS` suffix of the record) and rewrites `args` as generated + own +
/// additional. A later pass strips exactly what the earlier one wrote, so it finds the same own
/// arguments: the result of several passes is the result of the last pass that processed the
/// pod. So a pass only checks the container (same errors as a full pass) and remembers, per pod,
/// which part of the original `args` are the user's and the last step that processed it;
/// [`Record::finish`] writes `args`, the record entries and the annotation once, after the last
/// step, and only where they change. The record is parsed once. Nothing else reads or writes
/// `args` between the passes, except the worker step ([`Record::current_args`]).
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The parsed annotation; `None` until the first pass.
    map: Option<Map<String, Value>>,
    /// Per pod (in [`PODS`] order), when a pass processed it.
    pods: [Option<Pending>; 4],
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The last step whose pass processed the pod.
    upto: Stage,
    /// The user's own arguments: `args[start..end]` of the original (still unwritten) `args`.
    start: usize,
    end: usize,
}

fn pod_index(pool: Pool, role: Role) -> usize {
    PODS.iter().position(|p| *p == (pool, role)).unwrap_or(0)
}

impl Record {
    /// The `args` of a pod's `main` container as the passes so far leave them.
    pub(crate) fn current_args(
        &self,
        main: &json::Obj,
        cpath: &Path,
        ctx: &Ctx,
        cfg: &MutateConfig,
        pool: Pool,
        role: Role,
    ) -> Result<Vec<String>, MutateError> {
        let current = match json::get_arr(main, "args", cpath)? {
            Some(a) => json::str_refs(a, &cpath.key("args"))?,
            None => Vec::new(),
        };
        let Some(p) = self.pods[pod_index(pool, role)] else {
            return Ok(current.into_iter().map(str::to_string).collect());
        };
        let items = generate(ctx, cfg, pool, role, p.upto);
        let user = current.get(p.start..p.end).unwrap_or_default();
        let additional = additional_args(main, cpath)?;
        let additional: Vec<&str> = additional.iter().map(String::as_str).collect();
        let (args, _) = merge_refs(&items, user, &additional);
        Ok(args.into_iter().map(str::to_string).collect())
    }

    /// Writes the arguments of every processed pod, their record entries and the annotation.
    pub(crate) fn finish(
        self,
        obj: &mut Value,
        ctx: &Ctx,
        cfg: &MutateConfig,
    ) -> Result<(), MutateError> {
        let Some(mut map) = self.map else {
            return Ok(());
        };
        if self.pods.iter().all(Option::is_none) {
            return Ok(());
        }
        for (k, (pool, role)) in PODS.into_iter().enumerate() {
            let Some(p) = self.pods[k] else {
                continue;
            };
            let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
                continue;
            };
            let (main, cpath) = podspec::main_mut(pod, podspec::pod_path(pool, role))?;
            let items = generate(ctx, cfg, pool, role, p.upto);
            let current_arr = json::get_arr(main, "args", &cpath)?;
            let current = match current_arr {
                Some(a) => json::str_refs(a, &cpath.key("args"))?,
                None => Vec::new(),
            };
            let user = current.get(p.start..p.end).unwrap_or_default();
            let additional = additional_args(main, &cpath)?;
            let additional: Vec<&str> = additional.iter().map(String::as_str).collect();
            let (args, prefix) = merge_refs(&items, user, &additional);
            // Only what changes is rebuilt; writing an equal value would be a no-op.
            let new_args = (current_arr.is_none() || args != current).then(|| str_array(&args));
            let key = pod_key(pool, role);
            let new_entry = (!entry_is(map.get(key), &prefix, &additional)).then(|| {
                let mut e = Map::new();
                e.insert("prefix".into(), str_array(&prefix));
                e.insert("suffix".into(), str_array(&additional));
                Value::Object(e)
            });
            if let Some(a) = new_args {
                main.insert("args".into(), a);
            }
            if let Some(e) = new_entry {
                map.insert(key.to_string(), e);
            }
        }
        let root = json::as_obj_mut(obj, &Path::ROOT)?;
        let meta = json::ensure_obj(root, "metadata", &Path::ROOT)?;
        let ann = json::ensure_obj(meta, "annotations", &Path::Lit("metadata"))?;
        let value = Value::Object(map);
        if let Some(Value::String(old)) = ann.get(GENERATED_ARGS_ANNOTATION)
            && serializes_to(&value, old)
        {
            return Ok(());
        }
        ann.insert(
            GENERATED_ARGS_ANNOTATION.into(),
            Value::String(value.to_string()),
        );
        Ok(())
    }
}

/// Whether `value.to_string()` is `text`, without building the string.
fn serializes_to(value: &Value, text: &str) -> bool {
    struct Cmp<'a> {
        rest: &'a [u8],
        same: bool,
    }
    impl std::io::Write for Cmp<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(buf) {
                Some(rest) if self.same => self.rest = rest,
                _ => self.same = false,
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut cmp = Cmp {
        rest: text.as_bytes(),
        same: true,
    };
    serde_json::to_writer(&mut cmp, value).is_ok() && cmp.same && cmp.rest.is_empty()
}

/// The `VLLM_ADDITIONAL_ARGS` tokens of a container: the value split into shell words with
/// quotes removed (`--kv_transfer_config '{"kv_connector": "NixlConnector"}'` is two
/// arguments), as the shell of KServe's presets splits it. An unterminated quote is an error.
fn additional_args(main: &json::Obj, cpath: &Path) -> Result<Vec<String>, MutateError> {
    let Some((i, v)) = podspec::env_value(main, cpath, "VLLM_ADDITIONAL_ARGS")? else {
        return Ok(Vec::new());
    };
    // The path as Kubernetes writes it (`...env[2].value`), so it can be a `Status` cause.
    split_additional(v).map_err(|e| MutateError::Invalid {
        path: format!("{cpath}.env[{i}].value"),
        message: format!("VLLM_ADDITIONAL_ARGS: {e}: the value is split into arguments like a shell command line; close the quote or escape it"),
    })
}

/// Splits a `VLLM_ADDITIONAL_ARGS` value into shell words (quotes removed).
pub fn split_additional(v: &str) -> Result<Vec<String>, shell_words::ParseError> {
    shell_words::split(v)
}

/// The vLLM pass of step `upto`: the args of every `main` container become the items of the
/// steps up to `upto` (written by [`Record::finish`]).
pub(crate) fn apply(obj: &mut Value, upto: Stage, record: &mut Record) -> Result<(), MutateError> {
    if record.map.is_none() {
        record.map = Some(read_record(obj)?);
    }
    let map = record.map.get_or_insert_with(Map::new);
    for (k, (pool, role)) in PODS.into_iter().enumerate() {
        let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
            continue;
        };
        let (main, cpath) = podspec::main_mut(pod, podspec::pod_path(pool, role))?;
        let cmd = podspec::command_refs(main, &cpath)?.unwrap_or_default();
        if podspec::is_shell(&cmd) && !podspec::is_rank_wrapper(&cmd) {
            continue;
        }
        if let Some(p) = &mut record.pods[k] {
            // `args` hold what an earlier pass wrote (all strings): only the env is read.
            additional_args(main, &cpath)?;
            p.upto = upto;
            continue;
        }
        let current_arr = json::get_arr(main, "args", &cpath)?;
        let current = match current_arr {
            Some(a) => json::str_refs(a, &cpath.key("args"))?,
            None => Vec::new(),
        };
        let entry = map.get(pod_key(pool, role));
        let old_prefix = tokens_of(entry, "prefix");
        let old_suffix = tokens_of(entry, "suffix");
        let (mut start, mut end) = (0, current.len());
        if !old_prefix.is_empty() && current.starts_with(&old_prefix) {
            start = old_prefix.len();
        }
        if !old_suffix.is_empty()
            && current
                .get(start..)
                .is_some_and(|rest| rest.ends_with(&old_suffix))
        {
            end -= old_suffix.len();
        }
        additional_args(main, &cpath)?;
        if current_arr.is_none() {
            // Keep the position the pass would have written `args` at.
            main.insert("args".into(), Value::Array(Vec::new()));
        }
        record.pods[k] = Some(Pending { upto, start, end });
    }
    Ok(())
}

fn str_array(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::String((*s).to_string())).collect())
}

/// Whether a record entry is exactly `{"prefix": prefix, "suffix": suffix}` (keys in that
/// order, so it serialises the same).
fn entry_is(entry: Option<&Value>, prefix: &[&str], suffix: &[&str]) -> bool {
    let Some(Value::Object(e)) = entry else {
        return false;
    };
    let same = |v: &Value, want: &[&str]| {
        v.as_array().is_some_and(|a| {
            a.len() == want.len() && a.iter().zip(want).all(|(x, w)| x.as_str() == Some(*w))
        })
    };
    let mut it = e.iter();
    matches!(
        (it.next(), it.next(), it.next()),
        (Some((k1, v1)), Some((k2, v2)), None)
            if k1 == "prefix" && k2 == "suffix" && same(v1, prefix) && same(v2, suffix)
    )
}

fn tokens_of<'a>(entry: Option<&'a Value>, key: &str) -> Vec<&'a str> {
    entry
        .and_then(|e| e.get(key))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The record of generated args; a malformed record counts as none.
fn read_record(obj: &Value) -> Result<Map<String, Value>, MutateError> {
    let root = json::as_obj(obj, &Path::ROOT)?;
    let Some(meta) = json::child(root, "metadata", &Path::ROOT)? else {
        return Ok(Map::new());
    };
    let Some(ann) = json::child(meta, "annotations", &Path::Lit("metadata"))? else {
        return Ok(Map::new());
    };
    let raw = match ann.get(GENERATED_ARGS_ANNOTATION) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().ok_or_else(|| {
            let at = Path::Lit("metadata.annotations");
            json::wrong(&at.sub(GENERATED_ARGS_ANNOTATION), json::STRING, v)
        })?),
    };
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
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kv_transfer_config_is_the_json_object() {
        let mut cfg = MutateConfig::default();
        for connector in ["NixlConnector", "a\"b\\c\u{1}é"] {
            cfg.kv_connector = connector.into();
            assert_eq!(
                kv_transfer_config(&cfg),
                json!({ "kv_connector": connector, "kv_role": "kv_both" }).to_string()
            );
        }
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
