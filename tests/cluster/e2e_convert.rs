//! Real-cluster suite, conversion: with the CRDs' conversion webhook pointing at `llmisvc
//! serve`, objects created as v1alpha1 and as v1alpha2 read back in both versions, and a
//! v1alpha2-only field survives an update made through v1alpha1.

use crate::support;

use serde_json::Value;
use support::cluster::Cluster;

const V1: &str = r#"
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: old-style, namespace: default}
spec:
  model: {uri: "hf://Qwen/Qwen2.5-0.5B-Instruct", criticality: Critical}
  replicas: 1
  router:
    scheduler:
      pool:
        spec:
          selector: {app: old-style}
          targetPortNumber: 8000
          extensionRef: {name: old-style-epp, portNumber: 9002, failureMode: FailOpen}
"#;

const V2: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: new-style, namespace: default}
spec:
  model:
    uri: "hf://Qwen/Qwen2.5-0.5B-Instruct"
    confidential: {enabled: true, resourceId: "kbs:///default/key/1"}
  replicas: 1
  kvCacheOffloading: {cpu: 10Gi, evictionPolicy: arc}
"#;

fn get(cluster: &Cluster, version: &str, name: &str) -> Value {
    let out = cluster.kubectl_ok(&[
        "get",
        &format!("llminferenceservices.{version}.serving.kserve.io"),
        name,
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn objects_read_back_in_both_versions_and_v1alpha2_fields_survive_v1alpha1_updates() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let server = support::server::install(&cluster, &[]);

    cluster.apply_ok(V1);
    cluster.apply_ok(V2);

    // v1alpha1 object read as v1alpha2: criticality kept in KServe's annotation, pool in the v1 shape.
    let o = get(&cluster, "v1alpha2", "old-style");
    assert_eq!(o["apiVersion"], "serving.kserve.io/v1alpha2");
    assert_eq!(
        o["metadata"]["annotations"]["internal.serving.kserve.io/model-criticality"],
        "Critical"
    );
    let pool = &o["spec"]["router"]["scheduler"]["pool"]["spec"];
    assert_eq!(pool["selector"]["matchLabels"]["app"], "old-style");
    assert_eq!(pool["targetPorts"][0]["number"], 8000);
    assert_eq!(pool["endpointPickerRef"]["port"]["number"], 9002);
    // ... and as v1alpha1 again: exactly what was written.
    let o = get(&cluster, "v1alpha1", "old-style");
    assert_eq!(o["spec"]["model"]["criticality"], "Critical");
    assert_eq!(
        o["spec"]["router"]["scheduler"]["pool"]["spec"]["targetPortNumber"],
        8000
    );
    assert!(
        o["metadata"]["annotations"]
            .get("internal.serving.kserve.io/model-criticality")
            .is_none()
    );

    // Edit a v1alpha2-only field through v1alpha2.
    cluster.kubectl_ok(&[
        "patch",
        "llminferenceservices.v1alpha2.serving.kserve.io",
        "new-style",
        "--type=merge",
        "-p",
        r#"{"spec":{"kvCacheOffloading":{"cpu":"20Gi"}}}"#,
    ]);

    // v1alpha2 object read as v1alpha1: v1alpha2-only fields are not in the spec...
    let mut o = get(&cluster, "v1alpha1", "new-style");
    assert_eq!(o["apiVersion"], "serving.kserve.io/v1alpha1");
    assert!(o["spec"].get("kvCacheOffloading").is_none());
    assert!(o["spec"]["model"].get("confidential").is_none());

    // ... and a v1alpha1 client that edits and writes back does not erase them.
    o["spec"]["replicas"] = 3.into();
    o["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let out = cluster.kubectl_stdin(&["replace", "-f", "-"], &o.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = get(&cluster, "v1alpha2", "new-style");
    assert_eq!(o["spec"]["replicas"], 3);
    assert_eq!(o["spec"]["kvCacheOffloading"]["evictionPolicy"], "arc");
    assert_eq!(
        o["spec"]["kvCacheOffloading"]["cpu"], "20Gi",
        "the edit made through v1alpha2 is kept"
    );
    assert_eq!(
        o["spec"]["model"]["confidential"]["resourceId"],
        "kbs:///default/key/1"
    );
    assert!(
        o["metadata"]["annotations"]
            .get("llmisvc.serving.kserve.io/v1alpha2-fields")
            .is_none()
    );

    let log = server.log_text();
    assert!(log.contains("convert"), "{log}");
}
