//! The Alibaba Cloud OpenAPI client at the core of Rota.
//!
//! - [`sign`]: signature V1 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256), sign and
//!   verify, pure functions tested against published vectors;
//! - [`kms`]: wire types for every KMS secret action and the typed
//!   [`KmsClient`];
//! - [`OpenApi::call`]: the generic RPC call (ECS, RDS, RAM, …);
//! - [`Transport`]: the one dispatch path both are written over.
//!   [`HttpTransport`] signs and sends over HTTPS with retries and rate limits;
//!   the embedded local cloud (crate `rota-local`) implements it in-process;
//!   [`observe::Observed`] wraps any transport and reports each call to a
//!   [`observe::CallObserver`] (the binary's metrics);
//! - [`credentials`]: credential providers and their chain;
//! - [`SecretString`]: secret material that cannot be printed by accident.
//!
//! The crate reads no environment variables and prints nothing: the binary
//! passes configuration in, and diagnostics go through `tracing`.
#![forbid(unsafe_code)]

pub mod cache;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod credentials;
pub mod encode;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod kms;
pub mod observe;
mod openapi;
pub mod password;
pub mod pattern;
pub mod policy;
pub mod ratelimit;
pub mod secret;
pub mod sign;
pub mod transport;
pub mod wire;

pub use credentials::{Credentials, CredentialsProvider};
pub use endpoint::{BaseUrl, Endpoints, Network};
pub use error::{ApiError, Error, ErrorKind, Result};
pub use http::{HttpTransport, install_crypto_provider};
pub use kms::KmsClient;
pub use openapi::OpenApi;
pub use secret::SecretString;
pub use sign::SignatureVersion;
pub use transport::{ApiRequest, BoxFuture, Param, Placement, Product, Transport};
