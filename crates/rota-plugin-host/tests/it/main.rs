//! rota-plugin-host's integration tests: they build the plugins they load
//! (`cargo build -p example-echo|postgres-role`, into target/plugin-tests)
//! so a clean clone needs nothing else.

mod abi;
mod c_plugin;
mod common;
mod echo;
mod postgres;
