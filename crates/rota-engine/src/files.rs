//! Reading the files a configuration or a command names: regular files
//! only (a FIFO would block forever, `/dev/zero` would never end) and at
//! most a bound, read without buffering more than the bound.

use std::io::Read as _;
use std::path::Path;

/// Configuration and variable files.
pub const CONFIG_LIMIT: u64 = 4 << 20;
/// `file()`, `templatefile()`, template files.
pub const FILE_LIMIT: u64 = 1 << 20;
/// A secret value (KMS takes at most 30,720 bytes; a little room for
/// KMS to say so itself).
pub const VALUE_LIMIT: u64 = 64 << 10;

/// The text of `path`, a regular UTF-8 file of at most `limit` bytes.
///
/// # Errors
///
/// A message naming what is wrong (not a regular file, too large, not
/// UTF-8, the OS error).
pub fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    read_limited(f, limit)
}

/// Reads `r` to its end, refusing more than `limit` bytes.
///
/// # Errors
///
/// Too large, not UTF-8, or the read error.
pub fn read_limited(r: impl std::io::Read, limit: u64) -> Result<String, String> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        return Err(format!("it is larger than {}", human(limit)));
    }
    String::from_utf8(buf).map_err(|_| "it is not UTF-8 text".into())
}

fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_large_files_are_refused() {
        assert_eq!(
            read_text(Path::new("/dev/zero"), 10).unwrap_err(),
            "it is not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 11]).unwrap();
        assert_eq!(read_text(&big, 10).unwrap_err(), "it is larger than 0 KiB");
        assert_eq!(read_text(&big, 11).unwrap(), "a".repeat(11));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(
                read_text(&fifo, 10).unwrap_err(),
                "it is not a regular file"
            );
        }
        assert!(read_limited(std::io::repeat(b'x'), 100).is_err());
    }
}
