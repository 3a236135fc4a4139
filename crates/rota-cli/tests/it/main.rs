//! rota-cli integration tests: run the `rota` binary and snapshot what it prints.

mod common;
mod help;
mod interop;
mod local;
mod lifecycle;
mod schedule;
