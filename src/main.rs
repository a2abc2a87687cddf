//! The `termwatch` binary: everything is in the library (the command line in
//! [`termwatch::cli`], which also sets up the harness's own logs); this only exits with the
//! command's code.

fn main() {
    std::process::exit(termwatch::cli::main());
}
