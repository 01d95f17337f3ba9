//! The Helm chart (deploy/helm/llmisvc) with the real `helm` (v3.22, built by the test bed):
//! - it agrees with the kustomize base deploy/ (RBAC rules, container args and pod spec,
//!   webhook configurations, Service, PDB, CRDs, presets) and with the cert-manager component
//!   certs/cert-manager/ (args, Issuer, Certificate): a change to one without the other fails;
//! - `helm lint` is clean with default and with every value set;
//! - on the real cluster: `helm template` applied with `--dry-run=server`, `helm install`, a
//!   service admitted through the installed webhook configurations, `helm upgrade` with other
//!   values keeps the injected CA bundles and admits throughout, `helm uninstall` leaves no
//!   webhook configuration;
//! - the server runs on a Secret shaped like cert-manager's (tls.crt, tls.key, ca.crt).
//!
//! No container runs in the test bed (the image is not pullable): the chart's pods are
//! scheduled onto kwok nodes and marked Ready without running; `llmisvc serve` runs out of
//! cluster with the arguments the chart gives them, and the chart's `webhookUrl` value points
//! the webhook configurations at it. cert-manager's CRDs are not in the test bed: its Issuer/Certificate are checked against
//! cert-manager's v1 API field by field here, not by an API server.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use support::cluster::{Cluster, free_port, testbed};
use support::e2e::wait_until;
use support::server::{ServerProcess, gen_certs};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NS: &str = "llmisvc-system";

fn chart() -> String {
    format!("{ROOT}/deploy/helm/llmisvc")
}

