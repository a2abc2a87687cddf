//! Where a machine-readable report goes, and how it is written there without harming what is
//! at that path: `-` is stdout; a regular file (or a path where nothing is yet) is replaced
//! atomically by a new file with the mode the umask gives; a symbolic link is followed and its
//! target replaced; anything else (a FIFO, a device, and whatever `/dev/stdout` or another
//! file of the kernel's leads to) is written as a stream, as a shell redirection would.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Symbolic links followed before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// A destination given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: the process's stdout.
    Stdout,
    /// A path.
    Path(PathBuf),
}

impl Target {
    /// `-` is stdout; anything else a path.
    pub fn from_arg(arg: &OsStr) -> Self {
        if arg == "-" {
            Target::Stdout
        } else {
            Target::Path(PathBuf::from(arg))
        }
    }

    /// Whether it is stdout.
    pub fn is_stdout(&self) -> bool {
        *self == Target::Stdout
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Stdout => f.write_str("stdout"),
            Target::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What a path turned out to be, once its links are followed.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// A regular file, or nothing yet: replaced atomically.
    File(PathBuf),
    /// Anything else that can be opened for writing: written as a stream.
    Stream(PathBuf),
}

/// Folders of the kernel's own files (`/dev/stdout`, `/proc/self/fd/1`): whatever they lead
/// to is written as a stream, never replaced.
const KERNEL_FOLDERS: [&str; 2] = ["/dev", "/proc"];

/// Follows `path`'s symbolic links one by one (a dangling one names where the file will be
/// created); a path that is, or passes through, a kernel file is a stream.
fn resolve(path: &Path) -> io::Result<Resolved> {
    let stream = || Ok(Resolved::Stream(path.to_owned()));
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        if KERNEL_FOLDERS
            .iter()
            .any(|folder| current.starts_with(folder))
        {
            return stream();
        }
        let metadata = match std::fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Resolved::File(current)),
            Err(e) => return Err(e),
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&current)?;
            current = match current.parent() {
                Some(folder) => folder.join(target),
                None => target,
            };
        } else if kind.is_file() {
            return Ok(Resolved::File(current));
        } else if kind.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a folder",
            ));
        } else {
            return stream();
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// A new temporary file beside `path`, created with the mode the umask gives (as `open` with
/// 0666 does), to be renamed over `path`.
fn sibling_temp(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".termwatch-")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(folder)
}

/// Opens `target` for a stream of writes (JSON Lines). A regular file is replaced at once by a
/// new, empty one (a rename: whoever has the old one open keeps it whole), then written to.
pub fn open_stream(target: &Target) -> io::Result<Box<dyn Write + Send>> {
    match target {
        Target::Stdout => Ok(Box::new(io::LineWriter::new(io::stdout()))),
        Target::Path(path) => match resolve(path)? {
            Resolved::File(path) => {
                let file: File = sibling_temp(&path)?.persist(&path).map_err(|e| e.error)?;
                Ok(Box::new(io::LineWriter::new(file)))
            }
            Resolved::Stream(path) => Ok(Box::new(io::LineWriter::new(open_as_stream(&path)?))),
        },
    }
}

fn open_as_stream(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path)
}

/// A destination rewritten whole each time (JUnit): a file is replaced atomically every time,
/// so a reader (or a run killed half-way) never sees half a document; stdout and streams can
/// only be written once, so they get the last document.
#[derive(Debug)]
pub enum Document {
    /// Replaced on every [`Document::write`].
    File(PathBuf),
    /// Written once, by [`Document::write_last`].
    Stream(Box<StreamTarget>),
}

/// A stream opened at the start, written at the end.
#[derive(Debug)]
pub enum StreamTarget {
    /// stdout.
    Stdout,
    /// A FIFO, a device, …
    Opened(File),
}

impl Document {
    /// Resolves `target` and, for a stream, opens it now (a bad path is found before the run).
    /// A file is not touched until the first write.
    pub fn open(target: &Target) -> io::Result<Self> {
        match target {
            Target::Stdout => Ok(Document::Stream(Box::new(StreamTarget::Stdout))),
            Target::Path(path) => match resolve(path)? {
                Resolved::File(path) => {
                    sibling_temp(&path)?;
                    Ok(Document::File(path))
                }
                Resolved::Stream(path) => Ok(Document::Stream(Box::new(StreamTarget::Opened(
                    open_as_stream(&path)?,
                )))),
            },
        }
    }

    /// Replaces a file's document with `text`; a stream waits for the last one.
    pub fn write(&mut self, text: &str) -> io::Result<()> {
        match self {
            Document::File(path) => {
                let mut file = sibling_temp(path)?;
                file.write_all(text.as_bytes())?;
                file.persist(path).map_err(|e| e.error)?;
                Ok(())
            }
            Document::Stream(_) => Ok(()),
        }
    }

    /// Writes the final document.
    pub fn write_last(&mut self, text: &str) -> io::Result<()> {
        match self {
            Document::File(_) => self.write(text),
            Document::Stream(stream) => match stream.as_mut() {
                StreamTarget::Stdout => {
                    let mut out = io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()
                }
                StreamTarget::Opened(file) => file.write_all(text.as_bytes()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_dash_is_stdout() {
        assert_eq!(Target::from_arg(OsStr::new("-")), Target::Stdout);
        assert_eq!(
            Target::from_arg(OsStr::new("a.xml")),
            Target::Path("a.xml".into())
        );
    }

    /// A folder with `real.xml` and `link.xml` pointing at it.
    fn linked_file() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("real.xml");
        std::fs::write(&file, "old").unwrap();
        let link = dir.path().join("link.xml");
        symlink("real.xml", &link).unwrap();
        (dir, file, link)
    }

    #[test]
    fn links_are_followed_to_the_file_or_stream_they_name() {
        let (dir, file, link) = linked_file();
        assert_eq!(resolve(&link).unwrap(), Resolved::File(file.clone()));
        let dangling = dir.path().join("dangling.xml");
        symlink("new.xml", &dangling).unwrap();
        assert_eq!(
            resolve(&dangling).unwrap(),
            Resolved::File(dir.path().join("new.xml"))
        );
        let null = dir.path().join("null");
        symlink("/dev/null", &null).unwrap();
        assert_eq!(resolve(&null).unwrap(), Resolved::Stream(null.clone()));
        for kernel in ["/dev/stdout", "/proc/self/fd/1"] {
            assert_eq!(
                resolve(Path::new(kernel)).unwrap(),
                Resolved::Stream(kernel.into())
            );
        }
        let looped = dir.path().join("loop");
        symlink("loop", &looped).unwrap();
        assert!(resolve(&looped).is_err());
        assert!(resolve(dir.path()).is_err());
    }

    #[test]
    fn a_file_behind_a_link_is_replaced_and_the_link_kept() {
        let (dir, file, link) = linked_file();
        let mut document = Document::open(&Target::Path(link.clone())).unwrap();
        document.write("new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
