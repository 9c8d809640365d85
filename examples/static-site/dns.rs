//! The external side effect: a DNS record per site, kept in a directory standing in for a DNS
//! provider's API (one file per domain, holding the Service it points at). A real operator would
//! call its provider here; the finalizer logic around it is the same.

use std::io;
use std::path::{Path, PathBuf};

/// A directory of DNS records.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// Records under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Records from `STATIC_SITE_DNS_DIR`, or `static-site-dns` in the temporary directory.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("STATIC_SITE_DNS_DIR").map_or_else(
            || std::env::temp_dir().join("static-site-dns"),
            PathBuf::from,
        ))
    }

    fn path(&self, domain: &str) -> PathBuf {
        self.dir.join(domain)
    }

    /// Points `domain` at `target` (idempotent).
    pub fn upsert(&self, domain: &str, target: &str) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(domain);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == target) {
            return Ok(());
        }
        write_atomically(&path, target)
    }

    /// Removes `domain`'s record; a record already gone is success (cleanup may run twice).
    pub fn remove(&self, domain: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(domain)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn write_atomically(path: &Path, content: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, path)
}
