//! rota-kms integration tests: one binary, one module per concern.

mod credentials;
mod retry;
mod snapshots;
mod stub;
mod vectors;
