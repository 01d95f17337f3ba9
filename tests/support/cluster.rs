//! A real control plane for the end-to-end suite: etcd and kube-apiserver v1.20.2 on loopback,
//! on random free ports, in a temp dir, driven with kubectl.
//!
//! Binaries come from `tests/e2e/provision.sh` (Debian's packages; cached under
//! `~/.cache/llmisvc/k8s`). Processes are stopped when the `Cluster` is dropped, including when
//! a test panics, and get SIGKILL from the kernel if the test process itself dies.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub token: String,
    procs: Vec<(String, Child)>,
}

/// Where provision.sh caches the Kubernetes binaries.
pub fn k8s_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LLMISVC_K8S_CACHE") {
        return PathBuf::from(dir).join("bin");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/llmisvc/k8s/bin")
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

impl Cluster {
    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub fn start() -> Cluster {
        let bin = k8s_bin_dir();
        let apiserver = bin.join("kube-apiserver");
        assert!(
            apiserver.exists(),
            "{} is missing: run tests/e2e/provision.sh (README's test command does)",
            apiserver.display()
        );
        // LLMISVC_E2E_KEEP=1 keeps the temp dir (logs, kubeconfig) for debugging.
        let dir = tempfile::Builder::new()
            .prefix("llmisvc-e2e-")
            .disable_cleanup(std::env::var_os("LLMISVC_E2E_KEEP").is_some())
            .tempdir()
            .unwrap();
        let d = dir.path();
        let mut procs = Vec::new();

        let (client, peer) = (free_port(), free_port());
        let etcd = spawn(
            "etcd",
            Command::new("etcd")
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
                .arg("--insecure-port=0")
                .arg(format!("--cert-dir={}", d.join("pki").display()))
                .arg(format!("--service-account-key-file={}", d.join("sa.pub").display()))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    d.join("sa.key").display()
                ))
                .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
                .arg(format!("--token-auth-file={}", d.join("tokens.csv").display()))
                .arg("--authorization-mode=RBAC")
                .arg("--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook")
                .arg("--service-cluster-ip-range=10.96.0.0/24")
                .arg("--enable-priority-and-fairness=false")
                .arg("--allow-privileged=true")
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
        cluster.wait_ready(Duration::from_secs(90));
        cluster
    }

    /// Starts kube-controller-manager with only the garbage collector and namespace
    /// controllers (owner-reference cascading deletion; no Deployment/ReplicaSet controllers,
    /// so workload status is whatever a test writes).
    pub fn start_controller_manager(&mut self) {
        let bin = k8s_bin_dir().join("kube-controller-manager");
        let d = self.dir.path().to_path_buf();
        let kcm = spawn(
            "kube-controller-manager",
            Command::new(&bin)
                .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
                .arg("--controllers=garbagecollector,namespace")
                .arg("--leader-elect=false")
                .arg("--port=0")
                .arg("--secure-port=0")
                .arg("--use-service-account-credentials=false")
                .arg("--v=1"),
            &d.join("kube-controller-manager.log"),
        );
        self.procs
            .push(("kube-controller-manager".to_string(), kcm));
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

    pub fn kubectl_cmd(&self) -> Command {
        let mut c = Command::new("kubectl");
        c.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        c
    }

    /// Runs kubectl with the given arguments.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd()
            .args(args)
            .output()
            .expect("kubectl on PATH")
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
            .expect("kubectl on PATH");
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
