//! `rota-local`: the embedded local Alibaba Cloud — a durable, encrypted KMS
//! that speaks the real wire protocol.
//!
//! It is what a new user runs against before they have cloud credentials,
//! what every test runs against, and a KMS that official SDKs and the
//! Terraform provider can be pointed at (`rota local serve`).
//!
//! - [`LocalCloud`] opens a data directory and a [`World`]; it implements
//!   [`rota_kms::Transport`] in-process, through the same [`Dispatcher`] the
//!   HTTP server uses, so both share every semantic.
//! - [`server::serve`] is the HTTP front: V1 and V3 signature verification,
//!   timestamp window, nonce replay cache, JSON or XML answers.
//! - The engine implements the KMS secret actions of `kms-api.md` §3 over an
//!   in-memory state; [`store`] makes every acknowledged write durable
//!   (SQLite WAL, `synchronous=FULL`, group commit) and [`crypto`] keeps
//!   secret data encrypted at rest (AES-256-GCM, per-key data keys wrapped
//!   under a 0600 master key).
//! - [`targets`] is the rest of the local world: emulated ECS instances
//!   (Cloud Assistant), RDS instances (optionally bound to a real
//!   PostgreSQL or MariaDB server) and RAM users, durable and sealed like
//!   secrets; managed rotation (RotateSecret, automatic rotation) acts on
//!   them.
//! - [`errors`] holds the one table from engine errors to Alibaba codes.
//!
//! The crate prints nothing and reads no environment variables: `rota-cli`
//! passes everything in.
#![forbid(unsafe_code)]

pub mod auth;
pub mod clock;
mod cloud;
pub mod crypto;
pub mod dispatch;
mod engine;
mod envelope_io;
pub mod errors;
pub mod metadata;
pub mod params;
pub mod replay;
pub mod server;
pub mod store;
pub mod targets;
pub mod tls;
pub mod world;
#[doc(hidden)]
pub mod xml;

pub use auth::Caller;
pub use clock::{Clock, ManualClock, SystemClock};
pub use cloud::{LocalCloud, OpenOptions, ROOT_KEY_FILE, RootKey};
pub use dispatch::Dispatcher;
pub use engine::{OpenError, RotationHook, RotationStep};
pub use errors::ServiceError;
pub use params::Params;
pub use targets::WorldSnapshot;
pub use world::World;
