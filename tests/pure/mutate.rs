//! Mutation steps: golden files, table tests and a property test.
//!
//! Golden files: `tests/golden/NAME.yaml` is expanded with the default `MutateConfig` and
//! compared with `tests/golden/NAME.out.yaml`. Regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test pure mutate::`.

use crate::support;
use std::path::Path;

use llmisvc::mutate::{MutateConfig, Stage, expand, expand_until};
use proptest::prelude::*;
use serde_json::{Value, json};

fn cfg() -> MutateConfig {
    MutateConfig::default()
}

fn yaml(s: &str) -> Value {
    serde_norway::from_str(s).expect("valid yaml")
}

#[test]
fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut goldens =
        support::golden::Goldens::updatable("UPDATE_GOLDEN=1 cargo test --test pure mutate::");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name()?.to_str()?.to_string();
            (n.ends_with(".yaml") && !n.ends_with(".out.yaml")).then_some(p)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for input in names {
        let obj = yaml(&std::fs::read_to_string(&input).unwrap());
        let out = expand(&obj, &cfg()).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        assert_eq!(
            expand(&out, &cfg()).unwrap(),
            out,
            "{}: not idempotent",
            input.display()
        );
        let rendered = serde_norway::to_string(&out).unwrap();
        goldens.check(&input.with_extension("out.yaml"), &rendered);
    }
    goldens.finish();
}

#[test]
fn examples_expand() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in [
        "minimal.yaml",
        "multinode-data-parallel.yaml",
        "prefill-decode-multinode.yaml",
    ] {
        let obj = yaml(&std::fs::read_to_string(dir.join(name)).unwrap());
        let out = expand(&obj, &cfg()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(expand(&out, &cfg()).unwrap(), out, "{name}");
    }
}

fn main_of<'a>(obj: &'a Value, pod: &str) -> &'a Value {
    let pod = obj.pointer(pod).unwrap();
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap()
}

fn args(obj: &Value, pod: &str) -> Vec<String> {
    main_of(obj, pod)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn base(extra_spec: Value) -> Value {
    let mut obj = json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": { "name": "llm", "namespace": "ns" },
        "spec": {
            "model": { "uri": "hf://org/model" },
            "template": { "containers": [ { "name": "main", "image": "vllm/vllm-openai:v0.11.0", "command": ["vllm", "serve"] } ] }
        }
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        obj["spec"][k] = v.clone();
    }
    obj
}

#[test]
fn config_kind_unchanged_and_other_kinds_rejected() {
    let mut obj = base(json!({}));
    obj["kind"] = json!("LLMInferenceServiceConfig");
    assert_eq!(expand(&obj, &cfg()).unwrap(), obj);
    obj["kind"] = json!("Pod");
    assert!(expand(&obj, &cfg()).is_err());
}

#[test]
fn wrong_types_give_paths() {
    let cases = [
        (
            json!({ "parallelism": { "tensor": "two" } }),
            "spec.parallelism.tensor",
        ),
        (
            json!({ "template": { "containers": {} } }),
            "spec.template.containers",
        ),
        (
            json!({ "router": { "gateway": [] } }),
            "spec.router.gateway",
        ),
        (
            json!({ "template": { "containers": [ { "name": "main", "args": [1] } ] } }),
            "spec.template.containers[0].args[0]",
        ),
    ];
    for (spec, path) in cases {
        let err = expand(&base(spec), &cfg()).unwrap_err().to_string();
        assert!(err.contains(path), "{err} should name {path}");
    }
}

#[test]
fn defaults() {
    let out = expand_until(
        &base(json!({ "parallelism": { "data": 4, "dataLocal": 2 } })),
        &cfg(),
        Stage::Defaults,
    )
    .unwrap();
    assert_eq!(out["spec"]["model"]["name"], "llm");
    assert_eq!(out["spec"]["replicas"], 1);
    assert_eq!(out["spec"]["parallelism"]["dataRPCPort"], 5555);
    assert_eq!(out["spec"]["storageInitializer"]["enabled"], true);
    let out = expand(&base(json!({ "scaling": { "maxReplicas": 3 } })), &cfg()).unwrap();
    assert!(out["spec"].get("replicas").is_none());
}

