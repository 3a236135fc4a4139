//! `rota local …`: the embedded local Alibaba Cloud as a server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use rota_local::server::{ServerConfig, serve};
use rota_local::{LocalCloud, World};

use crate::cli::{GlobalArgs, LocalCommand};

/// The data directory when none is given: `.rota/` in the current directory.
pub(crate) const DEFAULT_DATA_DIR: &str = ".rota";

/// Runs `rota local …`.
pub(crate) async fn run(command: LocalCommand, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        LocalCommand::Serve {
            addr,
            world,
            access_key_id,
            access_key_secret,
        } => {
            let data_dir = global
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let world = load_world(world.as_deref())?;
            let mut options = LocalCloud::options(&data_dir).world(world);
            if let (Some(id), Some(secret)) = (access_key_id, access_key_secret) {
                options = options.root_key(id, secret);
            }
            let cloud = options.open().await.with_context(|| {
                format!("cannot open the local cloud in {}", data_dir.display())
            })?;
            let root = cloud.root_key().clone();
            let handle = serve(
                cloud,
                ServerConfig {
                    addr,
                    ..ServerConfig::default()
                },
            )
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
            // The first line is the contract scripts and tests read. A reader
            // that goes away must not take the server down: write errors
            // (a closed pipe) are ignored.
            let key_line = match &root.file {
                Some(file) => format!(
                    "root access key {} (its secret is in {}{})",
                    root.access_key_id,
                    file.display(),
                    if root.generated_now {
                        ", generated now"
                    } else {
                        ""
                    }
                ),
                None => format!(
                    "root access key {} (given on the command line or in the environment)",
                    root.access_key_id
                ),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on http://{}", handle.local_addr());
            let _ = writeln!(out, "{key_line}");
            let _ = writeln!(out, "data directory {}", data_dir.display());
            let _ = out.flush();
            drop(out);
            shutdown_signal().await;
            eprintln!("stopping: finishing requests in flight");
            handle.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads a world file, or the default world.
pub(crate) fn load_world(path: Option<&Path>) -> Result<World> {
    match path {
        Some(p) => World::load(p).with_context(|| format!("invalid world file {}", p.display())),
        None => Ok(World::default()),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
