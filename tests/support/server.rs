//! Runs the real `llmisvc serve` binary for the real-cluster suite.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::free_port;

pub struct ServerProcess {
    pub port: u16,
    pub log: PathBuf,
    pub dir: PathBuf,
    child: Option<Child>,
}

pub fn llmisvc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmisvc"))
}

/// `llmisvc certs` into `dir` for 127.0.0.1/localhost.
pub fn gen_certs(dir: &Path) {
    let out = llmisvc()
        .args(["certs", "--out-dir"])
        .arg(dir)
        .args(["--dns", "localhost", "--ip", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs an llmisvc subcommand and returns stdout (panics on failure).
pub fn llmisvc_ok(args: &[&str]) -> String {
    let out = llmisvc().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "llmisvc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl ServerProcess {
    /// Starts `llmisvc serve` with the certificates in `dir` and extra arguments.
    pub fn start(dir: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_on(dir, free_port(), extra)
    }

    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> ServerProcess {
        let cert = format!("--tls-cert={}", dir.join("tls.crt").display());
        let key = format!("--tls-key={}", dir.join("tls.key").display());
        let mut args = vec![cert.as_str(), key.as_str()];
        args.extend_from_slice(extra);
        Self::spawn(dir, port, &args, &[])
    }

    /// `llmisvc serve --addr 127.0.0.1:PORT ARGS...` with extra environment variables.
    pub fn spawn(dir: &Path, port: u16, args: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
        let log = dir.join(format!("llmisvc-{port}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = llmisvc();
        cmd.arg("serve")
            .arg(format!("--addr=127.0.0.1:{port}"))
            .args(args)
            .envs(envs.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: async-signal-safe prctl between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let s = ServerProcess {
            port,
            log,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        s.wait_listening(Duration::from_secs(30));
        s
    }

    fn wait_listening(&self, timeout: Duration) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < timeout,
                "llmisvc did not listen:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id (for /proc/<pid>/status), 0 once stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs llmisvc on `cluster` the way the e2e tests need it: certificates from `llmisvc
/// certs`, `llmisvc serve` (with `extra` arguments) on a free port, the CRDs with their
/// conversion webhook and the webhook configurations pointing at it by URL with the CA bundle.
pub fn install(cluster: &super::cluster::Cluster, extra: &[&str]) -> ServerProcess {
    install_with_env(cluster, extra, &[])
}

/// [`install`], the server started with extra environment variables (e.g. `KUBECONFIG`).
pub fn install_with_env(
    cluster: &super::cluster::Cluster,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> ServerProcess {
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(&dir).unwrap();
    gen_certs(&dir);
    let cert = format!("--tls-cert={}", dir.join("tls.crt").display());
    let key = format!("--tls-key={}", dir.join("tls.key").display());
    let mut args = vec![cert.as_str(), key.as_str()];
    args.extend_from_slice(extra);
    let server = ServerProcess::spawn(&dir, free_port(), &args, envs);
    let ca = dir.join("ca.crt").display().to_string();
    let base = server.base_url();
    cluster.apply_ok(&llmisvc_ok(&[
        "crds",
        "--conversion-url",
        &base,
        "--ca-bundle",
        &ca,
    ]));
    cluster.apply_ok(&llmisvc_ok(&[
        "webhook-config",
        "--url",
        &base,
        "--ca-bundle",
        &ca,
    ]));
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
    server
}

/// The library's TLS server (`llmisvc::server::Server`) on a free loopback port in this
/// process: its address, the sender that stops it (graceful shutdown when sent or dropped) and
/// the task that ends when it has stopped.
pub async fn in_process(
    state: std::sync::Arc<llmisvc::server::AppState>,
    opts: llmisvc::server::ServerOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let server = llmisvc::server::Server::bind("127.0.0.1:0".parse().unwrap(), state, opts)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    (addr, stop, handle)
}
