//! What the long-running commands (`serve`, `reconcile`) set up for their process: mimalloc's
//! options, logging, and the shutdown signal. A leaf: it imports no other module of the crate.

/// Log line format (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// tracing-subscriber's human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, event fields flattened into it.
    Json,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`). A second call does
/// nothing (the first subscriber stays).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

/// mimalloc's options for a server whose load comes in bursts. By default (mimalloc v3) freed
/// memory goes back to the system only after a second (`purge_delay` 1000 ms), in 2 MiB units
/// (transparent huge pages allowed), and arenas are committed eagerly: after a burst of large
/// reviews the process kept nearly all of its peak. Purging at once, without huge pages and
/// committing on demand lowers both the peak and the after-burst RSS (`tests/pure/memory.rs`,
/// docs/performance.md). mimalloc reads these when the process loads, before any Rust code
/// runs (some, like huge pages, cannot change later), so `serve` and `reconcile` re-execute
/// once with them set; variables already set (by the operator) are kept as they are.
const ALLOCATOR_ENV: [(&str, &str); 3] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_ALLOW_THP", "0"),
];

/// Re-executes the process with [`ALLOCATOR_ENV`] unless it already runs with it (or the
/// operator set `MIMALLOC_PURGE_DELAY`). Returns only when no re-execution happened. Used by
/// `serve` and `reconcile` (whose watch caches' initial LISTs are such a burst).
pub fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in ALLOCATOR_ENV {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // Only returns on failure; then serve with mimalloc's defaults.
    let e = cmd.exec();
    eprintln!("llmisvc: could not re-execute with the allocator options ({e}); continuing");
}

/// Resolves on SIGTERM or SIGINT (pending for ever if SIGTERM cannot be watched and no SIGINT
/// comes).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