#[test]
fn gpu_table() {
    // (parallelism, user limits, expected injected gpu, expected tensor)
    let cases = [
        (json!(null), json!(null), None, None),
        (json!({ "tensor": 4 }), json!(null), Some("4"), Some(4)),
        (
            json!({ "tensor": 2, "data": 4, "dataLocal": 2 }),
            json!(null),
            Some("4"),
            Some(2),
        ),
        (json!({ "data": 2 }), json!(null), Some("2"), Some(1)),
        (json!(null), json!({ "nvidia.com/gpu": "2" }), None, Some(2)),
        (
            json!({ "data": 4, "dataLocal": 2 }),
            json!({ "nvidia.com/gpu": 4 }),
            None,
            Some(2),
        ),
        (
            json!({ "tensor": 8 }),
            json!({ "amd.com/gpu": "2" }),
            None,
            Some(8),
        ),
    ];
    for (par, limits, gpu, tensor) in cases {
        let mut spec = json!({});
        if !par.is_null() {
            spec["parallelism"] = par.clone();
        }
        let mut obj = base(spec);
        if !limits.is_null() {
            obj["spec"]["template"]["containers"][0]["resources"] =
                json!({ "limits": limits.clone() });
        }
        let out = expand(&obj, &cfg()).unwrap();
        let main = main_of(&out, "/spec/template");
        match gpu {
            Some(g) => {
                assert_eq!(
                    main["resources"]["limits"]["nvidia.com/gpu"], g,
                    "{par} {limits}"
                );
                assert_eq!(main["resources"]["requests"]["nvidia.com/gpu"], g);
            }
            None if limits.is_null() => assert!(main.get("resources").is_none(), "{par}"),
            None => assert_eq!(main["resources"]["limits"], limits, "user limits kept"),
        }
        assert_eq!(
            out["spec"]["parallelism"]["tensor"].as_i64(),
            tensor,
            "{par} {limits}"
        );
    }
}

/// Issue 18 (3): accelerators are recognised by pattern (`nvidia.com/mig-*`, `gpu.intel.com/*`)
/// and configured extra names: a container with one gets no `nvidia.com/gpu` added, and its
/// count sets the tensor default.
#[test]
fn accelerators_by_pattern_are_not_doubled() {
    for res in [
        "nvidia.com/mig-1g.10gb",
        "nvidia.com/gpu",
        "amd.com/gpu",
        "gpu.intel.com/i915",
        "gpu.intel.com/xe",
    ] {
        let mut obj = base(json!({ "parallelism": { "tensor": 1 } }));
        obj["spec"]["template"]["containers"][0]["resources"] = json!({ "limits": { res: 1 } });
        let out = expand(&obj, &cfg()).unwrap();
        let limits = &main_of(&out, "/spec/template")["resources"]["limits"];
        assert_eq!(limits, &json!({ res: 1 }), "{res}");
        assert!(
            main_of(&out, "/spec/template")["resources"]
                .get("requests")
                .is_none()
        );
        // Without parallelism, the count is the tensor default.
        let mut obj = base(json!({}));
        obj["spec"]["template"]["containers"][0]["resources"] = json!({ "limits": { res: "2" } });
        let out = expand(&obj, &cfg()).unwrap();
        assert_eq!(out["spec"]["parallelism"]["tensor"], 2, "{res}");
    }
    // Not accelerators: the GPU is injected.
    for res in ["nvidia.com/gpu-x", "nvidia.com/mig-", "example.com/npu"] {
        let mut obj = base(json!({ "parallelism": { "tensor": 1 } }));
        obj["spec"]["template"]["containers"][0]["resources"] = json!({ "limits": { res: 1 } });
        let out = expand(&obj, &cfg()).unwrap();
        assert_eq!(
            main_of(&out, "/spec/template")["resources"]["limits"]["nvidia.com/gpu"],
            "1",
            "{res}"
        );
    }
    // A configured extra name counts.
    let mut c = cfg();
    c.extra_accelerators = vec!["example.com/npu".into()];
    let mut obj = base(json!({ "parallelism": { "tensor": 1 } }));
    obj["spec"]["template"]["containers"][0]["resources"] =
        json!({ "limits": { "example.com/npu": 1 } });
    let out = expand(&obj, &c).unwrap();
    assert_eq!(
        main_of(&out, "/spec/template")["resources"]["limits"],
        json!({ "example.com/npu": 1 })
    );
    // One definition: the validator counts with the same function.
    use llmisvc::mutate::{ACCELERATOR_PATTERNS, is_accelerator};
    assert_eq!(
        llmisvc::validate::DEFAULT_ACCELERATORS,
        ACCELERATOR_PATTERNS
    );
    assert!(is_accelerator(
        "nvidia.com/mig-3g.40gb",
        ACCELERATOR_PATTERNS.iter().copied()
    ));
    assert!(!is_accelerator("cpu", ACCELERATOR_PATTERNS.iter().copied()));
}

#[test]
fn user_args_kept_and_override_generated() {
    let mut obj = base(json!({ "parallelism": { "tensor": 2 } }));
    obj["spec"]["template"]["containers"][0]["args"] = json!([
        "--max-model-len",
        "4096",
        "--tensor-parallel-size=4",
        "--port",
        "9000"
    ]);
    obj["spec"]["template"]["containers"][0]["env"] = json!([{ "name": "VLLM_ADDITIONAL_ARGS", "value": "--enforce-eager  --served-model-name alias" }]);
    let out = expand(&obj, &cfg()).unwrap();
    let a = args(&out, "/spec/template");
    assert_eq!(
        a,
        [
            "/mnt/models",
            "--max-model-len",
            "4096",
            "--tensor-parallel-size=4",
            "--port",
            "9000",
            "--enforce-eager",
            "--served-model-name",
            "alias"
        ]
    );
    // Re-running (API server reinvocation) changes nothing.
    assert_eq!(expand(&out, &cfg()).unwrap(), out);
    // A spec change on update regenerates the generated part only.
    let mut upd = out.clone();
    upd["spec"]["model"]["uri"] = json!("pvc://claim/models/llama");
    let out2 = expand(&upd, &cfg()).unwrap();
    let a2 = args(&out2, "/spec/template");
    assert_eq!(a2[0], "/mnt/models");
    assert_eq!(a2.iter().filter(|x| *x == "--max-model-len").count(), 1);
    assert_eq!(a2.iter().filter(|x| *x == "--enforce-eager").count(), 1);
}

