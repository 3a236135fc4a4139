//! rota-kms integration tests: one binary, one module per concern.

mod vectors;
mod credentials;
mod stub;
