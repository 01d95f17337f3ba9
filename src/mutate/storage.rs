//! Step 4: model and LoRA adapter storage of every vLLM pod (template, worker, prefill pods).
//!
//! | `model.uri`          | storage initializer on (default)                                   | off                                      |
//! |----------------------|--------------------------------------------------------------------|------------------------------------------|
//! | `pvc://claim/path`   | read-only PVC volume `kserve-pvc-source` at `/mnt/models`, `subPath: path` | same                             |
//! | `oci://image`        | image volume `model-image` (`pullPolicy: IfNotPresent`), read-only  | same                                     |
//! | `hf://org/model[:rev]` | init container `storage-initializer` (args `[uri, /mnt/models]`) into emptyDir `kserve-provision-location` | vLLM pulls `org/model` (`--revision rev`), `HF_HOME=/mnt/models` on emptyDir `kserve-provision-location` |
//! | `s3://`, `gs://`, `https://`, `http://` | storage initializer as for `hf://`                | vLLM is given the URI itself             |
//! | anything else        | untouched (validation rejects it)                                  |                                          |
//!
//! LoRA adapter `name` goes to `/mnt/lora/<name>` the same way, with its own volume
//! `lora-<name>` and init container `storage-initializer-lora-<name>` (name sanitised to a DNS
//! label); vLLM gets `--lora-modules name=/mnt/lora/<name>` (or the repo id / URI when vLLM pulls).
//! Existing volumes, mounts (by mount path), init containers and env vars of the same name win;
//! a pod whose `main` container already mounts another volume at the target path (e.g. the
//! user's own `/mnt/models`) gets nothing for that source. The model's volume names are
//! KServe's, so a pod that declares its own `kserve-provision-location` (say, a PVC to download
//! into) gets the storage initializer writing there, as with KServe.
//!
//! Init containers the webhook adds carry a `restricted`-ready securityContext
//! ([`podspec::restricted_security_context`]); one the user wrote keeps theirs.
//!
//! Objects stored by earlier llmisvc versions (model volumes `model-cache` / `model-volume`)
//! have their model mounts renamed to the current names on their next update, so the init
//! container and `main` keep sharing one volume; the old volume entries stay (unused).

use std::borrow::Cow;

use serde_json::{Value, json};

use super::{
    Adapter, Ctx, LORA_MOUNT_ROOT, MODEL_MOUNT_PATH, MutateConfig, MutateError, PODS, podspec,
};
use crate::model::json::{self, Obj};

/// A parsed storage URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Pvc {
        claim: String,
        sub_path: Option<String>,
    },
    Oci {
        image: String,
    },
    Hf {
        repo: String,
        revision: Option<String>,
    },
    Remote {
        uri: String,
    },
    Unknown,
}

pub(crate) fn parse(uri: &str) -> Source {
    if let Some(rest) = uri.strip_prefix("pvc://") {
        let (claim, sub) = match rest.split_once('/') {
            Some((c, p)) => (c, p.trim_matches('/')),
            None => (rest, ""),
        };
        if claim.is_empty() {
            return Source::Unknown;
        }
        return Source::Pvc {
            claim: claim.to_string(),
            sub_path: (!sub.is_empty()).then(|| sub.to_string()),
        };
    }
    if let Some(rest) = uri.strip_prefix("oci://") {
        return if rest.is_empty() {
            Source::Unknown
        } else {
            Source::Oci {
                image: rest.to_string(),
            }
        };
    }
    if let Some(rest) = uri.strip_prefix("hf://") {
        let (repo, rev) = match rest.rsplit_once(':') {
            Some((r, v)) if !v.is_empty() && !v.contains('/') => (r, Some(v.to_string())),
            _ => (rest, None),
        };
        if repo.is_empty() {
            return Source::Unknown;
        }
        return Source::Hf {
            repo: repo.trim_matches('/').to_string(),
            revision: rev,
        };
    }
    if ["s3://", "gs://", "https://", "http://"]
        .iter()
        .any(|p| uri.starts_with(p))
    {
        return Source::Remote {
            uri: uri.to_string(),
        };
    }
    Source::Unknown
}

