//! Repository hygiene, as ordinary tests (`cargo test -p xtask`):
//! module docs present, no ignored or should-panic tests, `unsafe` forbidden
//! outside the plugin crates, the wall clock read only by rota-clock, every
//! crate in ARCHITECTURE.md, and the dependency direction of architecture.md
//! enforced from `cargo metadata`.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Who may depend on whom (architecture.md, "Dependency direction").
    /// A workspace package missing here is an error: add its row.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("rota-clock", &[]),
        // Tests only (a dev-dependency of the others).
        (
            "rota-test-support",
            &["rota-clock", "rota-kms", "rota-local", "rota-rotation"],
        ),
        ("rota-kms", &["rota-clock"]),
        ("rota-local", &["rota-kms", "rota-clock"]),
        ("rota-scheduler", &["rota-clock"]),
        (
            "rota-rotation",
            &["rota-kms", "rota-scheduler", "rota-clock"],
        ),
        (
            "rota-engine",
            &["rota-kms", "rota-rotation", "rota-scheduler", "rota-clock"],
        ),
        ("rota-script", &["rota-rotation", "rota-kms", "rota-clock"]),
        ("rota-plugin-abi", &[]),
        (
            "rota-plugin-host",
            &["rota-rotation", "rota-plugin-abi", "rota-clock"],
        ),
        (
            "rota-cli",
            &[
                "rota-clock",
                "rota-kms",
                "rota-local",
                "rota-scheduler",
                "rota-rotation",
                "rota-engine",
                "rota-script",
                "rota-plugin-abi",
                "rota-plugin-host",
            ],
        ),
        ("xtask", &[]),
    ];

    /// Crates allowed to contain `unsafe` (in one module, with SAFETY comments).
    const UNSAFE_CRATES: &[&str] = &["rota-plugin-abi", "rota-plugin-host"];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn all_rust_files() -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in ["crates", "plugins", "tests", "xtask"] {
            rust_files(&root().join(dir), &mut files);
        }
        files
    }

    #[test]
    fn tidy_module_docs_present() {
        let mut missing = Vec::new();
        for f in all_rust_files() {
            let text = std::fs::read_to_string(&f).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(f.strip_prefix(root()).unwrap().display().to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "files without a `//!` module doc at the top:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn tidy_no_ignored_or_should_panic_tests() {
        let banned = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
        let mut hits = Vec::new();
        for f in all_rust_files() {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                if banned.iter().any(|b| line.contains(b)) {
                    hits.push(format!(
                        "{}:{}: {}",
                        f.strip_prefix(root()).unwrap().display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
        assert!(
            hits.is_empty(),
            "ignored or should_panic tests are not allowed:\n{}",
            hits.join("\n")
        );
    }

    /// The only file that reads the system's time directly: everything else
    /// asks a `Clock` (rota-clock), so that tests can fix "now".
    const WALL_CLOCK_READERS: &[&str] = &["crates/rota-clock/src/lib.rs"];

    #[test]
    fn tidy_wall_clock_read_only_through_rota_clock() {
        // Built with concat! so this file does not match itself.
        let banned = [
            concat!("Utc", "::now("),
            concat!("SystemTime", "::now("),
            concat!("Local", "::now("),
            concat!("chrono::", "Local"),
            concat!("OffsetDateTime", "::now"),
        ];
        let mut hits = Vec::new();
        for f in all_rust_files() {
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            if WALL_CLOCK_READERS.contains(&rel.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                if banned.iter().any(|b| line.contains(b)) {
                    hits.push(format!("{rel}:{}: {}", i + 1, line.trim()));
                }
            }
        }
        assert!(
            hits.is_empty(),
            "read the time through a rota_clock::Clock (the process's clock, or \
             rota_test_support's in tests), not the system directly \
             (monotonic Instant is fine for durations):\n{}",
            hits.join("\n")
        );
    }

    #[derive(Debug)]
    struct Package {
        name: String,
        manifest: PathBuf,
        internal_deps: BTreeSet<String>,
        has_lib: bool,
    }

    fn workspace_packages() -> Vec<Package> {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pkgs = meta["packages"].as_array().unwrap();
        let names: BTreeSet<String> = pkgs
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        pkgs.iter()
            .map(|p| Package {
                name: p["name"].as_str().unwrap().to_owned(),
                manifest: PathBuf::from(p["manifest_path"].as_str().unwrap()),
                internal_deps: p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    // Dev-dependencies (tests) may reach anything, like rota-e2e.
                    .filter(|d| d["kind"].is_null())
                    .filter_map(|d| d["name"].as_str())
                    .filter(|n| names.contains(*n))
                    .map(str::to_owned)
                    .collect(),
                has_lib: p["targets"].as_array().unwrap().iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k == "lib" || k == "cdylib")
                }),
            })
            .collect()
    }

    #[test]
    fn tidy_dependency_direction() {
        let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
        let mut problems = Vec::new();
        for p in workspace_packages() {
            // Shipped native plugins may depend on rota-plugin-abi only; the
            // end-to-end test package may depend on anything.
            let rule: Vec<&str> = if p.manifest.starts_with(root().join("plugins")) {
                vec!["rota-plugin-abi"]
            } else if p.name == "rota-e2e" {
                continue;
            } else {
                match allowed.get(p.name.as_str()) {
                    Some(r) => r.to_vec(),
                    None => {
                        problems.push(format!("{}: not in the dependency table; add a row in tidy.rs and architecture.md", p.name));
                        continue;
                    }
                }
            };
            for dep in &p.internal_deps {
                if !rule.contains(&dep.as_str()) {
                    problems.push(format!(
                        "{} -> {dep} is not an allowed dependency edge",
                        p.name
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "dependency direction violated:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn tidy_unsafe_forbidden_outside_plugin_crates() {
        let mut problems = Vec::new();
        for p in workspace_packages() {
            if !p.has_lib
                || UNSAFE_CRATES.contains(&p.name.as_str())
                || p.manifest.starts_with(root().join("plugins"))
            {
                continue;
            }
            let lib = p.manifest.parent().unwrap().join("src/lib.rs");
            let Ok(text) = std::fs::read_to_string(&lib) else {
                continue;
            };
            if !text.contains("#![forbid(unsafe_code)]") {
                problems.push(format!(
                    "{}: src/lib.rs lacks #![forbid(unsafe_code)]",
                    p.name
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn tidy_every_crate_in_architecture_md() {
        let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md exists");
        let missing: Vec<String> = workspace_packages()
            .into_iter()
            .map(|p| p.name)
            .filter(|n| !arch.contains(&format!("`{n}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "crates missing from ARCHITECTURE.md's code map: {missing:?}"
        );
    }
}
