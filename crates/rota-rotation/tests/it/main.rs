//! rota-rotation integration tests: the protocol and the daemon core
//! against the embedded local cloud (`rota_local::LocalCloud`), no binary.

mod daemon;
mod events;
mod protocol;