/// The test bed's helm, or None (test skipped with a message) when it is not built.
fn helm_bin() -> Option<PathBuf> {
    let h = testbed("helm");
    if h.exists() {
        Some(h)
    } else if std::env::var_os("CI").is_some() {
        panic!("{} missing: run tests/e2e/provision.sh", h.display())
    } else {
        eprintln!(
            "SKIPPED: {} missing: run tests/e2e/provision.sh",
            h.display()
        );
        None
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Helm in a private HOME (no user config or cache), optionally on a cluster.
fn helm(h: &PathBuf, cluster: Option<&Cluster>) -> Command {
    let mut c = Command::new(h);
    let home = std::env::temp_dir().join("llmisvc-helm-home");
    c.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    if let Some(cl) = cluster {
        c.arg("--kubeconfig").arg(&cl.kubeconfig);
    }
    c
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn file_docs(rel: &str) -> Vec<Value> {
    docs(&std::fs::read_to_string(format!("{ROOT}/{rel}")).unwrap())
}

fn template(h: &PathBuf, args: &[&str]) -> Vec<Value> {
    docs(&ok(helm(h, None)
        .args(["template", "llmisvc", &chart(), "-n", NS])
        .args(args)))
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container(deploy: &Value) -> &Value {
    &deploy["spec"]["template"]["spec"]["containers"][0]
}

/// The pod spec without what the chart adds on purpose (labels, annotations): equal to the
/// base's.
fn pod_spec(deploy: &Value) -> Value {
    deploy["spec"]["template"]["spec"].clone()
}

#[test]
fn chart_and_kustomize_base_agree() {
    let Some(h) = helm_bin() else { return };
    let chart = template(&h, &[]);
    let base: Vec<Value> = ["deploy/rbac.yaml", "deploy/deployment.yaml"]
        .iter()
        .chain(&["deploy/service.yaml", "deploy/pdb.yaml"])
        .chain(&["deploy/generated/webhooks.yaml"])
        .flat_map(|f| file_docs(f))
        .collect();

    for (kind, name) in [("ClusterRole", "llmisvc"), ("Role", "llmisvc")] {
        assert_eq!(
            find(&chart, kind, name)["rules"],
            find(&base, kind, name)["rules"],
            "{kind} rules differ between the chart and deploy/rbac.yaml"
        );
    }
    for (kind, name) in [
        ("ClusterRoleBinding", "llmisvc"),
        ("RoleBinding", "llmisvc"),
    ] {
        for k in ["roleRef", "subjects"] {
            assert_eq!(
                find(&chart, kind, name)[k],
                find(&base, kind, name)[k],
                "{kind} {k}"
            );
        }
    }
    let (cd, bd) = (
        find(&chart, "Deployment", "llmisvc"),
        find(&base, "Deployment", "llmisvc"),
    );
    assert_eq!(
        container(cd)["args"],
        container(bd)["args"],
        "container args differ"
    );
    assert_eq!(pod_spec(cd), pod_spec(bd), "pod specs differ");
    for k in ["replicas", "selector", "strategy"] {
        assert_eq!(cd["spec"][k], bd["spec"][k], "Deployment spec.{k}");
    }
    assert_eq!(
        cd["spec"]["template"]["metadata"]["labels"],
        bd["spec"]["template"]["metadata"]["labels"]
    );
    for (kind, name) in [
        ("Service", "llmisvc-webhook"),
        ("PodDisruptionBudget", "llmisvc"),
    ] {
        assert_eq!(
            find(&chart, kind, name)["spec"],
            find(&base, kind, name)["spec"],
            "{kind} spec"
        );
    }
    // Webhook rules, client config, failure policy...: the whole webhooks list. Without a
    // caBundle in either (it is injected at run time).
    for (kind, name) in [
        ("MutatingWebhookConfiguration", "llmisvc-mutating"),
        ("ValidatingWebhookConfiguration", "llmisvc-validating"),
    ] {
        let c = find(&chart, kind, name);
        assert_eq!(c["webhooks"], find(&base, kind, name)["webhooks"], "{kind}");
        assert!(!serde_json::to_string(c).unwrap().contains("caBundle"));
    }
    // The webhook configurations are also what `llmisvc webhook-config` prints (and what the
    // self-managed certificates server-side apply, caBundle aside).
    let printed = docs(&support::server::llmisvc_ok(&["webhook-config"]));
    for (kind, name) in [
        ("MutatingWebhookConfiguration", "llmisvc-mutating"),
        ("ValidatingWebhookConfiguration", "llmisvc-validating"),
    ] {
        assert_eq!(
            find(&chart, kind, name)["webhooks"],
            find(&printed, kind, name)["webhooks"]
        );
    }

    // The chart's copies: crds/ and the presets.
    for f in std::fs::read_dir(format!("{ROOT}/crds")).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            std::fs::read_to_string(format!("{}/crds/{name}", chart_dir())).unwrap_or_default(),
            "deploy/helm/llmisvc/crds/{name} is not a copy of crds/{name}: cp crds/*.yaml deploy/helm/llmisvc/crds/"
        );
    }
    let mut base_presets = Vec::new();
    for f in std::fs::read_dir(format!("{ROOT}/deploy/presets")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "yaml") {
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            assert_eq!(
                std::fs::read_to_string(&f).unwrap(),
                std::fs::read_to_string(format!("{}/files/presets/{name}", chart_dir()))
                    .unwrap_or_default(),
                "deploy/helm/llmisvc/files/presets/{name} is not a copy of deploy/presets/{name}"
            );
            base_presets.extend(file_docs(&format!("deploy/presets/{name}")));
        }
    }
    let chart_presets: Vec<&Value> = chart
        .iter()
        .filter(|o| o["kind"] == "LLMInferenceServiceConfig")
        .collect();
    assert_eq!(chart_presets.len(), base_presets.len());
    let listed = std::fs::read_to_string(format!("{ROOT}/deploy/kustomization.yaml")).unwrap();
    assert_eq!(
        listed.matches("presets/").count(),
        base_presets.len(),
        "deploy/kustomization.yaml lists every preset"
    );
    // A chart with the presets elsewhere puts them there.
    let moved = template(&h, &["--set", "systemNamespace=platform"]);
    assert!(
        moved
            .iter()
            .filter(|o| o["kind"] == "LLMInferenceServiceConfig")
            .all(|o| o["metadata"]["namespace"] == "platform")
    );
    let args = &container(find(&moved, "Deployment", "llmisvc"))["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--system-namespace"))
    );
}

