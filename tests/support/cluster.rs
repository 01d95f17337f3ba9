//! A real control plane for the end-to-end suite, built by `tests/e2e/provision.sh` from the
//! projects' Go modules: etcd 3.7 and kube-apiserver v1.37 on loopback (random free ports, a
//! temp dir), driven with the kubectl of the same release; on demand kube-controller-manager,
//! kube-scheduler, simulated GPU nodes run by kwok, and the LeaderWorkerSet controller with its
//! webhooks registered by URL.
//!
//! Binaries are read from `$LLMISVC_TESTBED_CACHE/bin` (default `~/.cache/llmisvc/bin`).
//! Processes are stopped when the `Cluster` is dropped, including when a test panics, and get
//! SIGKILL from the kernel if the test process itself dies. `LLMISVC_E2E_KEEP=1` keeps the temp
//! dir (every process's log, the kubeconfig) for debugging; the path is printed.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The third-party CRDs of the reconciler's children, as published (shared/reference).
pub const THIRD_PARTY_CRDS: &[&str] = &[
    "leaderworkerset.x-k8s.io_leaderworkersets.yaml",
    "gatewayapi_gatewayclasses.yaml",
    "gatewayapi_gateway.yaml",
    "gatewayapi_httproute.yaml",
    "gateway-inference-extension.yaml",
    "gateway-inference-extension-v1alpha2pool.yaml",
    "keda.yaml",
];

/// The Gateway every route of the suite attaches to (the shipped presets' default gateway).
pub const GATEWAY_NAMESPACE: &str = "llmisvc-system";
pub const GATEWAY_NAME: &str = "llmisvc-gateway";

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub token: String,
    procs: Vec<(String, Child)>,
}

/// Where provision.sh links the test-bed binaries.
pub fn testbed_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LLMISVC_TESTBED_CACHE") {
        return PathBuf::from(dir).join("bin");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/llmisvc/bin")
}

/// A test-bed binary (or file provision.sh placed beside them).
pub fn testbed(name: &str) -> PathBuf {
    testbed_bin_dir().join(name)
}

/// `../shared/reference/third-party-crds/` beside the checkout.
pub fn third_party_crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/third-party-crds")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e} (run tests/e2e/provision.sh first)"))
}

/// A simulated node: name, extended resource, GPU count, `nvidia.com/gpu.product`-style labels.
pub struct SimNode {
    pub name: &'static str,
    pub resource: &'static str,
    pub gpus: u32,
    pub labels: &'static [(&'static str, &'static str)],
}

/// The suite's GPU nodes: six with 8 NVIDIA GPUs each (48: the examples together need 40) and
/// one with 8 AMD GPUs, labelled as the vendors' device plugins / feature discovery label them.
pub const GPU_NODES: &[SimNode] = &[
    nvidia("gpu-nvidia-0"),
    nvidia("gpu-nvidia-1"),
    nvidia("gpu-nvidia-2"),
    nvidia("gpu-nvidia-3"),
    nvidia("gpu-nvidia-4"),
    nvidia("gpu-nvidia-5"),
    SimNode {
        name: "gpu-amd-0",
        resource: "amd.com/gpu",
        gpus: 8,
        labels: &[
            ("amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM"),
            ("amd.com/gpu.count", "8"),
        ],
    },
];

const fn nvidia(name: &'static str) -> SimNode {
    SimNode {
        name,
        resource: "nvidia.com/gpu",
        gpus: 8,
        labels: NVIDIA_LABELS,
    }
}

const NVIDIA_LABELS: &[(&str, &str)] = &[
    ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
    ("nvidia.com/gpu.count", "8"),
    ("nvidia.com/gpu.present", "true"),
];

impl Cluster {
    /// Whether the test-bed binaries are there.
    pub fn available() -> bool {
        ["etcd", "kube-apiserver", "kubectl"]
            .iter()
            .all(|b| testbed(b).exists())
    }

