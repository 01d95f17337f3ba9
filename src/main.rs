use clap::Parser;

fn main() -> std::process::ExitCode {
    llmisvc::cli::run(llmisvc::cli::Cli::parse())
}