fn chart_dir() -> String {
    chart()
}

#[test]
fn cert_manager_value_and_kustomize_component_agree() {
    let Some(h) = helm_bin() else { return };
    let chart = template(&h, &["--set", "certManager.enabled=true"]);
    let kustomized =
        docs(&ok(Command::new(testbed("kubectl"))
            .args(["kustomize", &format!("{ROOT}/certs/cert-manager")])));
    let (cd, kd) = (
        find(&chart, "Deployment", "llmisvc"),
        find(&kustomized, "Deployment", "llmisvc"),
    );
    assert_eq!(pod_spec(cd), pod_spec(kd), "pod specs differ");
    let args: Vec<&str> = container(cd)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(!args.contains(&"--self-managed-certs"), "{args:?}");
    assert!(args.contains(&"--tls-cert"), "{args:?}");
    for (kind, name) in [
        ("Issuer", "llmisvc-selfsigned"),
        ("Certificate", "llmisvc-webhook"),
    ] {
        assert_eq!(
            find(&chart, kind, name)["spec"],
            find(&kustomized, kind, name)["spec"],
            "{kind}"
        );
    }
    let inject = format!("{NS}/llmisvc-webhook");
    for (kind, name) in [
        ("MutatingWebhookConfiguration", "llmisvc-mutating"),
        ("ValidatingWebhookConfiguration", "llmisvc-validating"),
    ] {
        for objs in [&chart, &kustomized] {
            assert_eq!(
                find(objs, kind, name)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                inject.as_str()
            );
        }
    }
    for crd in [
        "llminferenceservices.serving.kserve.io",
        "llminferenceserviceconfigs.serving.kserve.io",
    ] {
        assert_eq!(
            find(&kustomized, "CustomResourceDefinition", crd)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            inject.as_str()
        );
    }
    // The Secret the Deployment mounts is the one the Certificate writes.
    let cert = find(&chart, "Certificate", "llmisvc-webhook");
    assert_eq!(
        cd["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        cert["spec"]["secretName"]
    );
    // An own issuer: no Issuer rendered, issuerRef names it.
    let own = template(
        &h,
        &[
            "--set",
            "certManager.enabled=true",
            "--set",
            "certManager.issuerRef.name=corp-ca",
            "--set",
            "certManager.issuerRef.kind=ClusterIssuer",
        ],
    );
    assert!(!own.iter().any(|o| o["kind"] == "Issuer"));
    assert_eq!(
        find(&own, "Certificate", "llmisvc-webhook")["spec"]["issuerRef"],
        json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
}

/// cert-manager's CRDs are not in the test bed, so no API server validates these objects:
/// they are checked against cert-manager.io/v1 (https://cert-manager.io/docs/reference/api-docs/)
/// here: known fields only, required ones present, enumerations respected, the Service's DNS
/// names, and a Secret layout (tls.crt, tls.key, ca.crt) the server reads.
#[test]
fn cert_manager_objects_follow_the_v1_schema() {
    let objs = file_docs("certs/cert-manager/component/certificate.yaml");
    let issuer = find(&objs, "Issuer", "llmisvc-selfsigned");
    assert_eq!(issuer["apiVersion"], "cert-manager.io/v1");
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
    let cert = find(&objs, "Certificate", "llmisvc-webhook");
    assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
    let spec = cert["spec"].as_object().unwrap();
    const FIELDS: &[&str] = &[
        "secretName",
        "duration",
        "renewBefore",
        "dnsNames",
        "privateKey",
        "usages",
        "issuerRef",
        "commonName",
        "ipAddresses",
        "uris",
        "emailAddresses",
        "subject",
        "isCA",
        "secretTemplate",
        "revisionHistoryLimit",
        "keystores",
        "literalSubject",
        "additionalOutputFormats",
        "nameConstraints",
        "otherNames",
        "encodeUsagesInRequest",
        "renewBeforePercentage",
        "signatureAlgorithm",
    ];
    for k in spec.keys() {
        assert!(FIELDS.contains(&k.as_str()), "Certificate.spec.{k} unknown");
    }
    for k in ["secretName", "issuerRef"] {
        assert!(spec.contains_key(k), "Certificate.spec.{k} required");
    }
    let pk = &spec["privateKey"];
    assert!(["RSA", "ECDSA", "Ed25519"].contains(&pk["algorithm"].as_str().unwrap()));
    assert!(["PKCS1", "PKCS8"].contains(&pk["encoding"].as_str().unwrap()));
    assert!(["Never", "Always"].contains(&pk["rotationPolicy"].as_str().unwrap()));
    assert!([256, 384, 521].contains(&pk["size"].as_u64().unwrap()));
    const USAGES: &[&str] = &[
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    ];
    for u in spec["usages"].as_array().unwrap() {
        assert!(USAGES.contains(&u.as_str().unwrap()), "usage {u}");
    }
    for d in ["duration", "renewBefore"] {
        let v = spec[d].as_str().unwrap();
        assert!(
            v.ends_with('h') && v[..v.len() - 1].parse::<u32>().is_ok(),
            "{d}: {v}"
        );
    }
    let ir = spec["issuerRef"].as_object().unwrap();
    assert!(
        ir.keys()
            .all(|k| ["name", "kind", "group"].contains(&k.as_str()))
    );
    assert_eq!(
        spec["dnsNames"],
        json!([
            "llmisvc-webhook.llmisvc-system.svc",
            "llmisvc-webhook.llmisvc-system.svc.cluster.local"
        ]),
        "the names the API server uses for the Service deploy/service.yaml defines"
    );
}

#[test]
fn helm_lint_is_clean() {
    let Some(h) = helm_bin() else { return };
    let everything = [
        "--set",
        "replicas=3,logFormat=text,systemNamespace=platform,defaultGateway=gw/main",
        "--set",
        "accelerators.gpuResource=amd.com/gpu,accelerators.maxGpusPerNode=4,clusterPresets=true",
        "--set",
        "reconciler.wvaPrometheus.url=https://prometheus:9090,reconciler.wvaPrometheus.insecureSkipVerify=true",
        "--set",
        "reconciler.wvaPrometheus.authModes=bearer,reconciler.wvaPrometheus.triggerAuth=prom",
        "--set-json",
        r#"policies={"gpus.yaml":{"name":"gpus","rules":[{"name":"max","action":"deny","maxGpus":{"perPod":8}}]}}"#,
    ];
    for extra in [
        &[][..],
        &everything[..],
        &["--set", "certManager.enabled=true"][..],
    ] {
        let out = ok(helm(&h, None)
            .args(["lint", "--strict", &chart()])
            .args(extra));
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
    // Every flag the chart passes is one `llmisvc serve` accepts (clap parses them; --help
    // exits before serving).
    let objs = template(&h, &everything);
    let args: Vec<String> = container(find(&objs, "Deployment", "llmisvc"))["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for flag in [
        "--system-namespace",
        "--default-gateway",
        "--gpu-resource",
        "--max-gpus-per-node",
        "--cluster-presets",
        "--policies-dir",
        "--wva-prometheus-url",
        "--wva-prometheus-insecure-skip-verify",
        "--wva-prometheus-auth-modes",
        "--wva-prometheus-trigger-auth",
        "--log-format",
    ] {
        assert!(
            args.iter().any(|a| a == flag),
            "{flag} not rendered: {args:?}"
        );
    }
    let mut with_help = args.clone();
    with_help.push("--help".into());
    let out = support::server::llmisvc()
        .args(&with_help)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    // Without --help, clap's parse errors would show up first: check there are none by
    // asking clap with an invalid listen address (parsed after all flags).
    let mut bad = args.clone();
    bad.extend(["--addr".into(), "not-an-address".into()]);
    let out = support::server::llmisvc().args(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--addr") && !err.contains("unexpected argument"),
        "{err}"
    );
    // The policies reach the server through a ConfigMap mounted at --policies-dir.
    let cm = find(&objs, "ConfigMap", "llmisvc-policies");
    let policy: Value = serde_norway::from_str(cm["data"]["gpus.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(policy["name"], "gpus");
}

fn service(name: &str, ns: &str) -> String {
    format!(
        r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: {name}
  namespace: {ns}
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
"#
    )
}

fn ca_bundles(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let name = if kind.starts_with('m') {
            "llmisvc-mutating"
        } else {
            "llmisvc-validating"
        };
        let o = cluster.kubectl(&[
            "get",
            kind,
            name,
            "-o",
            "jsonpath={.webhooks[0].clientConfig.caBundle}",
        ]);
        out.push(String::from_utf8_lossy(&o.stdout).to_string());
    }
    for crd in [
        "llminferenceservices.serving.kserve.io",
        "llminferenceserviceconfigs.serving.kserve.io",
    ] {
        let o = cluster.kubectl(&[
            "get",
            "crd",
            crd,
            "-o",
            "jsonpath={.spec.conversion.webhook.clientConfig.caBundle}",
        ]);
        out.push(String::from_utf8_lossy(&o.stdout).to_string());
    }
    out
}

#[test]
fn helm_install_upgrade_uninstall_on_the_real_cluster() {
    let Some(h) = helm_bin() else { return };
    let Some(mut cluster) = Cluster::start_or_skip() else {
        return;
    };
    cluster.kubectl_ok(&["create", "namespace", NS]);
    // kube-controller-manager, kube-scheduler and kwok nodes: the chart's Deployment gets
    // pods, scheduled and Ready (kwok runs no container), so `helm --wait` means something.
    cluster.start_workload_plane();
    cluster.kubectl_ok(&[
        "label",
        "namespace",
        NS,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let url_value = format!("webhookUrl={url}");

    // helm template (CRDs included, presets left out: their kind does not exist before the
    // CRDs do) through the API server's validation and admission, nothing persisted.
    let rendered = ok(helm(&h, None).args([
        "template",
        "llmisvc",
        &chart(),
        "-n",
        NS,
        "--include-crds",
        "--set",
        "presets.install=false",
    ]));
    let out = cluster.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &rendered);
    assert!(out.status.success(), "{}", text(&out));
    let dry = text(&out);
    // PodSecurity checks the pod template against the namespace's `restricted` level and
    // warns on workload objects.
    assert!(!dry.contains("PodSecurity"), "{dry}");
    assert!(
        dry.contains("deployment.apps/llmisvc created (server dry run)"),
        "{dry}"
    );
    assert!(
        cluster
            .kubectl(&["get", "deployment", "-n", NS, "llmisvc"])
            .status
            .code()
            != Some(0),
        "a dry run persists nothing"
    );

    // helm install: CRDs from crds/, everything else; the webhook configurations point at the
    // out-of-cluster server by URL (webhookUrl), without a caBundle yet.
    let out = ok(helm(&h, Some(&cluster)).args([
        "install",
        "llmisvc",
        &chart(),
        "-n",
        NS,
        "--set",
        &url_value,
        "--wait",
        "--timeout",
        "3m",
    ]));
    assert!(out.contains("STATUS: deployed"), "{out}");
    let available = |n: u64| {
        wait_until("Deployment available", Duration::from_secs(120), || {
            let d: Value = serde_json::from_str(&cluster.kubectl_ok(&[
                "get",
                "deployment",
                "-n",
                NS,
                "llmisvc",
                "-o",
                "json",
            ]))
            .unwrap();
            (d["status"]["availableReplicas"] == n && d["status"]["updatedReplicas"] == n)
                .then_some(())
        })
    };
    available(2);
    wait_until("PDB sees the pods", Duration::from_secs(60), || {
        let p: Value = serde_json::from_str(
            &cluster.kubectl_ok(&["get", "pdb", "-n", NS, "llmisvc", "-o", "json"]),
        )
        .unwrap();
        (p["status"]["currentHealthy"] == 2 && p["status"]["disruptionsAllowed"] == 1).then_some(())
    });
    for crd in ["llminferenceservices", "llminferenceserviceconfigs"] {
        cluster.wait_for(
            &[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}.serving.kserve.io"),
            ],
            Duration::from_secs(60),
        );
    }
    let presets =
        cluster.kubectl_ok(&["get", "llminferenceserviceconfigs", "-n", NS, "-o", "name"]);
    let shipped = std::fs::read_dir(format!("{ROOT}/deploy/presets"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .count();
    assert_eq!(presets.lines().count(), shipped, "{presets}");
    assert_eq!(ca_bundles(&cluster)[0], "", "the chart sets no caBundle");
    let deploy: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        NS,
        "llmisvc",
        "-o",
        "json",
    ]))
    .unwrap();
    let args: Vec<String> = container(&deploy)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();

    // The pods' process, out of cluster: the Deployment's own arguments (self-managed
    // certificates: creates the Secret and injects the CA bundles) minus `serve`.
    let dir = cluster.dir.path().join("helm");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let env = [("KUBECONFIG", kubeconfig.as_str()), ("POD_NAMESPACE", NS)];
    // Without --reconcile: the children's CRDs are not installed here (the reconciler has its
    // own suite), and it would only add noise.
    let pod_args: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--reconcile")
        .collect();
    assert!(pod_args.contains(&"--self-managed-certs"), "{pod_args:?}");
    assert!(pod_args.contains(&url.as_str()), "{pod_args:?}");
    let mut server = ServerProcess::spawn(&dir, port, &pod_args, &env);
    let bundles = wait_until("CA bundles injected", Duration::from_secs(60), || {
        let b = ca_bundles(&cluster);
        b.iter().all(|x| !x.is_empty()).then_some(b)
    });

    // A service applied and admitted (mutated: the presets' defaults are filled in).
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    cluster.apply_ok(&service("before-upgrade", "demo"));
    let svc = cluster.kubectl_ok(&[
        "get",
        "llmisvc",
        "-n",
        "demo",
        "before-upgrade",
        "-o",
        "json",
    ]);
    assert!(
        server.log_text().contains("before-upgrade"),
        "{}",
        server.log_text()
    );
    assert!(svc.contains("before-upgrade"));

    // helm upgrade with other values while services are applied continuously: the CA
    // bundles stay (Helm's three-way merge has no caBundle to reset), every apply is admitted.
    let stop = Arc::new(AtomicBool::new(false));
    let (applied, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let applier = {
        let (stop, applied, failed) = (stop.clone(), applied.clone(), failed.clone());
        let kubeconfig = cluster.kubeconfig.clone();
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut c = Command::new(testbed("kubectl"))
                    .arg(format!("--kubeconfig={}", kubeconfig.display()))
                    .args(["apply", "-f", "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(service(&format!("during-{i}"), "demo").as_bytes())
                    .unwrap();
                let o = c.wait_with_output().unwrap();
                if o.status.success() {
                    applied.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    errors.push(text(&o));
                }
            }
            errors
        })
    };
    let out = ok(helm(&h, Some(&cluster)).args([
        "upgrade",
        "llmisvc",
        &chart(),
        "-n",
        NS,
        "--set",
        &url_value,
        "--wait",
        "--timeout",
        "3m",
        "--set",
        "replicas=3,logFormat=text,commonLabels.team=platform",
        "--set-json",
        r#"policies={"team.yaml":{"name":"team","rules":[{"name":"team-label","action":"warn","requiredLabels":{"labels":{"team":[]}}}]}}"#,
    ]));
    assert!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 2"),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let errors = applier.join().unwrap();
    assert!(
        failed.load(Ordering::Relaxed) == 0 && applied.load(Ordering::Relaxed) > 0,
        "applies during the upgrade: {} ok, failures: {errors:?}",
        applied.load(Ordering::Relaxed)
    );
    assert_eq!(
        ca_bundles(&cluster),
        bundles,
        "helm upgrade changed a CA bundle"
    );
    // ... although Helm did patch the webhook configurations (their labels changed).
    for kind in [
        "mutatingwebhookconfiguration/llmisvc-mutating",
        "validatingwebhookconfiguration/llmisvc-validating",
    ] {
        let team = cluster.kubectl_ok(&["get", kind, "-o", "jsonpath={.metadata.labels.team}"]);
        assert_eq!(team, "platform", "{kind} not patched by the upgrade");
    }
    let deploy: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        NS,
        "llmisvc",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(deploy["spec"]["replicas"], 3);
    available(3);
    let new_args = container(&deploy)["args"].to_string();
    assert!(
        new_args.contains("\"text\"") && new_args.contains("--policies-dir"),
        "{new_args}"
    );
    cluster.kubectl_ok(&["get", "configmap", "-n", NS, "llmisvc-policies"]);
    // After the upgrade the (unchanged) server still admits, with the same certificates.
    cluster.apply_ok(&service("after-upgrade", "demo"));
    assert_eq!(ca_bundles(&cluster), bundles);

    // helm uninstall. The pods go first (Helm deletes the Deployment before the webhook
    // configurations, which sort last): stop the out-of-cluster server the same way.
    server.stop();
    let out = ok(helm(&h, Some(&cluster)).args(["uninstall", "llmisvc", "-n", NS, "--wait"]));
    assert!(out.contains("uninstalled"), "{out}");
    for (kind, name) in [
        ("mutatingwebhookconfiguration", "llmisvc-mutating"),
        ("validatingwebhookconfiguration", "llmisvc-validating"),
        ("deployment", "llmisvc"),
        ("service", "llmisvc-webhook"),
        ("clusterrole", "llmisvc"),
        ("clusterrolebinding", "llmisvc"),
        ("poddisruptionbudget", "llmisvc"),
        ("configmap", "llmisvc-policies"),
    ] {
        let o = cluster.kubectl(&["get", kind, name, "-n", NS]);
        assert!(
            !o.status.success() && text(&o).contains("NotFound"),
            "{kind}/{name} left behind: {}",
            text(&o)
        );
    }
    // Nothing blocks the API: with the server gone, a service is still accepted (no webhook
    // left to fail closed); the CRDs stay, as Helm leaves crds/ installed.
    cluster.apply_ok(&service("after-uninstall", "demo"));
    cluster.kubectl_ok(&["get", "crd", "llminferenceservices.serving.kserve.io"]);
    let left = cluster.kubectl_ok(&["get", "llminferenceserviceconfigs", "-n", NS, "-o", "name"]);
    assert_eq!(left.trim(), "", "the presets are release objects: removed");
}

/// The server on the Secret cert-manager writes for the Certificate of certs/: type
/// kubernetes.io/tls with tls.crt, tls.key and ca.crt, mounted as files (as the kubelet
/// projects it), with the arguments the chart's certManager value renders; the CA bundle is
/// the Secret's ca.crt (what cainjector copies). Rotation: a new certificate in the files is
/// served without a restart.
#[test]
fn server_runs_on_a_secret_shaped_like_cert_managers() {
    let Some(h) = helm_bin() else { return };
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    cluster.kubectl_ok(&["create", "namespace", NS]);
    let gen_dir = cluster.dir.path().join("issued");
    std::fs::create_dir_all(&gen_dir).unwrap();
    gen_certs(&gen_dir);
    let secret = |dir: &std::path::Path| {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "llmisvc-webhook-tls", "namespace": NS,
                "annotations": {"cert-manager.io/certificate-name": "llmisvc-webhook",
                                "cert-manager.io/issuer-name": "llmisvc-selfsigned"}},
            "stringData": {"tls.crt": read("tls.crt"), "tls.key": read("tls.key"), "ca.crt": read("ca.crt")},
        })
        .to_string()
    };
    cluster.apply_ok(&secret(&gen_dir));

    // The Secret as the pod sees it: one file per key under the mount path.
    let mount = cluster.dir.path().join("mount");
    std::fs::create_dir_all(&mount).unwrap();
    let project = |mount: &std::path::Path| {
        let s: Value = serde_json::from_str(&cluster.kubectl_ok(&[
            "get",
            "secret",
            "-n",
            NS,
            "llmisvc-webhook-tls",
            "-o",
            "json",
        ]))
        .unwrap();
        use base64::Engine as _;
        for (k, v) in s["data"].as_object().unwrap() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            std::fs::write(mount.join(k), bytes).unwrap();
        }
    };
    project(&mount);

    let objs = template(&h, &["--set", "certManager.enabled=true"]);
    let deploy = find(&objs, "Deployment", "llmisvc");
    let mount_path =
        deploy["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
            .as_str()
            .unwrap();
    let args: Vec<String> = container(deploy)["args"].as_array().unwrap()[1..]
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace(mount_path, &mount.display().to_string())
        })
        .collect();
    let arg_refs: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--reconcile")
        .collect();
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let port = free_port();
    let server = ServerProcess::spawn(
        &mount,
        port,
        &arg_refs,
        &[("KUBECONFIG", kubeconfig.as_str()), ("POD_NAMESPACE", NS)],
    );
    // No self-management: no Secret of its own.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !cluster
            .kubectl(&["get", "secret", "-n", NS, "llmisvc-webhook-certs"])
            .status
            .success()
    );
    // cainjector's part: the Secret's ca.crt into the webhook configurations and CRDs.
    let ca = mount.join("ca.crt").display().to_string();
    let base = server.base_url();
    cluster.apply_ok(&support::server::llmisvc_ok(&[
        "crds",
        "--conversion-url",
        &base,
        "--ca-bundle",
        &ca,
    ]));
    cluster.apply_ok(&support::server::llmisvc_ok(&[
        "webhook-config",
        "--url",
        &base,
        "--ca-bundle",
        &ca,
    ]));
    cluster.wait_for(
        &[
            "wait",
            "--for=condition=Established",
            "crd/llminferenceservices.serving.kserve.io",
        ],
        Duration::from_secs(60),
    );
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    cluster.apply_ok(&service("on-cert-manager-secret", "demo"));
    assert!(
        server.log_text().contains("on-cert-manager-secret"),
        "{}",
        server.log_text()
    );

    // cert-manager renews (with the self-signed Issuer the CA is the certificate itself, so
    // it changes too): the new Secret is projected, cainjector's new bundle applied; the
    // server reloads the files without a restart and the API server's calls succeed.
    let renewed = cluster.dir.path().join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    gen_certs(&renewed);
    cluster.apply_ok(&secret(&renewed));
    project(&mount);
    let ca = mount.join("ca.crt").display().to_string();
    cluster.apply_ok(&support::server::llmisvc_ok(&[
        "webhook-config",
        "--url",
        &base,
        "--ca-bundle",
        &ca,
    ]));
    wait_until(
        "the renewed certificate is served",
        Duration::from_secs(30),
        || {
            cluster
                .kubectl_stdin(&["apply", "-f", "-"], &service("after-renewal", "demo"))
                .status
                .success()
                .then_some(())
        },
    );
    assert!(
        server.log_text().contains("after-renewal"),
        "{}",
        server.log_text()
    );
}
