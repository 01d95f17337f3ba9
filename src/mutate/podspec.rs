//! Pod spec helpers: finding pod specs and the `main` container, adding named list entries.
//!
//! Container convention: every pod spec that exists (`template`, `worker`, `prefill.template`,
//! `prefill.worker`) runs vLLM in a container named `main`; one is appended (with only a name)
//! when missing. A pool without a `template` gets nothing: the pod spec comes from presets and
//! the webhook does not invent an image.

use serde_json::{Value, json};

use super::{MutateError, Pool, Role};
use crate::model::json::{self, Obj, Path};

const SPEC: Path<'static> = Path::Lit("spec");

/// The spec of the service.
pub(crate) fn spec_mut(obj: &mut Value) -> Result<&mut Obj, MutateError> {
    let root = json::as_obj_mut(obj, &Path::ROOT)?;
    Ok(json::ensure_obj(root, "spec", &Path::ROOT)?)
}

/// The pool object: the spec itself for decode, `spec.prefill` for prefill.
pub(crate) fn pool_mut(obj: &mut Value, pool: Pool) -> Result<Option<&mut Obj>, MutateError> {
    let spec = spec_mut(obj)?;
    match pool {
        Pool::Decode => Ok(Some(spec)),
        Pool::Prefill => Ok(json::child_mut(spec, "prefill", &SPEC)?),
    }
}

pub(crate) fn pool_path(pool: Pool) -> &'static str {
    match pool {
        Pool::Decode => "spec",
        Pool::Prefill => "spec.prefill",
    }
}

/// `spec.template`, `spec.worker`, `spec.prefill.template` or `spec.prefill.worker`.
pub(crate) fn pod_path(pool: Pool, role: Role) -> &'static str {
    match (pool, role) {
        (Pool::Decode, Role::Template) => "spec.template",
        (Pool::Decode, Role::Worker) => "spec.worker",
        (Pool::Prefill, Role::Template) => "spec.prefill.template",
        (Pool::Prefill, Role::Worker) => "spec.prefill.worker",
    }
}

/// A pod spec, when it exists.
pub(crate) fn pod_mut(
    obj: &mut Value,
    pool: Pool,
    role: Role,
) -> Result<Option<&mut Obj>, MutateError> {
    let Some(p) = pool_mut(obj, pool)? else {
        return Ok(None);
    };
    let key = match role {
        Role::Template => "template",
        Role::Worker => "worker",
    };
    Ok(json::child_mut(p, key, &Path::Lit(pool_path(pool)))?)
}

/// The securityContext of every container the webhook adds (storage initializers, LoRA
/// initializers, the routing sidecar): ready for the `restricted` Pod Security Standard. The
/// images the webhook adds by default run as a non-root user (KServe's storage initializer
/// `USER 1000`; KServe's presets set `runAsNonRoot: true` on the llm-d routing sidecar), so
/// `runAsNonRoot` is set too.
pub(crate) fn restricted_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "runAsNonRoot": true,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// Index of the entry named `name` in a list of named objects; `path` is the list's path.
pub(crate) fn find_named(
    list: &[Value],
    name: &str,
    path: &Path,
) -> Result<Option<usize>, MutateError> {
    for (i, v) in list.iter().enumerate() {
        let o = json::as_obj(v, &path.idx(i))?;
        if json::get_str(o, "name", &path.idx(i))? == Some(name) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The `main` container of a pod spec (created when absent) and its path.
pub(crate) fn main_mut<'a>(
    pod: &'a mut Obj,
    pod_path: &'static str,
) -> Result<(&'a mut Obj, Path<'static>), MutateError> {
    named_mut(pod, pod_path, "containers", "main")
}

/// The entry `name` of the list `key` of a pod spec (appended with only a name when absent)
/// and its path.
pub(crate) fn named_mut<'a>(
    pod: &'a mut Obj,
    pod_path: &'static str,
    key: &'static str,
    name: &str,
) -> Result<(&'a mut Obj, Path<'static>), MutateError> {
    let at = Path::Lit(pod_path);
    let list = json::ensure_arr(pod, key, &at)?;
    let idx = match find_named(list, name, &at.key(key))? {
        Some(i) => i,
        None => {
            list.push(json!({ "name": name }));
            list.len() - 1
        }
    };
    let path = Path::Item(pod_path, key, idx);
    let Some(entry) = list.get_mut(idx) else {
        return Err(json::wrong(&path, json::OBJECT, &Value::Null).into());
    };
    let c = json::as_obj_mut(entry, &path)?;
    Ok((c, path))
}

/// Appends `entry()` (an object with a `name`) to the list `key` unless one named `name`
/// exists; when it exists, fills its missing top-level fields from `entry()`. `fields` are the
/// top-level keys of `entry()`: when the existing entry has all of them, `entry` is not built.
pub(crate) fn upsert_named(
    owner: &mut Obj,
    key: &str,
    path: &str,
    name: &str,
    fields: &[&str],
    entry: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    let at = Path::Lit(path);
    let lpath = at.key(key);
    let list = json::ensure_arr(owner, key, &at)?;
    match find_named(list, name, &lpath)? {
        None => list.push(entry()),
        Some(i) => {
            let ipath = lpath.idx(i);
            let Some(existing) = list.get_mut(i) else {
                return Err(json::wrong(&ipath, json::OBJECT, &Value::Null).into());
            };
            let existing = json::as_obj_mut(existing, &ipath)?;
            if fields.iter().all(|f| json::has(existing, f)) {
                return Ok(());
            }
            if let Value::Object(fields) = entry() {
                for (k, v) in fields {
                    json::set_default(existing, &k, v);
                }
            }
        }
    }
    Ok(())
}