#[test]
fn rank_wrapper_follows_spec() {
    let w = json!({ "containers": [ { "name": "main", "image": "vllm", "command": ["vllm", "serve"] } ] });
    let obj = base(json!({ "parallelism": { "data": 4, "dataLocal": 2 }, "worker": w }));
    let out = expand(&obj, &cfg()).unwrap();
    let cmd = &main_of(&out, "/spec/worker")["command"];
    assert_eq!(cmd[3], "llmisvc-dp-rank");
    assert!(cmd[2].as_str().unwrap().contains("* 2"));
    assert_eq!(cmd[4], "vllm");
    // dataLocal changes to 1 on update: the wrapper goes, the original command comes back.
    let mut upd = out.clone();
    upd["spec"]["parallelism"]["dataLocal"] = json!(1);
    let out2 = expand(&upd, &cfg()).unwrap();
    assert_eq!(
        main_of(&out2, "/spec/worker")["command"],
        json!(["vllm", "serve"])
    );
    let a = args(&out2, "/spec/worker");
    let i = a
        .iter()
        .position(|x| x == "--data-parallel-start-rank")
        .unwrap();
    assert_eq!(a[i + 1], "$(LWS_WORKER_INDEX)");
    assert_eq!(
        a.iter()
            .filter(|x| *x == "--data-parallel-start-rank")
            .count(),
        1
    );
}

#[test]
fn shell_command_left_alone() {
    let mut obj = base(json!({ "parallelism": { "tensor": 2 } }));
    obj["spec"]["template"]["containers"][0]["command"] =
        json!(["/bin/bash", "-c", "exec vllm serve /mnt/models $@", "--"]);
    obj["spec"]["template"]["containers"][0]["args"] = json!(["--foo"]);
    let out = expand(&obj, &cfg()).unwrap();
    assert_eq!(main_of(&out, "/spec/template")["args"], json!(["--foo"]));
}

#[test]
fn storage_schemes() {
    let cases = [
        ("pvc://claim/sub/dir", "kserve-pvc-source", "/mnt/models"),
        ("oci://registry/model:1", "model-image", "/mnt/models"),
        ("hf://org/model", "kserve-provision-location", "/mnt/models"),
        (
            "s3://bucket/model",
            "kserve-provision-location",
            "/mnt/models",
        ),
        (
            "gs://bucket/model",
            "kserve-provision-location",
            "/mnt/models",
        ),
        (
            "https://host/model.tgz",
            "kserve-provision-location",
            "/mnt/models",
        ),
    ];
    for (uri, vol, model_arg) in cases {
        let mut obj = base(json!({}));
        obj["spec"]["model"]["uri"] = json!(uri);
        let out = expand(&obj, &cfg()).unwrap();
        let vols = out["spec"]["template"]["volumes"].as_array().unwrap();
        assert!(vols.iter().any(|v| v["name"] == vol), "{uri}");
        assert_eq!(args(&out, "/spec/template")[0], model_arg, "{uri}");
        let init = out["spec"]["template"].get("initContainers");
        let has_si = init.is_some_and(|i| {
            i.as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "storage-initializer")
        });
        assert_eq!(has_si, vol == "kserve-provision-location", "{uri}");
    }
    // pvc sub-path
    let mut obj = base(json!({}));
    obj["spec"]["model"]["uri"] = json!("pvc://claim/sub/dir");
    let out = expand(&obj, &cfg()).unwrap();
    let m = &main_of(&out, "/spec/template")["volumeMounts"][0];
    assert_eq!(m["subPath"], "sub/dir");
    assert_eq!(m["readOnly"], true);
    // hf without the storage initializer: vLLM pulls it.
    let obj = base(
        json!({ "model": { "uri": "hf://org/model:rev1" }, "storageInitializer": { "enabled": false } }),
    );
    let out = expand(&obj, &cfg()).unwrap();
    let a = args(&out, "/spec/template");
    assert_eq!(&a[..3], ["org/model", "--revision", "rev1"]);
    assert!(out["spec"]["template"].get("initContainers").is_none());
    // Unknown scheme: untouched.
    let obj = base(json!({ "model": { "uri": "ftp://x/y" } }));
    let out = expand(&obj, &cfg()).unwrap();
    assert!(out["spec"]["template"].get("volumes").is_none());
}