/// Where vLLM finds a source mounted at `mount` (or what it pulls itself).
fn vllm_path(src: &Source, si: bool, mount: &str) -> Option<(String, Option<String>)> {
    match src {
        Source::Pvc { .. } | Source::Oci { .. } => Some((mount.to_string(), None)),
        Source::Hf { .. } | Source::Remote { .. } if si => Some((mount.to_string(), None)),
        Source::Hf { repo, revision } => Some((repo.clone(), revision.clone())),
        Source::Remote { uri } => Some((uri.clone(), None)),
        Source::Unknown => None,
    }
}

/// The model argument of vLLM and the revision to pass with `--revision`.
pub(crate) fn model_arg(ctx: &Ctx) -> Option<(String, Option<String>)> {
    let uri = ctx.model_uri.as_deref()?;
    vllm_path(&parse(uri), ctx.storage_initializer, MODEL_MOUNT_PATH)
}

/// The path (or repo id / URI) of a LoRA adapter for `--lora-modules`.
pub(crate) fn adapter_path(ctx: &Ctx, a: &Adapter) -> String {
    let mount = format!("{LORA_MOUNT_ROOT}/{}", a.name);
    vllm_path(&parse(&a.uri), ctx.storage_initializer, &mount)
        .map(|(p, _)| p)
        .unwrap_or_else(|| a.uri.clone())
}

/// A DNS-label-safe form of an adapter name (at most 38 characters).
pub(crate) fn sanitize(name: &str) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    let s: String = s.chars().take(38).collect();
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() { "adapter".into() } else { s }
}

pub(crate) fn apply(obj: &mut Value, ctx: &Ctx, cfg: &MutateConfig) -> Result<(), MutateError> {
    let model = ctx.model_uri.as_deref().map(|uri| (parse(uri), uri));
    let adapters: &[Adapter] = ctx.lora.as_ref().map_or(&[], |l| &l.adapters);
    // Sources, names and mount paths of the adapters, the same for every pod.
    let adapters: Vec<(&Adapter, Source, Names, String)> = adapters
        .iter()
        .map(|a| {
            let san = sanitize(&a.name);
            let names = Names {
                cache: format!("lora-{san}").into(),
                pvc: format!("lora-{san}").into(),
                image: format!("lora-{san}").into(),
                init: format!("storage-initializer-lora-{san}").into(),
            };
            let mount = format!("{LORA_MOUNT_ROOT}/{}", a.name);
            (a, parse(&a.uri), names, mount)
        })
        .collect();
    let model_names = Names {
        cache: STORAGE_VOLUME.into(),
        pvc: PVC_VOLUME.into(),
        image: "model-image".into(),
        init: "storage-initializer".into(),
    };
    for (pool, role) in PODS {
        let path = podspec::pod_path(pool, role);
        let Some(pod) = podspec::pod_mut(obj, pool, role)? else {
            continue;
        };
        if let Some((src, uri)) = &model {
            attach(
                pod,
                path,
                src,
                uri,
                MODEL_MOUNT_PATH,
                &model_names,
                ctx.storage_initializer,
                cfg,
            )?;
            if matches!(src, Source::Hf { .. }) && !ctx.storage_initializer {
                let (main, cpath) = podspec::main_mut(pod, path)?;
                podspec::add_env(
                    main,
                    &cpath,
                    "HF_HOME",
                    || json!({ "name": "HF_HOME", "value": MODEL_MOUNT_PATH }),
                )?;
            }
        }
        for (a, src, names, mount) in &adapters {
            attach(
                pod,
                path,
                src,
                &a.uri,
                mount,
                names,
                ctx.storage_initializer,
                cfg,
            )?;
        }
        if let Some(info) = ctx.pool(pool) {
            kv_cache_tiers(pod, path, &info.kv_secondary)?;
        }
    }
    // As KServe (tokenizer.go, `attachModelArtifacts` with `<mount>/base`): the standalone
    // tokenizer's `main` container reads the model's tokenizer files at /mnt/models/base (the
    // path its preset's `vllm launch render` is given); no LoRA adapters.
    if let Some((src, uri)) = &model
        && let Some(pod) = tokenizer_pod_mut(obj)?
    {
        attach(
            pod,
            TOKENIZER_POD_PATH,
            src,
            uri,
            TOKENIZER_MODEL_PATH,
            &model_names,
            ctx.storage_initializer,
            cfg,
        )?;
    }
    Ok(())
}

