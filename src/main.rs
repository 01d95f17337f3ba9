use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = llmisvc::cli::Cli::parse();
    if !matches!(
        cli.command,
        llmisvc::cli::Command::Serve(_) | llmisvc::cli::Command::Reconcile(_)
    ) {
        // The offline commands print to stdout like any CLI: `llmisvc render ... | head` ends
        // them quietly when the reader goes away (Rust ignores SIGPIPE, and a failed print
        // panics). The servers keep ignoring it: a closed socket is an error they handle.
        // SAFETY: setting a signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    llmisvc::cli::run(cli)
}