#[test]
fn prefill_decode_roles_match() {
    let prefill = json!({ "template": { "containers": [ { "name": "main", "image": "vllm", "command": ["vllm", "serve"] } ] } });
    let out = expand(&base(json!({ "prefill": prefill })), &cfg()).unwrap();
    let d = args(&out, "/spec/template");
    let p = args(&out, "/spec/prefill/template");
    let kv =
        |a: &[String]| a[a.iter().position(|x| x == "--kv-transfer-config").unwrap() + 1].clone();
    assert_eq!(kv(&d), kv(&p));
    assert!(kv(&d).contains("kv_both"));
    let port = |a: &[String]| a[a.iter().position(|x| x == "--port").unwrap() + 1].clone();
    assert_eq!(port(&d), "8001");
    assert_eq!(port(&p), "8000");
    let side = &out["spec"]["template"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "llm-d-routing-sidecar")
        .unwrap()
        .clone();
    assert_eq!(side["restartPolicy"], "Always");
}

/// Issue 18 (2): `kvCacheOffloading: {cpu: 10Gi}` reaches vLLM as KServe's `kvTransferConfig`
/// generates it (OffloadingConnector, kv_both, cpu_bytes_to_use in bytes), on the prefill pool
/// from `prefill.kvCacheOffloading`, combined with the P/D connector through a MultiConnector.
#[test]
fn kv_cache_offloading_reaches_vllm() {
    let kv = |a: &[String]| -> Value {
        let i = a
            .iter()
            .position(|x| x == "--kv-transfer-config")
            .expect("flag");
        assert_eq!(
            a.iter().filter(|x| *x == "--kv-transfer-config").count(),
            1,
            "{a:?}"
        );
        serde_json::from_str(&a[i + 1]).unwrap()
    };
    let offload = json!({
        "kv_connector": "OffloadingConnector",
        "kv_connector_extra_config": {"cpu_bytes_to_use": 10737418240_i64, "spec_name": "TieringOffloadingSpec"},
        "kv_role": "kv_both"
    });
    // Single node.
    let out = expand(
        &base(json!({ "kvCacheOffloading": { "cpu": "10Gi" } })),
        &cfg(),
    )
    .unwrap();
    assert_eq!(kv(&args(&out, "/spec/template")), offload);
    assert_eq!(expand(&out, &cfg()).unwrap(), out);
    // Eviction policy as KServe writes it.
    let out = expand(
        &base(json!({ "kvCacheOffloading": { "cpu": "1Gi", "evictionPolicy": "arc" } })),
        &cfg(),
    )
    .unwrap();
    assert_eq!(
        kv(&args(&out, "/spec/template"))["kv_connector_extra_config"]["eviction_policy"],
        "arc"
    );
    // Prefill/decode: each pool its own offloading, NIXL kept through a MultiConnector.
    let prefill = json!({
        "kvCacheOffloading": { "cpu": "10Gi" },
        "template": { "containers": [ { "name": "main", "image": "vllm", "command": ["vllm", "serve"] } ] }
    });
    let out = expand(
        &base(json!({ "prefill": prefill, "kvCacheOffloading": { "cpu": "10Gi" } })),
        &cfg(),
    )
    .unwrap();
    for pod in ["/spec/template", "/spec/prefill/template"] {
        let k = kv(&args(&out, pod));
        assert_eq!(k["kv_connector"], "MultiConnector", "{pod}");
        assert_eq!(k["kv_role"], "kv_both", "{pod}");
        let c = &k["kv_connector_extra_config"]["connectors"];
        assert_eq!(c[0]["kv_connector"], "NixlConnector", "{pod}");
        assert_eq!(c[1], offload, "{pod}");
    }
    assert_eq!(expand(&out, &cfg()).unwrap(), out);
    // Offloading on decode only: prefill keeps the plain NIXL config.
    let prefill = json!({ "template": { "containers": [ { "name": "main", "image": "vllm", "command": ["vllm", "serve"] } ] } });
    let out = expand(
        &base(json!({ "prefill": prefill, "kvCacheOffloading": { "cpu": "10Gi" } })),
        &cfg(),
    )
    .unwrap();
    assert_eq!(
        kv(&args(&out, "/spec/prefill/template"))["kv_connector"],
        "NixlConnector"
    );
    // A user --kv-transfer-config wins whole (KServe skips its own then).
    let mut obj = base(json!({ "kvCacheOffloading": { "cpu": "10Gi" } }));
    obj["spec"]["template"]["containers"][0]["env"] = json!([{ "name": "VLLM_ADDITIONAL_ARGS",
        "value": "--kv_transfer_config '{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_consumer\"}'" }]);
    let out = expand(&obj, &cfg()).unwrap();
    let a = args(&out, "/spec/template");
    assert!(!a.iter().any(|x| x == "--kv-transfer-config"), "{a:?}");
    assert_eq!(
        a.last().unwrap(),
        r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#
    );
    // A bad quantity is an error naming the field, not a panic.
    let err = expand(
        &base(json!({ "kvCacheOffloading": { "cpu": "ten" } })),
        &cfg(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("kvCacheOffloading.cpu"), "{err}");
}

/// Issue 18 (2): the secondary fileSystem tiers of `kvCacheOffloading` get their volumes, at
/// the `root_dir` the generated `--kv-transfer-config` names, as KServe's controller attaches
/// them; the emptyDir size is requested as ephemeral-storage.
#[test]
fn kv_cache_secondary_tiers_get_volumes() {
    let obj = base(json!({ "kvCacheOffloading": { "cpu": "10Gi", "secondary": [
        { "fileSystem": { "emptyDir": { "size": "100Gi" } } },
        { "fileSystem": { "pvc": { "ref": { "name": "kv", "path": "cache" } } } },
        { "fileSystem": { "pvc": { "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Ti" } } } } } },
    ] } }));
    let out = expand(&obj, &cfg()).unwrap();
    assert_eq!(expand(&out, &cfg()).unwrap(), out);
    let a = args(&out, "/spec/template");
    let kv: Value =
        serde_json::from_str(&a[a.iter().position(|x| x == "--kv-transfer-config").unwrap() + 1])
            .unwrap();
    let dirs: Vec<&str> = kv["kv_connector_extra_config"]["secondary_tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["root_dir"].as_str().unwrap())
        .collect();
    assert_eq!(
        dirs,
        ["/mnt/kv-cache-0", "/mnt/kv-cache-1", "/mnt/kv-cache-2"]
    );
    let vols = out["spec"]["template"]["volumes"].as_array().unwrap();
    let vol = |n: &str| vols.iter().find(|v| v["name"] == n).unwrap().clone();
    assert_eq!(
        vol("kv-cache-secondary-0"),
        json!({ "name": "kv-cache-secondary-0", "emptyDir": { "sizeLimit": "100Gi" } })
    );
    assert_eq!(
        vol("kv-cache-secondary-1"),
        json!({ "name": "kv-cache-secondary-1", "persistentVolumeClaim": { "claimName": "kv" } })
    );
    assert!(vol("kv-cache-secondary-2")["ephemeral"]["volumeClaimTemplate"]["spec"].is_object());
    let main = main_of(&out, "/spec/template");
    let mounts = main["volumeMounts"].as_array().unwrap();
    for d in dirs {
        assert!(mounts.iter().any(|m| m["mountPath"] == d), "{d}");
    }
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/mnt/kv-cache-1" && m["subPath"] == "cache")
    );
    assert_eq!(main["resources"]["requests"]["ephemeral-storage"], "100Gi");
}

