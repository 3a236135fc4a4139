//! The host of Rota's native rotation plugins: shared libraries that export
//! the C ABI of `rota-plugin-abi`, loaded with libloading.
//!
//! - [`load`] opens one library: if a `plugin.toml` beside it pins a
//!   `sha256`, the file's digest is checked first; then the entry symbol
//!   `rota_plugin_v1` is looked up and the returned table's `abi_version`
//!   and `struct_size` are checked **before any other call**; then the
//!   plugin describes itself. Every refusal is a [`LoadError`] naming the
//!   file and the reason (wrong ABI version, missing symbol, not a library,
//!   checksum mismatch). Libraries are **never unloaded**: a function
//!   pointer into an unloaded library is undefined behaviour, and a plugin
//!   thread may still be running after a deadline.
//! - [`discover`] loads every library in plugin directories (`plugins/` and
//!   configured paths), directly inside or one folder down.
//! - A [`LoadedPlugin`] implements the engine's `RotationPlugin`: each step
//!   runs on a blocking thread with the step's deadline. A native plugin
//!   cannot be killed: one that overruns is reported as
//!   `PluginError::DeadlineExceeded`, its thread is left to finish, and its
//!   eventual result is ignored, so the runner never blocks on it.
//!
//! Step payloads carry secret values; they are never logged. All `unsafe`
//! code is in one private module, each block with a `// SAFETY:` comment.

#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod ffi;
mod plugin;

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub use ffi::StepKind;
pub use plugin::LoadedPlugin;

/// Why a library was not loaded as a plugin. Rota keeps running: the other
/// plugins load, and a secret that names this one fails to resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The dynamic loader refused the file (not a shared library, wrong
    /// architecture, missing dependencies).
    #[error("{}: not a loadable library: {reason}", path.display())]
    NotLoadable {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// A library without the entry symbol.
    #[error("{}: not a Rota plugin: no symbol {symbol}", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The entry symbol returned no table.
    #[error("{}: the plugin refused to load (its entry symbol returned no table)", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
    },
    /// The table's ABI major version is not the host's.
    #[error("{}: plugin ABI version {found} is not supported: this Rota speaks ABI {expected}; rebuild the plugin against rota-plugin-abi {expected}", path.display())]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's `major.minor`.
        found: String,
        /// The host's `major.minor`.
        expected: String,
    },
    /// The table is smaller than ABI 1.0's.
    #[error("{}: the plugin table is {size} bytes, smaller than the {expected} of ABI 1.0", path.display())]
    TableTooSmall {
        /// The file.
        path: PathBuf,
        /// Its `struct_size`.
        size: u32,
        /// The minimum.
        expected: u32,
    },
    /// A required function of the plugin table is NULL.
    #[error("{}: the plugin table's required function `{field}` is NULL", path.display())]
    MissingFunction {
        /// The file.
        path: PathBuf,
        /// The table field.
        field: &'static str,
    },
    /// The library's SHA-256 is not the one `plugin.toml` pins.
    #[error("{}: checksum mismatch: plugin.toml pins sha256 {expected}, the file has {actual}", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Pinned.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// `plugin.toml` is malformed.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The plugin's `describe` failed or answered nonsense.
    #[error("{}: the plugin's description is unusable: {reason}", path.display())]
    Describe {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The manifest a native plugin may have beside its library: `sha256`
/// pins the library's digest, `library` names the file the pin applies to.
/// Any other key is refused (a typo must not disable the pin).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The library the pin applies to (a file name in the same folder);
    /// absent: every library in the folder.
    #[serde(default)]
    library: Option<String>,
    /// Lower-case hex SHA-256 of the library file.
    #[serde(default)]
    sha256: Option<String>,
}

/// Whether `path` has the platform's shared-library suffix.
pub fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Checks the `plugin.toml` beside `path`, if any; returns the file's digest.
fn check_pin(path: &Path) -> Result<String, LoadError> {
    let actual = sha256_file(path)?;
    let Some(dir) = path.parent() else {
        return Ok(actual);
    };
    let manifest_path = dir.join("plugin.toml");
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(actual),
        Err(source) => {
            return Err(LoadError::Io {
                path: manifest_path,
                source,
            });
        }
    };
    let manifest: Manifest = toml::from_str(&text).map_err(|e| LoadError::Manifest {
        path: manifest_path.clone(),
        reason: e.to_string(),
    })?;
    let applies = match &manifest.library {
        Some(name) => path.file_name().is_some_and(|f| f == name.as_str()),
        None => true,
    };
    match manifest.sha256 {
        Some(expected) if applies => {
            let expected = expected.trim().to_ascii_lowercase();
            if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LoadError::Manifest {
                    path: manifest_path,
                    reason: "sha256 must be 64 hex digits".into(),
                });
            }
            if expected != actual {
                return Err(LoadError::ChecksumMismatch {
                    path: path.to_owned(),
                    expected,
                    actual,
                });
            }
            Ok(actual)
        }
        _ => Ok(actual),
    }
}

/// Loads the native plugin at `path`: checksum pin, entry symbol, version
/// handshake, description. The library stays loaded for the life of the
/// process, whatever the outcome.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let sha256 = check_pin(path)?;
    let table = ffi::open(path)?;
    LoadedPlugin::new(table, path.to_owned(), sha256)
}

/// The libraries in `dirs`: files with the platform's library suffix
/// directly in a directory or in one of its subfolders (`plugins/<name>/`),
/// sorted by path. Missing directories are skipped.
pub fn find_libraries(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for dir in dirs {
        for entry in list(dir) {
            if entry.is_dir() {
                found.extend(list(&entry).into_iter().filter(|p| is_library(p)));
            } else if is_library(&entry) {
                found.push(entry);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Loads every library [`find_libraries`] finds, each with its outcome, so
/// `rota plugins list` can show the plugins and the refusals side by side.
pub fn discover(dirs: &[PathBuf]) -> Vec<(PathBuf, Result<LoadedPlugin, LoadError>)> {
    find_libraries(dirs)
        .into_iter()
        .map(|p| {
            let r = load(&p);
            (p, r)
        })
        .collect()
}