/// The standalone tokenizer's pod spec.
const TOKENIZER_POD_PATH: &str = "spec.router.scheduler.tokenizer.template";
/// Where the tokenizer finds the model (KServe's `path.Join(DefaultModelLocalMountPath, "base")`).
pub(crate) const TOKENIZER_MODEL_PATH: &str = "/mnt/models/base";

fn tokenizer_pod_mut(obj: &mut Value) -> Result<Option<&mut Obj>, MutateError> {
    let mut cur = podspec::spec_mut(obj)?;
    for (parent, key) in [
        ("spec", "router"),
        ("spec.router", "scheduler"),
        ("spec.router.scheduler", "tokenizer"),
        ("spec.router.scheduler.tokenizer", "template"),
    ] {
        match json::child_mut(cur, key, &json::Path::Lit(parent))? {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// The volumes of the secondary fileSystem tiers of `kvCacheOffloading`, as KServe's controller
/// attaches them (workload_kvcache.go): tier `i` is volume `kv-cache-secondary-<i>` mounted in
/// `main` at `/mnt/kv-cache-<i>` (the `root_dir` of the generated `--kv-transfer-config`):
/// `emptyDir` with `sizeLimit`, `pvc.spec` as an ephemeral volume claim template, `pvc.ref` as
/// the claim (with `subPath: path`). The emptyDir sizes are requested as `ephemeral-storage` on
/// `main` when it requests none. A volume or mount the pod already has wins.
fn kv_cache_tiers(pod: &mut Obj, path: &'static str, tiers: &[Value]) -> Result<(), MutateError> {
    let mut sizes: Vec<Value> = Vec::new();
    for (i, tier) in tiers.iter().enumerate() {
        let Some(fs) = tier.get("fileSystem").and_then(Value::as_object) else {
            continue;
        };
        let name = format!("kv-cache-secondary-{i}");
        let mount = format!("/mnt/kv-cache-{i}");
        let pvc = fs.get("pvc").and_then(Value::as_object);
        let (source, sub_path) = if let Some(size) = fs
            .get("emptyDir")
            .and_then(|e| e.get("size"))
            .filter(|v| !v.is_null())
        {
            sizes.push(size.clone());
            (json!({ "emptyDir": { "sizeLimit": size } }), None)
        } else if let Some(spec) = pvc.and_then(|p| p.get("spec")).filter(|v| v.is_object()) {
            (
                json!({ "ephemeral": { "volumeClaimTemplate": { "spec": spec } } }),
                None,
            )
        } else if let Some(r) = pvc.and_then(|p| p.get("ref")).filter(|v| v.is_object()) {
            let Some(claim) = r.get("name").and_then(Value::as_str) else {
                continue;
            };
            let sub = r
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty());
            (
                json!({ "persistentVolumeClaim": { "claimName": claim } }),
                sub,
            )
        } else {
            continue;
        };
        podspec::add_volume(pod, path, &name, || {
            let mut v = json!({ "name": name });
            if let (Value::Object(v), Value::Object(src)) = (&mut v, source) {
                v.extend(src);
            }
            v
        })?;
        let (main, cpath) = podspec::main_mut(pod, path)?;
        podspec::add_mount(main, &cpath, &mount, || {
            let mut m = json!({ "name": name, "mountPath": mount });
            if let Some(sp) = sub_path {
                m["subPath"] = json!(sp);
            }
            m
        })?;
    }
    let request = match sizes.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        // Several emptyDir tiers: their sum, in bytes (none when a size is not a quantity).
        many => many
            .iter()
            .map(|v| match v {
                Value::String(q) => crate::presets::template::quantity_value(q),
                Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .try_fold(0i64, |acc, b| b.map(|b| acc.saturating_add(b)))
            .map(|b| json!(b.to_string())),
    };
    if let Some(request) = request {
        let (main, cpath) = podspec::main_mut(pod, path)?;
        let res = json::ensure_obj(main, "resources", &cpath)?;
        let requests = json::ensure_obj(res, "requests", &cpath.key("resources"))?;
        json::set_default_with(requests, "ephemeral-storage", || request);
    }
    Ok(())
}

/// KServe's name of the volume the storage initializer downloads into.
pub(crate) const STORAGE_VOLUME: &str = "kserve-provision-location";
/// KServe's name of the volume of a `pvc://` model.
pub(crate) const PVC_VOLUME: &str = "kserve-pvc-source";
/// The model volumes' names before llmisvc used KServe's, and what they became.
const LEGACY_MODEL_VOLUMES: [(&str, &str); 2] = [
    ("model-cache", STORAGE_VOLUME),
    ("model-volume", PVC_VOLUME),
];

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// Renames the legacy model volume mounted at `mount` in `main` and in the init container
/// `init` to its current name (the current volume is then added as for any pod). The legacy
/// volume itself is left in place: presets may declare a volume of that name (the shipped ones
/// do, `model-cache` for the HF cache), so removing or renaming it would not survive the next
/// merge and mutation would stop being idempotent. Lenient: entries of the wrong shape are
/// skipped (later steps report them).
///
/// Only what an earlier version wrote is migrated: the legacy volume must have the source that
/// version gave it (`model-cache`: `emptyDir`; `model-volume`: a read-only
/// `persistentVolumeClaim`), and an init container `init` mounting it at `mount` must look
/// generated (no `command`: the storage initializer image's entrypoint). A storage initializer
/// the user wrote themselves (their command, or their own volume) keeps its mounts, and so does
/// `main`, so the two still share one volume.
fn migrate_legacy(pod: &mut Obj, mount: &str, init: &str) {
    for (old, new) in LEGACY_MODEL_VOLUMES {
        if !legacy_volume_generated(pod, old) || !legacy_init_generated(pod, init, old, mount) {
            continue;
        }
        for (key, owner) in [("containers", "main"), ("initContainers", init)] {
            let containers = pod.get_mut(key).and_then(Value::as_array_mut);
            for c in containers.into_iter().flatten() {
                if name_of(c) != Some(owner) {
                    continue;
                }
                let mounts = c.get_mut("volumeMounts").and_then(Value::as_array_mut);
                for m in mounts
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    if m.get("mountPath").and_then(Value::as_str) == Some(mount)
                        && m.get("name").and_then(Value::as_str) == Some(old)
                    {
                        m.insert("name".into(), new.into());
                    }
                }
            }
        }
    }
}

/// Whether the pod's volume `old` has the shape an earlier version generated (see
/// [`migrate_legacy`]); an absent volume counts (the preset declares it on the next merge).
fn legacy_volume_generated(pod: &Obj, old: &str) -> bool {
    let vols = pod.get("volumes").and_then(Value::as_array);
    let Some(v) = vols
        .into_iter()
        .flatten()
        .find(|v| name_of(v) == Some(old))
        .and_then(Value::as_object)
    else {
        return true;
    };
    let sources: Vec<&String> = v.keys().filter(|k| *k != "name").collect();
    match old {
        "model-cache" => sources == ["emptyDir"],
        _ => {
            sources == ["persistentVolumeClaim"]
                && v.get("persistentVolumeClaim")
                    .and_then(|p| p.get("readOnly"))
                    .and_then(Value::as_bool)
                    == Some(true)
        }
    }
}

/// Whether the init container `init` (when it mounts `old` at `mount`) looks generated.
fn legacy_init_generated(pod: &Obj, init: &str, old: &str, mount: &str) -> bool {
    let inits = pod.get("initContainers").and_then(Value::as_array);
    inits
        .into_iter()
        .flatten()
        .filter(|c| name_of(c) == Some(init))
        .filter(|c| {
            c.get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter().any(|m| {
                        name_of(m) == Some(old)
                            && m.get("mountPath").and_then(Value::as_str) == Some(mount)
                    })
                })
        })
        .all(|c| c.get("command").is_none_or(Value::is_null))
}