// ---------------------------------------------------------------------------------------------
// Property test
// ---------------------------------------------------------------------------------------------

fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match v {
        // `{}` and `[]` ask for managed defaults: filling them is the point, not a change.
        Value::Object(m) if m.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Object(m) => {
            for (k, x) in m {
                leaves(
                    x,
                    format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{path}/{i}"), out);
            }
        }
        _ => out.push((path, v.clone())),
    }
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

fn container() -> impl Strategy<Value = Value> {
    let flags = prop::sample::subsequence(
        vec![
            "--max-model-len=4096",
            "--tensor-parallel-size",
            "2",
            "--port",
            "7000",
            "--enforce-eager",
            "--foo",
            "bar",
        ],
        0..5,
    );
    (
        opt(prop_oneof![
            Just(json!(["vllm", "serve"])),
            Just(json!(["/bin/bash", "-c", "exec vllm serve $@", "--"]))
        ]),
        opt(flags),
        opt(prop_oneof![Just("1"), Just("4")]),
        opt(Just("--enforce-eager --x 1")),
        any::<bool>(),
    )
        .prop_map(|(cmd, args, gpu, add, unknown)| {
            let mut c = json!({ "name": "main", "image": "vllm/vllm-openai" });
            if let Some(cmd) = cmd {
                c["command"] = cmd;
            }
            if let Some(a) = args {
                c["args"] = json!(a);
            }
            if let Some(g) = gpu {
                c["resources"] = json!({ "limits": { "nvidia.com/gpu": g } });
            }
            if let Some(a) = add {
                c["env"] = json!([{ "name": "VLLM_ADDITIONAL_ARGS", "value": a }]);
            }
            if unknown {
                c["someFutureField"] = json!({ "x": 1 });
            }
            c
        })
}

/// As with KServe, a pod that declares `kserve-provision-location` itself (here a PVC) gets
/// the model downloaded there instead of into an emptyDir.
#[test]
fn own_provision_location_volume_is_used() {
    let obj = base(json!({ "template": {
        "containers": [ { "name": "main", "image": "vllm/vllm-openai:v0.11.0", "command": ["vllm", "serve"] } ],
        "volumes": [ { "name": "kserve-provision-location", "persistentVolumeClaim": { "claimName": "models" } } ],
    } }));
    let out = expand(&obj, &cfg()).unwrap();
    let pod = &out["spec"]["template"];
    let vols: Vec<&Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] == "kserve-provision-location")
        .collect();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0]["persistentVolumeClaim"]["claimName"], "models");
    let init = &pod["initContainers"][0];
    assert_eq!(init["name"], "storage-initializer");
    assert_eq!(init["volumeMounts"][0]["name"], "kserve-provision-location");
    assert!(
        main_of(&out, "/spec/template")["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "kserve-provision-location" && m["mountPath"] == "/mnt/models")
    );
}