    /// Starts the control plane, or returns `None` (with a message) when the test-bed binaries
    /// are missing outside CI. In CI (`CI` set) a missing test bed is a failure.
    pub fn start_or_skip() -> Option<Cluster> {
        if !Self::available() && std::env::var_os("CI").is_none() {
            eprintln!(
                "SKIPPED: the real-cluster test bed is not built ({} missing): run tests/e2e/provision.sh",
                testbed_bin_dir().display()
            );
            return None;
        }
        Some(Self::start())
    }

    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub fn start() -> Cluster {
        let apiserver = testbed("kube-apiserver");
        assert!(
            Self::available(),
            "{} is missing: run tests/e2e/provision.sh (README's test command does)",
            apiserver.display()
        );
        let keep = std::env::var_os("LLMISVC_E2E_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("llmisvc-e2e-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!(
                "LLMISVC_E2E_KEEP: cluster files in {}",
                dir.path().display()
            );
        }
        let d = dir.path();
        let mut procs = Vec::new();

        let (client, peer) = (free_port(), free_port());
        let etcd = spawn(
            "etcd",
            Command::new(testbed("etcd"))
                .arg("--name=e2e")
                .arg(format!("--data-dir={}", d.join("etcd").display()))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster=e2e=http://127.0.0.1:{peer}"))
                .arg("--unsafe-no-fsync=true")
                .arg("--log-level=warn"),
            &d.join("etcd.log"),
        );
        procs.push(("etcd".to_string(), etcd));

        // Service-account signing key (ECDSA P-256, PKCS#8 PEM).
        let sa_key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(d.join("sa.key"), sa_key.serialize_pem()).unwrap();
        std::fs::write(d.join("sa.pub"), sa_key.public_key_pem()).unwrap();
        let token = format!("e2e-admin-{}", std::process::id());
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin-uid,\"system:masters\"\n"),
        )
        .unwrap();

        let port = free_port();
        let api = spawn(
            "kube-apiserver",
            Command::new(&apiserver)
                .arg(format!("--etcd-servers=http://127.0.0.1:{client}"))
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                .arg(format!("--secure-port={port}"))
                .arg(format!("--cert-dir={}", d.join("pki").display()))
                .arg(format!(
                    "--service-account-key-file={}",
                    d.join("sa.pub").display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    d.join("sa.key").display()
                ))
                .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
                .arg(format!(
                    "--token-auth-file={}",
                    d.join("tokens.csv").display()
                ))
                .arg("--authorization-mode=RBAC")
                .arg("--service-cluster-ip-range=10.96.0.0/16")
                .arg("--allow-privileged=true")
                // Loopback addresses are refused by the endpoint reconciler of the `kubernetes`
                // Service; nothing in the suite reaches the API server through it.
                .arg("--endpoint-reconciler-type=none")
                .arg("--v=1"),
            &d.join("kube-apiserver.log"),
        );
        procs.push(("kube-apiserver".to_string(), api));

        let server = format!("https://127.0.0.1:{port}");
        let kubeconfig = d.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: admin, namespace: default}}\ncurrent-context: e2e\n"
            ),
        )
        .unwrap();

        let mut cluster = Cluster {
            dir,
            kubeconfig,
            server,
            token,
            procs,
        };
        cluster.wait_ready(Duration::from_secs(120));
        let version = cluster.kubectl(&["version"]);
        eprintln!(
            "test bed: {}",
            String::from_utf8_lossy(&version.stdout)
                .lines()
                .collect::<Vec<_>>()
                .join("; ")
        );
        cluster
    }

    /// Starts kube-controller-manager with only the garbage collector and namespace
    /// controllers (owner-reference cascading deletion; no workload controllers, so workload
    /// status is whatever a test writes).
    pub fn start_controller_manager(&mut self) {
        self.start_kcm("garbagecollector,namespace");
    }

    fn start_kcm(&mut self, controllers: &str) {
        let d = self.dir.path().to_path_buf();
        let kcm = spawn(
            "kube-controller-manager",
            Command::new(testbed("kube-controller-manager"))
                .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
                .arg(format!("--controllers={controllers}"))
                .arg("--leader-elect=false")
                .arg("--secure-port=0")
                .arg("--use-service-account-credentials=false")
                .arg(format!(
                    "--service-account-private-key-file={}",
                    d.join("sa.key").display()
                ))
                .arg(format!(
                    "--root-ca-file={}",
                    d.join("pki/apiserver.crt").display()
                ))
                .arg("--concurrent-deployment-syncs=10")
                .arg("--v=1"),
            &d.join("kube-controller-manager.log"),
        );
        self.procs
            .push(("kube-controller-manager".to_string(), kcm));
    }

    /// The workload plane: kube-controller-manager with the workload controllers (Deployment,
    /// ReplicaSet, StatefulSet, garbage collector, namespace, service accounts, endpoints),
    /// kube-scheduler, kwok over the simulated GPU nodes of [`GPU_NODES`] (pods bound to them
    /// turn Running/Ready; no container runs), and the LeaderWorkerSet controller with its
    /// webhooks. Also installs the third-party CRDs and the suite's Gateway.
    pub fn start_workload_plane(&mut self) {
        self.install_third_party_crds();
        self.start_kcm(
            "garbagecollector,namespace,deployment,replicaset,statefulset,serviceaccount,serviceaccount-token,endpointslice,disruption,horizontalpodautoscaling,nodelifecycle",
        );
        let d = self.dir.path().to_path_buf();
        let sched = spawn(
            "kube-scheduler",
            Command::new(testbed("kube-scheduler"))
                .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
                .arg(format!(
                    "--authentication-kubeconfig={}",
                    self.kubeconfig.display()
                ))
                .arg(format!(
                    "--authorization-kubeconfig={}",
                    self.kubeconfig.display()
                ))
                .arg("--leader-elect=false")
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--secure-port={}", free_port()))
                .arg("--v=1"),
            &d.join("kube-scheduler.log"),
        );
        self.procs.push(("kube-scheduler".to_string(), sched));
        let kwok = spawn(
            "kwok",
            Command::new(testbed("kwok"))
                .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
                .arg(format!(
                    "--config={}",
                    testbed("kwok-stages.yaml").display()
                ))
                .arg("--manage-all-nodes=false")
                .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
                .arg("--node-ip=127.0.0.1")
                .arg("--node-lease-duration-seconds=40")
                .arg("--cidr=10.244.0.0/16"),
            &d.join("kwok.log"),
        );
        self.procs.push(("kwok".to_string(), kwok));
        for n in GPU_NODES {
            self.apply_ok(&serde_json::to_string(&sim_node(n)).unwrap());
        }
        self.start_lws_controller();
        self.create_gateway();
        for n in GPU_NODES {
            self.wait_for(
                &["wait", "--for=condition=Ready", &format!("node/{}", n.name)],
                Duration::from_secs(60),
            );
        }
    }

    /// Installs the real CRDs of the reconciler's children (server-side: the LeaderWorkerSet CRD
    /// is 1.2 MB, over client-side apply's annotation limit) and waits until they are served.
    pub fn install_third_party_crds(&self) {
        let dir = third_party_crd_dir();
        for f in THIRD_PARTY_CRDS {
            let path = dir.join(f);
            assert!(
                path.exists(),
                "{} missing: the suite reads the real third-party CRDs from ../shared/reference",
                path.display()
            );
            self.kubectl_ok(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                path.to_str().unwrap(),
            ]);
        }
        for crd in [
            "leaderworkersets.leaderworkerset.x-k8s.io",
            "gateways.gateway.networking.k8s.io",
            "gatewayclasses.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
            "inferencepools.inference.networking.k8s.io",
            "inferencepools.inference.networking.x-k8s.io",
            "scaledobjects.keda.sh",
        ] {
            self.wait_for(
                &["wait", "--for=condition=Established", &format!("crd/{crd}")],
                Duration::from_secs(60),
            );
        }
    }

    /// A GatewayClass and the Gateway the shipped presets name (`llmisvc-system/llmisvc-gateway`),
    /// accepting routes from every namespace. No gateway controller runs: status is the tests'.
    pub fn create_gateway(&self) {
        let _ = self.kubectl(&["create", "namespace", GATEWAY_NAMESPACE]);
        self.apply_ok(&format!(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: llmisvc-e2e
spec:
  controllerName: example.com/llmisvc-e2e
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {GATEWAY_NAME}
  namespace: {GATEWAY_NAMESPACE}
spec:
  gatewayClassName: llmisvc-e2e
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    allowedRoutes:
      namespaces:
        from: All
"#
        ));
    }

    /// The LeaderWorkerSet manager (sigs.k8s.io/lws) and its CRDs, out of cluster: leader election and its
    /// internal certificate management off, its webhooks (LeaderWorkerSet defaulting and
    /// validation, the pod webhook that labels group pods) served on a free port with a
    /// certificate of ours and registered by URL. Waits until the pod webhook answers.
    pub fn start_lws_controller(&mut self) {
        let d = self.dir.path().join("lws");
        std::fs::create_dir_all(&d).unwrap();
        super::server::gen_certs(&d);
        // The controller's own CRDs (its LeaderWorkerSet CRD replaces the older reference one:
        // the controller relies on fields that one prunes).
        for crd in ["lws-crd.yaml", "lws-disaggregatedset-crd.yaml"] {
            self.kubectl_ok(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                testbed(crd).to_str().unwrap(),
            ]);
        }
        self.wait_for(
            &[
                "wait",
                "--for=condition=Established",
                "crd/disaggregatedsets.disaggregatedset.x-k8s.io",
            ],
            Duration::from_secs(60),
        );
        let port = free_port();
        let config = d.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: config.lws.x-k8s.io/v1alpha1\nkind: Configuration\nleaderElection:\n  leaderElect: false\ninternalCertManagement:\n  enable: false\nhealth:\n  healthProbeBindAddress: \"0\"\nmetrics:\n  bindAddress: \"0\"\nwebhook:\n  host: 127.0.0.1\n  port: {port}\n  certDir: {}\n",
                d.display()
            ),
        )
        .unwrap();
        let lws = spawn(
            "lws-controller",
            Command::new(testbed("lws-controller"))
                .arg(format!("--config={}", config.display()))
                .arg("--zap-log-level=info")
                .env("KUBECONFIG", &self.kubeconfig),
            &self.dir.path().join("lws-controller.log"),
        );
        self.procs.push(("lws-controller".to_string(), lws));
        // The module's webhook manifests, pointed at the manager by URL.
        let ca = base64_std(&std::fs::read(d.join("ca.crt")).unwrap());
        let text = std::fs::read_to_string(testbed("lws-webhooks.yaml")).unwrap();
        for doc in text.split("\n---") {
            if doc.trim().is_empty() {
                continue;
            }
            let mut v: Value = serde_norway::from_str(doc).unwrap();
            if v.is_null() {
                continue;
            }
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            v["metadata"]["name"] = json!(format!("lws-{}", kind.to_lowercase()));
            for wh in v["webhooks"].as_array_mut().unwrap() {
                let path = wh["clientConfig"]["service"]["path"]
                    .as_str()
                    .unwrap()
                    .to_string();
                wh["clientConfig"] = json!({
                    "url": format!("https://127.0.0.1:{port}{path}"),
                    "caBundle": ca,
                });
            }
            self.apply_ok(&v.to_string());
        }
        // The pod webhook has failurePolicy Fail: wait until a dry-run LeaderWorkerSet passes
        // the defaulting webhook, i.e. the manager serves.
        let probe = r#"{"apiVersion":"leaderworkerset.x-k8s.io/v1","kind":"LeaderWorkerSet","metadata":{"name":"probe","namespace":"default"},"spec":{"leaderWorkerTemplate":{"size":1,"workerTemplate":{"spec":{"containers":[{"name":"c","image":"x"}]}}}}}"#;
        let start = Instant::now();
        loop {
            let out = self.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], probe);
            if out.status.success() {
                break;
            }
            self.assert_running("lws-controller");
            if start.elapsed() > Duration::from_secs(90) {
                panic!(
                    "the LeaderWorkerSet webhooks never answered: {}\n--- lws-controller log ---\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail("lws-controller", 40)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Panics with the log tail if the named process has exited.
    pub fn assert_running(&mut self, name: &str) {
        let exited = self
            .procs
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, p)| p.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!("{name} exited with {status}:\n{}", self.log_tail(name, 40));
        }
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            for (name, p) in self.procs.iter_mut() {
                if let Ok(Some(status)) = p.try_wait() {
                    let name = name.clone();
                    panic!("{name} exited with {status}:\n{}", self.log_tail(&name, 40));
                }
            }
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                // The default namespace and RBAC bootstrap can lag readiness a little.
                if self
                    .kubectl(&["get", "namespace", "default"])
                    .status
                    .success()
                {
                    return;
                }
            }
            if start.elapsed() > timeout {
                panic!(
                    "kube-apiserver not ready after {timeout:?}:\n{}\n--- log tail ---\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail("kube-apiserver", 40)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The last `n` lines of a process's log.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// kubectl of the test bed's release, on this cluster.
    pub fn kubectl_cmd(&self) -> Command {
        let mut c = Command::new(testbed("kubectl"));
        c.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        c
    }

    /// Runs kubectl with the given arguments.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd()
            .args(args)
            .output()
            .expect("the test bed's kubectl")
    }

    /// Runs kubectl with `stdin` piped in (for `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .kubectl_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the test bed's kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and panics with its output unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl apply -f -` that must succeed; returns stdout.
    pub fn apply_ok(&self, manifest: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(
            out.status.success(),
            "kubectl apply failed:\n{}{}\n--- manifest ---\n{manifest}\n--- kube-apiserver log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail("kube-apiserver", 30)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits until `kubectl args` succeeds.
    pub fn wait_for(&self, args: &[&str], timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = self.kubectl(args);
            if out.status.success() {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out on kubectl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A Node object kwok manages (annotation `kwok.x-k8s.io/node: fake`), with its capacity.
pub fn sim_node(n: &SimNode) -> Value {
    let mut labels = json!({
        "type": "kwok",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    });
    for (k, v) in n.labels {
        labels[*k] = json!(v);
    }
    let capacity = json!({
        "cpu": "128",
        "memory": "1Ti",
        "pods": "110",
        "ephemeral-storage": "2Ti",
        n.resource: n.gpus.to_string(),
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    })
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, p) in self.procs.iter_mut().rev() {
            // SAFETY: sending SIGTERM to a child we own.
            unsafe {
                libc::kill(p.id() as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, p) in self.procs.iter_mut().rev() {
            loop {
                match p.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = p.kill();
                        let _ = p.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}
