//! `rota local …`: the embedded local Alibaba Cloud as a server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use rota_local::server::{ServerConfig, serve};
use rota_local::{LocalCloud, World};

use crate::cli::{GlobalArgs, LocalCommand};
use crate::output::{errln, outln};

/// The data directory's name beside the configuration when none is given.
pub(crate) const DEFAULT_DATA_DIR: &str = ".rota";

/// Runs `rota local …`.
pub(crate) async fn run(command: LocalCommand, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        LocalCommand::World { world } => show_world(global, world.as_deref()).await,
        LocalCommand::Serve(args) => {
            let crate::cli::ServeArgs {
                addr,
                world,
                access_key_id,
                access_key_secret,
                no_auto_rotation,
                max_connections,
                header_timeout,
                body_timeout,
                metrics_addr,
                tls,
                tls_names,
                tls_cert,
                tls_key,
                http_addr,
                metadata_addr,
                metadata_instance,
                metadata_hardened,
            } = *args;
            let timeout = |text: &str, flag: &str| -> Result<std::time::Duration> {
                let d = crate::commands::rotation::parse_duration(text, flag)?;
                if d.is_zero() || d > std::time::Duration::from_secs(3600) {
                    anyhow::bail!("{flag} {text}: must be more than 0 and at most 1h");
                }
                Ok(d)
            };
            let header_timeout = timeout(&header_timeout, "--header-timeout")?;
            let body_timeout = timeout(&body_timeout, "--body-timeout")?;
            let (data_dir, world) = beside_config(global, world.as_deref())?;
            let mut options = LocalCloud::options(&data_dir)
                .clock(crate::clock::shared())
                .world(world)
                .automatic_rotation(!no_auto_rotation);
            if let (Some(id), Some(secret)) = (access_key_id, access_key_secret) {
                options = options.root_key(id, secret);
            }
            let cloud = options.open().await.with_context(|| {
                format!("cannot open the local cloud in {}", data_dir.display())
            })?;
            let root = cloud.root_key().clone();
            let (tls_config, ca) = match (tls, tls_cert, tls_key) {
                (false, _, _) => (None, None),
                (true, Some(cert), Some(key)) => {
                    let config = rota_local::tls::from_pem_files(&cert, &key)
                        .context("cannot serve HTTPS with --tls-cert and --tls-key")?;
                    (Some(config), None)
                }
                (true, _, _) => {
                    // Validity follows the machine's real clock, whatever
                    // clock the cloud runs on (ROTA_TEST_NOW): clients
                    // check it against theirs.
                    let real_now = rota_clock::Clock::now(&rota_clock::SystemClock::new());
                    let (config, ca) =
                        rota_local::tls::local_ca(&data_dir.join("tls"), &tls_names, real_now)
                            .context("cannot set up the local CA for --tls")?;
                    (Some(config), Some(ca))
                }
            };
            let metadata = match metadata_addr {
                Some(addr) => Some(
                    rota_local::metadata::serve_metadata(
                        cloud.clone(),
                        rota_local::metadata::MetadataConfig {
                            addr,
                            instance_id: metadata_instance,
                            hardened: metadata_hardened,
                        },
                    )
                    .await
                    .context("cannot start the ECS metadata service")?,
                ),
                None => None,
            };
            let handle = serve(
                cloud,
                ServerConfig {
                    addr,
                    max_connections,
                    header_timeout,
                    body_timeout,
                    metrics_addr,
                    tls: tls_config,
                    plain_addr: http_addr,
                    ..ServerConfig::default()
                },
            )
            .await
            .with_context(|| match http_addr {
                Some(plain) => format!("cannot listen on {addr} and {plain}"),
                None => format!("cannot listen on {addr}"),
            })?;
            // The first line is the contract scripts and tests read. A reader
            // that goes away must not take the server down: output never
            // fails (crate::output).
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
            let scheme = if tls { "https" } else { "http" };
            outln!("listening on {scheme}://{}", handle.local_addr());
            outln!("{key_line}");
            outln!("data directory {}", data_dir.display());
            if let Some(plain) = handle.plain_addr() {
                outln!("plain HTTP on http://{plain}");
            }
            if let Some(ca) = &ca {
                outln!(
                    "CA certificate {}{} (trust it in clients)",
                    ca.cert_path.display(),
                    if ca.generated_now {
                        ", generated now"
                    } else {
                        ""
                    }
                );
            }
            if let Some(m) = handle.metrics_addr() {
                outln!("metrics on http://{m}/metrics");
            }
            if let Some(m) = &metadata {
                outln!(
                    "ECS metadata service on http://{} (instance {}, role {})",
                    m.local_addr(),
                    m.instance_id(),
                    m.role()
                );
            }
            shutdown_signal().await;
            errln!("stopping: finishing requests in flight");
            handle.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rota local world`: a redacted view of the world's targets and state.
///
/// It finds the data directory and the world as the lifecycle commands do:
/// beside the configuration (`-c`, default the current directory), unless
/// `--data-dir` / `--world` say otherwise.
async fn show_world(global: &GlobalArgs, world: Option<&Path>) -> Result<ExitCode> {
    let (data_dir, world) = beside_config(global, world)?;
    if !data_dir.is_dir() {
        anyhow::bail!(
            "no local cloud in {} yet: run a command against it first (e.g. rota apply), or pass --data-dir",
            data_dir.display()
        );
    }
    // Inspection changes nothing: no automatic rotation, no roll-forward.
    let cloud = LocalCloud::options(&data_dir)
        .clock(crate::clock::shared())
        .world(world)
        .automatic_rotation(false)
        .recover(false)
        .open()
        .await
        .with_context(|| format!("cannot open the local cloud in {}", data_dir.display()))?;
    let snapshot = cloud.world_snapshot().await;
    crate::output::emit(global.output, &snapshot, |w| {
        let mut out = format!("account {}  region {}\n", w.account_id, w.region);
        if !w.kms_instances.is_empty() {
            out.push_str(&format!("kms instances: {}\n", w.kms_instances.join(", ")));
        }
        if !w.keys.is_empty() {
            out.push_str(&format!("keys: {}\n", w.keys.join(", ")));
        }
        for i in &w.ecs_instances {
            let role = i
                .ram_role
                .as_deref()
                .map(|r| format!(", role {r}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "ecs instance {} ({}, {}{role})\n",
                i.instance_id, i.os_type, i.region
            ));
            accounts(&mut out, &i.accounts);
        }
        for i in &w.rds_instances {
            let bound = i
                .bound_to
                .as_deref()
                .map(|b| format!(", bound to {b}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "rds instance {} ({}{bound})\n",
                i.instance_id, i.engine
            ));
            accounts(&mut out, &i.accounts);
        }
        for u in &w.ram_users {
            out.push_str(&format!("ram user {} ({})\n", u.name, u.principal));
            for k in &u.access_keys {
                out.push_str(&format!(
                    "  access key {} {}, created {}{}\n",
                    k.access_key_id,
                    k.status,
                    k.create_date,
                    held(&k.held_by)
                ));
            }
        }
        for r in &w.ram_roles {
            out.push_str(&format!(
                "ram role {} ({}), assumable by {}, sessions up to {} s{}\n",
                r.name,
                r.arn,
                r.trusted.join(", "),
                r.max_session_duration,
                if r.has_policy {
                    ", bounded by its policy"
                } else {
                    ""
                }
            ));
        }
        out.push_str(&format!(
            "cloud assistant invocations remembered: {}\n",
            w.invocations
        ));
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The data directory and the world, found as every command finds them:
/// `--data-dir`, else `.rota/` beside the configuration (`-c`, default the
/// current directory); `--world`, else `world.hcl` beside the
/// configuration when there is one, else the default world.
fn beside_config(global: &GlobalArgs, world: Option<&Path>) -> Result<(PathBuf, World)> {
    let config = global.config.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = if config.is_file() {
        config.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        config
    };
    let data_dir = global
        .data_dir
        .clone()
        .unwrap_or_else(|| root.join(DEFAULT_DATA_DIR));
    let beside = root.join("world.hcl");
    let world = match world {
        Some(p) => load_world(Some(p))?,
        None if beside.is_file() => load_world(Some(&beside))?,
        None => World::default(),
    };
    Ok((data_dir, world))
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

/// The account lines of `rota local world`: credential kind, when it
/// changed, and the secret versions that hold it.
fn accounts(out: &mut String, accounts: &[rota_local::targets::AccountSnapshot]) {
    for a in accounts {
        out.push_str(&format!(
            "  account {}: {}, changed {}{}\n",
            a.name,
            a.credential,
            a.changed,
            held(&a.held_by)
        ));
    }
}

/// `  <- v1, v2`: the secret versions that hold a credential.
fn held(by: &[String]) -> String {
    if by.is_empty() {
        String::new()
    } else {
        format!("  <- {}", by.join(", "))
    }
}
