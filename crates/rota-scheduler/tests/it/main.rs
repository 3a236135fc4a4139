//! Integration tests of rota-scheduler (one test binary, one module per area).

mod common;
mod multiprocess;
mod runner;
mod schedule;
mod store;
