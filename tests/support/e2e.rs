//! Helpers shared by the real-cluster tests: the `llmisvc reconcile` process, waiting, and
//! reading a service's status.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster::Cluster;

/// A running `llmisvc reconcile`, killed on drop.
pub struct Reconciler {
    child: Child,
    log: PathBuf,
}

impl Reconciler {
    /// `llmisvc reconcile` as the cluster admin, Lease in `default`.
    pub fn start(cluster: &Cluster, tag: &str) -> Reconciler {
        Self::start_with(cluster, tag, &cluster.kubeconfig, "default", &[])
    }

    pub fn start_with(
        cluster: &Cluster,
        tag: &str,
        kubeconfig: &Path,
        lease_ns: &str,
        extra: &[&str],
    ) -> Reconciler {
        Self::spawn(cluster, tag, kubeconfig, lease_ns, Some(3), extra)
    }

    /// As [`Reconciler::start`] with a Lease of `lease_secs` seconds (`None`: the binary's
    /// default `--lease-duration`; the tests otherwise use 3 s for quick failovers).
    pub fn start_with_lease(cluster: &Cluster, tag: &str, lease_secs: Option<u64>) -> Reconciler {
        Self::spawn(
            cluster,
            tag,
            &cluster.kubeconfig,
            "default",
            lease_secs,
            &[],
        )
    }

    fn spawn(
        cluster: &Cluster,
        tag: &str,
        kubeconfig: &Path,
        lease_ns: &str,
        lease_secs: Option<u64>,
        extra: &[&str],
    ) -> Reconciler {
        let log = cluster.dir.path().join(format!("reconciler-{tag}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmisvc"));
        cmd.args([
            "reconcile",
            "--lease-namespace",
            lease_ns,
            "--resync",
            "600",
        ]);
        if let Some(secs) = lease_secs {
            cmd.args(["--lease-duration", &secs.to_string()]);
        }
        cmd.args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", format!("reconciler-{tag}"))
            .env("RUST_LOG", "info,llmisvc=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe; runs in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Reconciler {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    /// The process id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// Polls `f` every 300 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `kubectl get -o json` of one object, or `None` when it does not exist.
pub fn get_json(cluster: &Cluster, kind: &str, name: &str, ns: &str) -> Option<Value> {
    let out = cluster.kubectl(&["get", kind, name, "-n", ns, "-o", "json"]);
    out.status
        .success()
        .then(|| json_of(&String::from_utf8_lossy(&out.stdout)))
}

pub fn condition<'a>(obj: &'a Value, t: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

pub fn cond<'a>(obj: &'a Value, t: &str) -> Option<&'a str> {
    condition(obj, t)?["status"].as_str()
}

pub fn reason<'a>(obj: &'a Value, t: &str) -> Option<&'a str> {
    condition(obj, t)?["reason"].as_str()
}

/// Writes `status` (merge patch) through the status subresource of an object, as its
/// controller would; retried for 30 s (the object may not exist yet).
pub fn patch_status(cluster: &Cluster, kind: &str, name: &str, ns: &str, status: Value) {
    let body = serde_json::json!({ "status": status }).to_string();
    wait_until(
        &format!("status of {kind} {ns}/{name}"),
        Duration::from_secs(30),
        || {
            cluster
                .kubectl(&[
                    "patch",
                    kind,
                    name,
                    "-n",
                    ns,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &body,
                ])
                .status
                .success()
                .then_some(())
        },
    );
}

/// A finished command's stdout followed by its stderr (what a user sees on the terminal).
pub fn combined_output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
