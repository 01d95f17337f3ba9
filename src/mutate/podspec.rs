//! Pod spec helpers: finding pod specs and the `main` container, adding named list entries.
//!
//! Container convention: every pod spec that exists (`template`, `worker`, `prefill.template`,
//! `prefill.worker`) runs vLLM in a container named `main`; one is appended (with only a name)
//! when missing. A pool without a `template` gets nothing: the pod spec comes from presets and
//! the webhook does not invent an image.

use serde_json::{Value, json};

use super::json::{self, Obj};
use super::{MutateError, Pool, Role};

/// The spec of the service.
pub(crate) fn spec_mut(obj: &mut Value) -> Result<&mut Obj, MutateError> {
    let root = json::as_obj_mut(obj, "")?;
    json::ensure_obj(root, "spec", "spec")
}

/// The pool object: the spec itself for decode, `spec.prefill` for prefill.
pub(crate) fn pool_mut(obj: &mut Value, pool: Pool) -> Result<Option<&mut Obj>, MutateError> {
    let spec = spec_mut(obj)?;
    match pool {
        Pool::Decode => Ok(Some(spec)),
        Pool::Prefill => json::child_mut(spec, "prefill", "spec.prefill"),
    }
}

pub(crate) fn pool_path(pool: Pool) -> &'static str {
    match pool {
        Pool::Decode => "spec",
        Pool::Prefill => "spec.prefill",
    }
}

pub(crate) fn pod_path(pool: Pool, role: Role) -> String {
    let key = match role {
        Role::Template => "template",
        Role::Worker => "worker",
    };
    format!("{}.{key}", pool_path(pool))
}

/// A pod spec, when it exists.
pub(crate) fn pod_mut(
    obj: &mut Value,
    pool: Pool,
    role: Role,
) -> Result<Option<&mut Obj>, MutateError> {
    let path = pod_path(pool, role);
    let Some(p) = pool_mut(obj, pool)? else {
        return Ok(None);
    };
    let key = match role {
        Role::Template => "template",
        Role::Worker => "worker",
    };
    json::child_mut(p, key, &path)
}

