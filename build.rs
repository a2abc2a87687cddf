//! Builds the probe library (`probe/src/lib.rs`, dependency-free, `no_std`) into `OUT_DIR` with
//! the same compiler cargo uses, so `cargo build` and `cargo install` ship it inside the
//! termwatch binary (see `src/probe/library.rs`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=probe/src");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let library = out.join("libtermwatch_probe.so");
    let mut command = Command::new(rustc);
    command
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "cdylib",
            "--crate-name",
            "termwatch_probe",
        ])
        // Link-time optimisation also drops core's unwinding glue, which would otherwise leave
        // an undefined `rust_eh_personality` in a `no_std` library. Symbols stay, so native
        // stacks through the probe name its functions.
        .args([
            "-C",
            "opt-level=3",
            "-C",
            "panic=abort",
            "-C",
            "lto",
            "-C",
            "strip=debuginfo",
        ])
        .arg("probe/src/lib.rs")
        .arg("-o")
        .arg(&library);
    let (target, host) = (env::var("TARGET"), env::var("HOST"));
    if let (Ok(target), Ok(host)) = (&target, &host)
        && target != host
    {
        command.args(["--target", target]);
    }
    let output = command.output().expect("the compiler cargo named runs");
    for line in String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.is_empty())
    {
        println!("cargo:warning=probe: {line}");
    }
    assert!(output.status.success(), "building the probe library failed");
}
