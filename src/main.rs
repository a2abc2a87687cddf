//! The `termwatch` binary: everything is in the library; this only sets up the harness's own
//! logs (stderr, filtered by `TERMWATCH_LOG`) and exits with the command's code.

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERMWATCH_LOG")
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    std::process::exit(termwatch::cli::main());
}