/// Index of the entry named `name` in a list of named objects.
pub(crate) fn find_named(
    list: &[Value],
    name: &str,
    path: &str,
) -> Result<Option<usize>, MutateError> {
    for (i, v) in list.iter().enumerate() {
        let o = json::as_obj(v, &format!("{path}[{i}]"))?;
        if json::get_str(o, "name", &format!("{path}[{i}].name"))? == Some(name) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The `main` container of a pod spec (created when absent) and its path.
pub(crate) fn main_mut<'a>(
    pod: &'a mut Obj,
    pod_path: &str,
) -> Result<(&'a mut Obj, String), MutateError> {
    let cpath = format!("{pod_path}.containers");
    let list = json::ensure_arr(pod, "containers", &cpath)?;
    let idx = match find_named(list, "main", &cpath)? {
        Some(i) => i,
        None => {
            list.push(json!({ "name": "main" }));
            list.len() - 1
        }
    };
    let path = format!("{cpath}[{idx}]");
    let c = json::as_obj_mut(&mut list[idx], &path)?;
    Ok((c, path))
}

/// Appends `entry` (an object with a `name`) to the list `key` unless one with that name exists;
/// when it exists, fills its missing top-level fields from `entry`.
pub(crate) fn upsert_named(
    owner: &mut Obj,
    key: &str,
    path: &str,
    entry: Value,
) -> Result<(), MutateError> {
    let lpath = json::join(path, key);
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let list = json::ensure_arr(owner, key, &lpath)?;
    match find_named(list, &name, &lpath)? {
        None => list.push(entry),
        Some(i) => {
            let existing = json::as_obj_mut(&mut list[i], &format!("{lpath}[{i}]"))?;
            if let Value::Object(fields) = entry {
                for (k, v) in fields {
                    json::set_default(existing, &k, v);
                }
            }
        }
    }
    Ok(())
}

/// Adds a volume unless one with its name exists (the user's volume wins).
pub(crate) fn add_volume(pod: &mut Obj, pod_path: &str, volume: Value) -> Result<(), MutateError> {
    let lpath = format!("{pod_path}.volumes");
    let name = volume
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let list = json::ensure_arr(pod, "volumes", &lpath)?;
    if find_named(list, &name, &lpath)?.is_none() {
        list.push(volume);
    }
    Ok(())
}

/// Adds a volume mount unless something is already mounted at its `mountPath`.
pub(crate) fn add_mount(container: &mut Obj, cpath: &str, mount: Value) -> Result<(), MutateError> {
    let lpath = format!("{cpath}.volumeMounts");
    let target = mount
        .get("mountPath")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let list = json::ensure_arr(container, "volumeMounts", &lpath)?;
    for (i, m) in list.iter().enumerate() {
        let o = json::as_obj(m, &format!("{lpath}[{i}]"))?;
        if json::get_str(o, "mountPath", &format!("{lpath}[{i}].mountPath"))?
            == Some(target.as_str())
        {
            return Ok(());
        }
    }
    list.push(mount);
    Ok(())
}

/// The volume mounted at `mount_path` in a container, if any.
pub(crate) fn mount_at(
    container: &Obj,
    cpath: &str,
    mount_path: &str,
) -> Result<Option<String>, MutateError> {
    let lpath = format!("{cpath}.volumeMounts");
    let Some(list) = json::get_arr(container, "volumeMounts", &lpath)? else {
        return Ok(None);
    };
    for (i, m) in list.iter().enumerate() {
        let o = json::as_obj(m, &format!("{lpath}[{i}]"))?;
        if json::get_str(o, "mountPath", &format!("{lpath}[{i}].mountPath"))? == Some(mount_path) {
            let name = json::get_str(o, "name", &format!("{lpath}[{i}].name"))?;
            return Ok(Some(name.unwrap_or_default().to_string()));
        }
    }
    Ok(None)
}

/// Adds an env var unless one with its name exists.
pub(crate) fn add_env(container: &mut Obj, cpath: &str, env: Value) -> Result<(), MutateError> {
    let lpath = format!("{cpath}.env");
    let name = env
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let list = json::ensure_arr(container, "env", &lpath)?;
    if find_named(list, &name, &lpath)?.is_none() {
        list.push(env);
    }
    Ok(())
}

/// The literal value of env var `name`, when set with `value`.
pub(crate) fn env_value(
    container: &Obj,
    cpath: &str,
    name: &str,
) -> Result<Option<String>, MutateError> {
    let lpath = format!("{cpath}.env");
    let Some(list) = json::get_arr(container, "env", &lpath)? else {
        return Ok(None);
    };
    if let Some(i) = find_named(list, name, &lpath)? {
        let o = json::as_obj(&list[i], &format!("{lpath}[{i}]"))?;
        return Ok(json::get_str(o, "value", &format!("{lpath}[{i}].value"))?.map(str::to_string));
    }
    Ok(None)
}

/// Adds a container port unless the port number is already listed.
pub(crate) fn add_port(container: &mut Obj, cpath: &str, port: i64) -> Result<(), MutateError> {
    let lpath = format!("{cpath}.ports");
    let list = json::ensure_arr(container, "ports", &lpath)?;
    for (i, p) in list.iter().enumerate() {
        let o = json::as_obj(p, &format!("{lpath}[{i}]"))?;
        if json::get_int(o, "containerPort", &format!("{lpath}[{i}].containerPort"))? == Some(port)
        {
            return Ok(());
        }
    }
    list.push(json!({ "containerPort": port, "protocol": "TCP" }));
    Ok(())
}

/// The container's command, when it is a list of strings.
pub(crate) fn command(container: &Obj, cpath: &str) -> Result<Option<Vec<String>>, MutateError> {
    let p = format!("{cpath}.command");
    json::get_arr(container, "command", &p)?
        .map(|a| json::str_list(a, &p))
        .transpose()
}

/// Whether the command runs a shell script (`/bin/bash -c ...`).
pub(crate) fn is_shell(cmd: &[String]) -> bool {
    let Some(first) = cmd.first() else {
        return false;
    };
    let base = first.rsplit('/').next().unwrap_or(first);
    matches!(base, "sh" | "bash" | "dash" | "zsh" | "ash") && cmd.iter().any(|a| a == "-c")
}
