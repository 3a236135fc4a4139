//! Rota's engine: the `alicloud_kms_secret` resource read from HCL, then
//! validated, planned, applied, imported and destroyed against KMS — with no
//! state file: the live KMS is the state.
//!
//! - [`config`]: load a `.tf`/`.hcl` file or directory (variables, locals,
//!   functions, the provider block, resources and the references between
//!   them) into a [`Config`], or [`Diagnostics`] with file, line, column,
//!   resource address and the allowed values;
//! - [`resource`]: the resource schema (every seed argument plus Rota's
//!   additions) and its validation;
//! - [`live`]: the live state of secrets, read concurrently;
//! - [`plan`]: configuration vs live state → a [`Plan`] of create / update in
//!   place / replace / destroy with attribute-level changes; never a secret
//!   value; saved plans bind to hashes of the values and the live state;
//! - [`apply`]: execute a plan in dependency order with per-resource timeouts
//!   and progress reporting;
//! - [`import`]: a live secret → the HCL block to add;
//! - [`ownership`]: the `rota:` tags that mark the secrets Rota created.
//!
//! Everything goes through [`rota_kms::KmsClient`], so the embedded local
//! cloud and the real Alibaba Cloud behave the same. The crate never reads
//! environment variables and never prints: the CLI passes values in and
//! renders what comes back.
#![forbid(unsafe_code)]

pub mod apply;
pub mod config;
pub mod data;
pub mod error;
pub mod files;
pub mod import;
pub mod live;
pub mod ownership;
pub mod plan;
pub mod resource;

pub use apply::{ApplyEvent, ApplyOptions, ApplyReport, Outcome, Progress, apply, apply_with};
pub use config::{Config, Diagnostic, Diagnostics, LoadOptions, ProviderConfig, suggest};
pub use error::EngineError;
pub use import::{ImportOptions, import};
pub use live::LiveSecret;
pub use ownership::Ownership;
pub use plan::{Action, Plan, PlanMode, PlanOptions, SavedPlan, plan};

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