fn owned(volume: &str, names: &Names) -> bool {
    volume == names.cache || volume == names.pvc || volume == names.image
}

struct Names {
    cache: Cow<'static, str>,
    pvc: Cow<'static, str>,
    image: Cow<'static, str>,
    init: Cow<'static, str>,
}

/// Volume `name` (built by `volume` unless the pod has it) mounted in the `main` container at
/// `mount` (the mount built by `entry` unless one is there).
fn volume_and_mount(
    pod: &mut Obj,
    path: &'static str,
    name: &str,
    volume: impl FnOnce() -> Value,
    mount: &str,
    entry: impl FnOnce() -> Value,
) -> Result<(), MutateError> {
    podspec::add_volume(pod, path, name, volume)?;
    let (main, cpath) = podspec::main_mut(pod, path)?;
    podspec::add_mount(main, &cpath, mount, entry)
}

/// Top-level fields of the storage initializer init container built by [`attach`].
const INIT_FIELDS: [&str; 5] = ["name", "image", "args", "volumeMounts", "securityContext"];

#[allow(clippy::too_many_arguments)]
fn attach(
    pod: &mut Obj,
    path: &'static str,
    src: &Source,
    uri: &str,
    mount: &str,
    names: &Names,
    si: bool,
    cfg: &MutateConfig,
) -> Result<(), MutateError> {
    if mount == MODEL_MOUNT_PATH {
        migrate_legacy(pod, mount, &names.init);
    }
    // Something else already mounted at the target (by the user, or by an earlier run):
    // the pod owns that path, nothing to add.
    {
        let (main, cpath) = podspec::main_mut(pod, path)?;
        if podspec::mount_at(main, &cpath, mount)?.is_some_and(|name| !owned(name, names)) {
            return Ok(());
        }
    }
    let cache = || json!({ "name": names.cache, "emptyDir": {} });
    let cache_mount = || json!({ "name": names.cache, "mountPath": mount });
    match src {
        Source::Pvc { claim, sub_path } => volume_and_mount(
            pod,
            path,
            &names.pvc,
            || json!({ "name": names.pvc, "persistentVolumeClaim": { "claimName": claim, "readOnly": true } }),
            mount,
            || {
                let mut m = json!({ "name": names.pvc, "mountPath": mount, "readOnly": true });
                if let Some(sp) = sub_path {
                    m["subPath"] = json!(sp);
                }
                m
            },
        )?,
        Source::Oci { image } => volume_and_mount(
            pod,
            path,
            &names.image,
            || json!({ "name": names.image, "image": { "reference": image, "pullPolicy": "IfNotPresent" } }),
            mount,
            || json!({ "name": names.image, "mountPath": mount, "readOnly": true }),
        )?,
        Source::Hf { .. } | Source::Remote { .. } if si => {
            podspec::add_volume(pod, path, &names.cache, cache)?;
            podspec::upsert_named(
                pod,
                "initContainers",
                path,
                &names.init,
                &INIT_FIELDS,
                || {
                    json!({
                        "name": names.init,
                        "image": cfg.storage_initializer_image,
                        "args": [uri, mount],
                        "volumeMounts": [{ "name": names.cache, "mountPath": mount }],
                        "securityContext": podspec::restricted_security_context(),
                    })
                },
            )?;
            let (main, cpath) = podspec::main_mut(pod, path)?;
            podspec::add_mount(main, &cpath, mount, cache_mount)?;
        }
        Source::Hf { .. } if mount == MODEL_MOUNT_PATH => {
            volume_and_mount(pod, path, &names.cache, cache, mount, cache_mount)?
        }
        _ => {}
    }
    Ok(())
}