/// Issue 18 (4): every container the webhook adds (storage initializer, LoRA initializers, the
/// routing sidecar) is ready for the `restricted` Pod Security Standard; a user's own
/// securityContext on such a container is kept.
#[test]
fn injected_containers_are_restricted_ready() {
    let restricted = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "runAsNonRoot": true,
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    let mut obj = base(
        json!({ "model": { "uri": "hf://org/model", "lora": { "adapters": [
        { "name": "sql", "uri": "s3://bucket/sql" } ] } } }),
    );
    obj["spec"]["prefill"] = json!({ "template": { "containers": [ { "name": "main", "image": "vllm", "command": ["vllm", "serve"] } ] } });
    let out = expand(&obj, &cfg()).unwrap();
    let inits = |pod: &str| {
        out.pointer(pod).unwrap()["initContainers"]
            .as_array()
            .unwrap()
            .clone()
    };
    let mut names = Vec::new();
    for pod in ["/spec/template", "/spec/prefill/template"] {
        for c in inits(pod) {
            names.push(c["name"].as_str().unwrap().to_string());
            assert_eq!(c["securityContext"], restricted, "{pod} {}", c["name"]);
        }
    }
    for want in [
        "storage-initializer",
        "storage-initializer-lora-sql",
        "llm-d-routing-sidecar",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert_eq!(expand(&out, &cfg()).unwrap(), out);
    // The user's own securityContext on a container of that name is kept.
    let mut obj = base(json!({}));
    obj["spec"]["template"]["initContainers"] = json!([{ "name": "storage-initializer",
        "securityContext": { "runAsUser": 0 } }]);
    let out = expand(&obj, &cfg()).unwrap();
    assert_eq!(
        out["spec"]["template"]["initContainers"][0]["securityContext"],
        json!({ "runAsUser": 0 })
    );
}

/// Issue 18 (5): the legacy-name migration leaves a storage initializer the user wrote
/// themselves (own command, own volume) alone, and `main`'s mount with it.
#[test]
fn legacy_migration_keeps_a_users_own_storage_initializer() {
    let own = base(json!({ "template": {
        "initContainers": [ { "name": "storage-initializer", "image": "my/downloader:1",
            "command": ["/bin/fetch"], "args": ["--to", "/mnt/models"],
            "volumeMounts": [ { "name": "model-cache", "mountPath": "/mnt/models" } ] } ],
        "containers": [ { "name": "main", "image": "vllm/vllm-openai:v0.23.0", "command": ["vllm", "serve"],
            "volumeMounts": [ { "name": "model-cache", "mountPath": "/mnt/models" } ] } ],
        "volumes": [ { "name": "model-cache", "persistentVolumeClaim": { "claimName": "my-cache" } } ],
    } }));
    let out = expand(&own, &cfg()).unwrap();
    assert_eq!(expand(&out, &cfg()).unwrap(), out, "not idempotent");
    let pod = &out["spec"]["template"];
    assert_eq!(
        pod["initContainers"][0]["volumeMounts"],
        own["spec"]["template"]["initContainers"][0]["volumeMounts"]
    );
    assert_eq!(
        main_of(&out, "/spec/template")["volumeMounts"],
        json!([ { "name": "model-cache", "mountPath": "/mnt/models" } ])
    );
    assert_eq!(
        pod["volumes"], own["spec"]["template"]["volumes"],
        "no second model volume"
    );
}

/// Objects stored by earlier versions (model volume `model-cache`, shared with the preset's HF
/// cache mount; `model-volume` for PVCs) get their model mounts renamed on the next update:
/// init container and `main` still share one volume, and a second run changes nothing.
#[test]
fn legacy_model_volume_names_are_migrated() {
    let legacy_hf = base(json!({ "template": {
        "initContainers": [ { "name": "storage-initializer", "image": "kserve/storage-initializer:v0.16.0",
            "args": ["hf://org/model", "/mnt/models"],
            "volumeMounts": [ { "name": "model-cache", "mountPath": "/mnt/models" } ] } ],
        "containers": [ { "name": "main", "image": "vllm/vllm-openai:v0.11.0", "command": ["vllm", "serve"],
            "volumeMounts": [ { "name": "model-cache", "mountPath": "/models-cache" },
                              { "name": "model-cache", "mountPath": "/mnt/models" } ] } ],
        "volumes": [ { "name": "model-cache", "emptyDir": {} } ],
    } }));
    let out = expand(&legacy_hf, &cfg()).unwrap();
    assert_eq!(expand(&out, &cfg()).unwrap(), out, "not idempotent");
    let pod = &out["spec"]["template"];
    let mounts = main_of(&out, "/spec/template")["volumeMounts"]
        .as_array()
        .unwrap();
    let at = |p: &str| mounts.iter().find(|m| m["mountPath"] == p).unwrap()["name"].clone();
    assert_eq!(at("/mnt/models"), "kserve-provision-location");
    assert_eq!(
        at("/models-cache"),
        "model-cache",
        "the HF cache mount is not the model's"
    );
    assert_eq!(
        pod["initContainers"][0]["volumeMounts"][0]["name"],
        "kserve-provision-location"
    );
    let names: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"model-cache") && names.contains(&"kserve-provision-location"));

    let mut legacy_pvc = base(json!({ "template": {
        "containers": [ { "name": "main", "image": "vllm/vllm-openai:v0.11.0", "command": ["vllm", "serve"],
            "volumeMounts": [ { "name": "model-volume", "mountPath": "/mnt/models", "readOnly": true, "subPath": "m" } ] } ],
        "volumes": [ { "name": "model-volume", "persistentVolumeClaim": { "claimName": "claim", "readOnly": true } } ],
    } }));
    legacy_pvc["spec"]["model"]["uri"] = json!("pvc://claim/m");
    let out = expand(&legacy_pvc, &cfg()).unwrap();
    assert_eq!(expand(&out, &cfg()).unwrap(), out, "not idempotent");
    let pod = &out["spec"]["template"];
    assert_eq!(
        pod["volumes"],
        json!([
            { "name": "model-volume", "persistentVolumeClaim": { "claimName": "claim", "readOnly": true } },
            { "name": "kserve-pvc-source", "persistentVolumeClaim": { "claimName": "claim", "readOnly": true } },
        ]),
        "the old entry stays (a preset may declare it), the mount uses the new one"
    );
    assert_eq!(
        main_of(&out, "/spec/template")["volumeMounts"],
        json!([ { "name": "kserve-pvc-source", "mountPath": "/mnt/models", "readOnly": true, "subPath": "m" } ])
    );
}

