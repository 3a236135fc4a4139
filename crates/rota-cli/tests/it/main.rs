//! rota-cli integration tests: run the `rota` binary and snapshot what it prints.

mod agent;
mod authors;
mod common;
mod events;
mod hardening;
mod help;
mod hosts;
mod init;
mod interop;
mod json;
mod lifecycle;
mod local;
mod metrics;
mod native;
mod output;
mod plugins;
mod quickstart;
mod rotation;
mod rotation_daemon;
mod rotation_managed;
mod rotation_notify;
mod schedule;
mod secret;
mod terraform;
mod usage;
mod verify;
