//! rota-local integration tests: one binary, one module per concern.
//!
//! - `engine`: KMS semantics through `rota_kms::KmsClient` over the
//!   in-process `LocalCloud` transport;
//! - `wire`: the HTTP server through `rota_kms::HttpTransport` (V1 and V3)
//!   and hand-built requests (signature, timestamp, nonce, XML, limits);
//! - `crash`: SIGKILL a writer, reopen, every acknowledged write is there;
//! - `canary`: secret data never reaches the data directory or the logs;
//! - `conformance`: the rota-kms suite over in-process, HTTP V1 and HTTP V3;
//! - `targets`: the emulated ECS (Cloud Assistant), RDS and RAM APIs;
//! - `rotation`: managed rotation per secret type, automatic rotation, the
//!   seed's example;
//! - `bound`: RDS instances bound to the real PostgreSQL and MariaDB;
//! - `crash_rotation`: SIGKILL between ACSPending and promotion;
//! - `sts`: AssumeRole, temporary credentials and the ECS metadata service.

mod bound;
mod canary;
mod common;
mod conformance;
mod crash;
mod crash_rotation;
mod engine;
mod rotation;
mod sts;
mod targets;
mod wire;
