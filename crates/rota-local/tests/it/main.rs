//! rota-local integration tests: one binary, one module per concern.
//!
//! - `engine`: KMS semantics through `rota_kms::KmsClient` over the
//!   in-process `LocalCloud` transport;
//! - `wire`: the HTTP server through `rota_kms::HttpTransport` (V1 and V3)
//!   and hand-built requests (signature, timestamp, nonce, XML, limits);
//! - `crash`: SIGKILL a writer, reopen, every acknowledged write is there;
//! - `canary`: secret data never reaches the data directory or the logs;
//! - `conformance`: the rota-kms suite over in-process, HTTP V1 and HTTP V3.

mod canary;
mod common;
mod conformance;
mod crash;
mod engine;
mod wire;
