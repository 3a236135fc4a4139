//! The rota-script integration tests: one binary (style.md rule 14).

mod bound;
mod common;
mod limits;
mod load;
mod modules;
mod plugins;
mod workflows;