fn pod() -> impl Strategy<Value = Value> {
    (opt(container()), any::<bool>()).prop_map(|(c, vol)| {
        let mut p = json!({});
        if let Some(c) = c {
            p["containers"] = json!([c]);
        }
        if vol {
            p["volumes"] = json!([{ "name": "kserve-provision-location", "persistentVolumeClaim": { "claimName": "mine" } }]);
        }
        p
    })
}

fn parallelism() -> impl Strategy<Value = Value> {
    (
        opt(1i64..5),
        opt(1i64..3),
        opt(prop_oneof![Just(2i64), Just(4), Just(8)]),
        opt(1i64..3),
        opt(any::<bool>()),
    )
        .prop_map(|(t, p, d, dl, e)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("tensor", t),
                ("pipeline", p),
                ("data", d),
                ("dataLocal", dl),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            if let Some(e) = e {
                m.insert("expert".into(), json!(e));
            }
            Value::Object(m)
        })
}

fn pool() -> impl Strategy<Value = Value> {
    (opt(pod()), opt(pod()), opt(parallelism()), opt(1i32..4)).prop_map(|(t, w, par, r)| {
        let mut m = json!({});
        if let Some(t) = t {
            m["template"] = t;
        }
        if let Some(w) = w {
            m["worker"] = w;
        }
        if let Some(p) = par {
            m["parallelism"] = p;
        }
        if let Some(r) = r {
            m["replicas"] = json!(r);
        }
        m
    })
}

