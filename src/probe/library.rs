//! The probe library's bytes (built by the build script, embedded in this binary) and writing
//! them into a folder to be preloaded from, so an installed termwatch needs no file beside it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The library, as built for this binary's target.
pub const BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libtermwatch_probe.so"));

/// File name of the written library.
pub const FILE_NAME: &str = "libtermwatch_probe.so";

/// Writes the library into `dir` (which should be private to this run) and returns its path.
/// The path must not contain `:` or a space, which `LD_PRELOAD` would split on.
pub fn materialize(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    if path.to_string_lossy().contains([':', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: LD_PRELOAD cannot name a path with `:` or a space",
                path.display()
            ),
        ));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(&path)?;
    file.write_all(BYTES)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_elf_shared_object_that_defines_the_wrapped_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = materialize(dir.path()).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
        let text = String::from_utf8_lossy(&bytes);
        for name in [
            "zmq_socket",
            "zmq_close",
            "zmq_ctx_destroy",
            "zmq_msg_recv",
            "zmq_poll",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(text.contains(super::super::wire::ENV));
        assert!(materialize(dir.path()).is_err(), "never overwrites");
    }

    #[test]
    fn refuses_a_folder_ld_preload_would_split() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a b");
        fs::create_dir(&odd).unwrap();
        let err = materialize(&odd).unwrap_err();
        assert!(err.to_string().contains("LD_PRELOAD"), "{err}");
    }
}
