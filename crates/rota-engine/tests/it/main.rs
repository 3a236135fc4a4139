//! rota-engine integration tests: configurations against the embedded local
//! cloud (`rota_local::LocalCloud`) through `rota_kms::KmsClient`, with a
//! recording transport to check the API calls each change makes.

mod common;
mod lifecycle;
mod rotation_config;
mod saved;
mod seed;
mod validate;