fn service() -> impl Strategy<Value = Value> {
    let uri = prop_oneof![
        Just("hf://org/model"),
        Just("hf://org/model:main"),
        Just("pvc://claim/path/x"),
        Just("pvc://claim"),
        Just("oci://reg/img:1"),
        Just("s3://b/m"),
        Just("gs://b/m"),
        Just("https://h/m"),
        Just("weird://x"),
    ];
    let router =
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(s, r, g, refs)| {
            let mut m = json!({});
            if s {
                m["scheduler"] =
                    json!({ "pool": { "spec": { "targetPorts": [{ "number": 8080 }] } } });
            }
            if r {
                m["route"] = if refs {
                    json!({ "http": { "refs": [{ "name": "mine" }] } })
                } else {
                    json!({})
                };
            }
            if g {
                m["gateway"] = json!({});
            }
            m
        });
    (
        uri,
        opt(Just("served")),
        opt(any::<bool>()),
        any::<bool>(),
        pool(),
        opt(pool()),
        opt(router),
        opt(prop_oneof![Just("v1alpha1"), Just("v1alpha2")]),
    )
        .prop_map(|(uri, name, si, lora, decode, prefill, router, version)| {
            let mut spec = decode;
            spec["model"] = json!({ "uri": uri });
            if let Some(n) = name {
                spec["model"]["name"] = json!(n);
            }
            if lora {
                spec["model"]["lora"] = json!({ "adapters": [{ "name": "sql", "uri": "hf://org/sql-lora" }, { "name": "Fancy_Adapter", "uri": "pvc://loras/fancy" }], "maxRank": 16 });
            }
            if let Some(si) = si {
                spec["storageInitializer"] = json!({ "enabled": si });
            }
            if let Some(p) = prefill {
                spec["prefill"] = p;
            }
            if let Some(r) = router {
                spec["router"] = r;
            }
            spec["unknownSpecField"] = json!("kept");
            json!({
                "apiVersion": format!("serving.kserve.io/{}", version.unwrap_or("v1alpha2")),
                "kind": "LLMInferenceService",
                "metadata": { "name": "svc", "namespace": "ns", "labels": { "a": "b" } },
                "spec": spec,
                "status": { "observedGeneration": 3 }
            })
        })
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn expand_is_idempotent_and_keeps_user_values(obj in service()) {
        let once = expand(&obj, &cfg()).unwrap();
        let twice = expand(&once, &cfg()).unwrap();
        prop_assert_eq!(&twice, &once);
        for stage in Stage::ALL {
            let partial = expand_until(&obj, &cfg(), stage).unwrap();
            prop_assert_eq!(&expand_until(&partial, &cfg(), stage).unwrap(), &partial, "stage {:?}", stage);
            // Finishing a partial expansion reaches the same object.
            prop_assert_eq!(&expand(&partial, &cfg()).unwrap(), &once, "after stage {:?}", stage);
        }
        let mut ls = Vec::new();
        leaves(&obj, String::new(), &mut ls);
        for (path, value) in ls {
            // Documented exceptions: `args` and `command` tokens may move, but all survive.
            let parts: Vec<&str> = path.rsplitn(2, '/').collect();
            let parent = parts.get(1).copied().unwrap_or("");
            if parent.ends_with("/args") || parent.ends_with("/command") {
                let list = str_list(once.pointer(parent));
                let before = str_list(obj.pointer(parent));
                let tok = value.as_str().unwrap().to_string();
                let n_before = before.iter().filter(|t| **t == tok).count();
                let n_after = list.iter().filter(|t| **t == tok).count();
                prop_assert!(n_after >= n_before, "{} lost {:?}: {:?}", parent, tok, list);
                continue;
            }
            prop_assert_eq!(once.pointer(&path), Some(&value), "{} changed", path);
        }
    }
}

/// Issue 18, item 6: `--accelerator-resource` reaches mutation and validation of `serve`,
/// `render` and `validate` (one `EngineArgs`): a container limited to a configured name gets
/// no `nvidia.com/gpu` on top, and validation counts that name against the parallelism.
#[test]
fn accelerator_resource_flag_reaches_serve_render_and_validate() {
    use clap::Parser;
    use llmisvc::cli::{Cli, Command};
    let engine_args = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
        Command::Render(a) => a.engine,
        Command::Validate(a) => a.engine,
        Command::Serve(a) => a.engine,
        _ => unreachable!(),
    };
    let svc = |npus: i64, tensor: i64| {
        json!({
            "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
            "metadata": {"name": "npu", "namespace": "demo"},
            "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
                "parallelism": {"tensor": tensor},
                "template": {"containers": [{"name": "main",
                    "resources": {"limits": {"example.com/npu": npus}}}]}}
        })
    };
    for argv in [
        &[
            "llmisvc",
            "render",
            "-f",
            "x.yaml",
            "--accelerator-resource",
            "example.com/npu",
        ][..],
        &[
            "llmisvc",
            "validate",
            "-f",
            "x.yaml",
            "--accelerator-resource",
            "example.com/*",
        ],
        &[
            "llmisvc",
            "serve",
            "--accelerator-resource",
            "example.com/npu",
        ],
    ] {
        let engine = engine_args(argv).engine().unwrap();
        let out = engine.mutate(&svc(2, 2)).unwrap();
        let limits = &main_of(&out, "/spec/template")["resources"]["limits"];
        assert_eq!(limits, &json!({"example.com/npu": 2}), "{argv:?}");
        assert!(engine.validate(None, &out).errors.is_empty(), "{argv:?}");
        // Counted: 2 NPUs cannot hold tensor parallelism 4.
        let out = engine.mutate(&svc(2, 4)).unwrap();
        let errors = engine.validate(None, &out).errors;
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("example.com/npu")),
            "{argv:?}: {errors:?}"
        );
    }
    // Without the flag the name is not an accelerator: nvidia.com/gpu is injected beside it.
    let engine = engine_args(&["llmisvc", "render", "-f", "x.yaml"])
        .engine()
        .unwrap();
    let out = engine.mutate(&svc(2, 2)).unwrap();
    assert_eq!(
        main_of(&out, "/spec/template")["resources"]["limits"]["nvidia.com/gpu"],
        "2"
    );
}