/// Adds a volume (`volume()`, named `name`) unless one with that name exists (the user's
/// volume wins).
pub(crate) fn add_volume(
    pod: &mut Obj,
    pod_path: &str,
    name: &str,
    volume: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    add_named(pod, "volumes", &Path::Lit(pod_path), name, volume)
}

/// Appends `entry()` to the list `key` of `owner` (path `at`) unless an entry named `name`
/// exists.
fn add_named(
    owner: &mut Obj,
    key: &str,
    at: &Path,
    name: &str,
    entry: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    let list = json::ensure_arr(owner, key, at)?;
    if find_named(list, name, &at.key(key))?.is_none() {
        list.push(entry());
    }
    Ok(())
}

/// Adds a volume mount (`mount()`, at `mount_path`) unless something is already mounted there.
pub(crate) fn add_mount(
    container: &mut Obj,
    cpath: &Path,
    mount_path: &str,
    mount: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    let list = json::ensure_arr(container, "volumeMounts", cpath)?;
    if find_mount(list, &cpath.key("volumeMounts"), mount_path)?.is_none() {
        list.push(mount());
    }
    Ok(())
}

/// The index and entry of the mount at `mount_path` in the list `mounts` (path `lpath`).
fn find_mount<'a>(
    mounts: &'a [Value],
    lpath: &Path,
    mount_path: &str,
) -> Result<Option<(usize, &'a Obj)>, MutateError> {
    for (i, m) in mounts.iter().enumerate() {
        let ipath = lpath.idx(i);
        let o = json::as_obj(m, &ipath)?;
        if json::get_str(o, "mountPath", &ipath)? == Some(mount_path) {
            return Ok(Some((i, o)));
        }
    }
    Ok(None)
}

/// The volume mounted at `mount_path` in a container, if any (`""` when the mount is unnamed).
pub(crate) fn mount_at<'a>(
    container: &'a Obj,
    cpath: &Path,
    mount_path: &str,
) -> Result<Option<&'a str>, MutateError> {
    let Some(list) = json::get_arr(container, "volumeMounts", cpath)? else {
        return Ok(None);
    };
    let lpath = cpath.key("volumeMounts");
    let Some((i, o)) = find_mount(list, &lpath, mount_path)? else {
        return Ok(None);
    };
    Ok(Some(
        json::get_str(o, "name", &lpath.idx(i))?.unwrap_or_default(),
    ))
}

/// Adds an env var (`env()`, named `name`) unless one with that name exists.
pub(crate) fn add_env(
    container: &mut Obj,
    cpath: &Path,
    name: &str,
    env: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    add_named(container, "env", cpath, name, env)
}

/// The literal value of env var `name`, when set with `value`, with the entry's index in `env`.
pub(crate) fn env_value<'a>(
    container: &'a Obj,
    cpath: &Path,
    name: &str,
) -> Result<Option<(usize, &'a str)>, MutateError> {
    let Some(list) = json::get_arr(container, "env", cpath)? else {
        return Ok(None);
    };
    let lpath = cpath.key("env");
    if let Some(i) = find_named(list, name, &lpath)? {
        let ipath = lpath.idx(i);
        let Some(entry) = list.get(i) else {
            return Ok(None);
        };
        let o = json::as_obj(entry, &ipath)?;
        return Ok(json::get_str(o, "value", &ipath)?.map(|v| (i, v)));
    }
    Ok(None)
}

/// Adds a container port unless the port number is already listed.
pub(crate) fn add_port(container: &mut Obj, cpath: &Path, port: i64) -> Result<(), MutateError> {
    let list = json::ensure_arr(container, "ports", cpath)?;
    let lpath = cpath.key("ports");
    for (i, p) in list.iter().enumerate() {
        let o = json::as_obj(p, &lpath.idx(i))?;
        if json::get_int(o, "containerPort", &lpath.idx(i))? == Some(port) {
            return Ok(());
        }
    }
    list.push(json!({ "containerPort": port, "protocol": "TCP" }));
    Ok(())
}

/// The container's command, when it is a list of strings.
pub(crate) fn command(container: &Obj, cpath: &Path) -> Result<Option<Vec<String>>, MutateError> {
    json::get_arr(container, "command", cpath)?
        .map(|a| json::str_list(a, &cpath.key("command")))
        .transpose()
        .map_err(Into::into)
}

/// The container's command, borrowed, when it is a list of strings.
pub(crate) fn command_refs<'a>(
    container: &'a Obj,
    cpath: &Path,
) -> Result<Option<Vec<&'a str>>, MutateError> {
    json::get_arr(container, "command", cpath)?
        .map(|a| json::str_refs(a, &cpath.key("command")))
        .transpose()
        .map_err(Into::into)
}

/// `$0` of the start-rank wrapper.
pub const RANK_WRAPPER_MARKER: &str = "llmisvc-dp-rank";

/// Whether a command is the start-rank wrapper.
pub(crate) fn is_rank_wrapper<S: AsRef<str>>(cmd: &[S]) -> bool {
    cmd.len() >= 4
        && cmd[0].as_ref() == "/bin/sh"
        && cmd[1].as_ref() == "-c"
        && cmd[3].as_ref() == RANK_WRAPPER_MARKER
}

/// Whether the command runs a shell script (`/bin/bash -c ...`).
pub(crate) fn is_shell<S: AsRef<str>>(cmd: &[S]) -> bool {
    let Some(first) = cmd.first() else {
        return false;
    };
    let first = first.as_ref();
    let base = first.rsplit('/').next().unwrap_or(first);
    matches!(base, "sh" | "bash" | "dash" | "zsh" | "ash") && cmd.iter().any(|a| a.as_ref() == "-c")
}
