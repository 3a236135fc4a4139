//! Clocks: where the runner gets the time and how it waits.
//!
//! The runner never polls: it asks its [`Clock`] to sleep until the earliest
//! due time (or until woken by a registration). The clocks are Rota's one
//! notion of time, from `rota-clock`: [`SystemClock`] is the real one (or
//! one started at a fixed instant, for tests); [`ManualClock`] only moves
//! when told to, and wakes every sleeper whose deadline it passes.

pub use rota_clock::{Clock, ManualClock, Sleep, SystemClock};
