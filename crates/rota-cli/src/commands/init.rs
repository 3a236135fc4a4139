//! `rota init [DIR]`: writes a commented starter configuration (`main.tf`)
//! and a local world (`world.hcl`) that `rota validate` accepts and
//! `rota apply --auto-approve` applies on the embedded default. Never
//! overwrites a file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::GlobalArgs;
use crate::output::{errln, outln};

const MAIN_TF: &str = r#"# Rota configuration: alicloud_kms_secret resources (the Terraform
# provider's syntax) and rotation blocks. `rota validate` checks it,
# `rota plan` shows what would change, `rota apply` makes it so.

# Without cloud credentials Rota runs against the embedded local cloud in
# .rota/ beside this file, with the resources declared in world.hcl. To use
# the real Alibaba Cloud, set credentials in the environment
# (ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET), pass
# --profile NAME, or uncomment the provider block below.
#
# provider "alicloud" {
#   region  = "cn-hangzhou"
#   profile = "default"            # an aliyun CLI profile, or:
#   # access_key = var.access_key  # never write keys into this file
#   # secret_key = var.secret_key
# }

variable "initial_token" {
  description = "the first value of app/api-token (rotation replaces it)"
  default     = "change-me-initial-value"
  sensitive   = true
}

resource "alicloud_kms_secret" "api_token" {
  secret_name = "app/api-token"
  secret_data = var.initial_token
  version_id  = "v1"
  description = "an API token rotated by Rota's password plugin"
}

# Rotate app/api-token every Sunday at 03:00 (Europe/Berlin) with the
# built-in password plugin: a new 32-character value, promoted to
# ACSCurrent once it is stored. `rota run` is the daemon that does it;
# `rota rotate app/api-token` rotates now.
rotation "api-token" {
  secrets  = ["alicloud_kms_secret.api_token"]
  schedule = "0 3 * * 0"
  timezone = "Europe/Berlin"
  window   = "2h"
  plugin   = "password"
  settings = { length = 32 }
  # rotate_immediately = true   # also rotate the first time it is scheduled
  # on_failure { webhook = "https://hooks.example.com/rota" }
}

# A lifecycle workflow: a Rhai script `rota run` runs on a schedule (Rota's
# shipped ones are in the repository's scripts/ folder).
#
# workflow "compliance" {
#   schedule = "0 6 * * 1"
#   script   = "scripts/compliance-report.rhai"
#   settings = { max_age_days = 90 }
# }

# More folders to find rotation plugins in (besides plugins/ here):
#
# plugins {
#   paths = ["../shared-plugins"]
# }
"#;

const WORLD_HCL: &str = r#"# The embedded local cloud's world (used only without cloud credentials):
# the account and region it pretends to be, and the keys, KMS instances and
# ECS/RDS/RAM resources secrets may refer to. See `rota local world`.
account_id = "1234567890123456"   # required
region     = "cn-hangzhou"        # required

# key "key-example" {
#   description = "a customer master key for encryption_key_id"
#   spec        = "Aliyun_AES_256"
# }
"#;

/// Runs `rota init`.
pub(crate) fn run(dir: Option<PathBuf>, global: &GlobalArgs) -> Result<ExitCode> {
    // DIR, else the -c directory (as every command reads it), else here.
    let dir = dir
        .or_else(|| {
            global.config.as_ref().map(|c| {
                if c.is_file() {
                    c.parent().map(Path::to_path_buf).unwrap_or_default()
                } else {
                    c.clone()
                }
            })
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let files = [("main.tf", MAIN_TF), ("world.hcl", WORLD_HCL)];
    let existing: Vec<String> = files
        .iter()
        .map(|(name, _)| dir.join(name))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        errln!(
            "error: {} already exist{}; rota init never overwrites a file: \
             pick another directory (rota init DIR) or move {} away",
            existing.join(" and "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" }
        );
        return Ok(ExitCode::FAILURE);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    for (name, text) in files {
        write_new(&dir.join(name), text)?;
    }
    if !global.quiet {
        let c = if dir == Path::new(".") {
            String::new()
        } else {
            format!(" -c {}", dir.display())
        };
        outln!(
            "Wrote {0} and {1}.\nNext: rota validate{c} && rota apply{c} --auto-approve, then rota run{c}",
            dir.join("main.tf").display(),
            dir.join("world.hcl").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `path`, failing if it appeared meanwhile.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
