//! Crash injection: named points in the rotation protocol where a test makes
//! the process abort, as `kill -9` would, to prove every step can be resumed.
//!
//! The names are part of the test interface (set `ROTA_TEST_CRASH_AT` for
//! the `rota` binary, which reads it and installs a hook that aborts):
//!
//! | name | where |
//! |---|---|
//! | `after-create` | the pending version is written (ACSPending), nothing else |
//! | `before-target-change` | right before the plugin's `set` changes the target |
//! | `after-target-change` | right after `set` returned, before it is recorded |
//! | `after-set` | `set` is recorded; `test` has not run |
//! | `after-test` | `test` passed; nothing promoted yet |
//! | `in-finish` | ACSCurrent has moved to the new version; ACSPending and ACSPrevious not yet tidied |

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A named crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// `after-create`.
    AfterCreate,
    /// `before-target-change`.
    BeforeTargetChange,
    /// `after-target-change`.
    AfterTargetChange,
    /// `after-set`.
    AfterSet,
    /// `after-test`.
    AfterTest,
    /// `in-finish`.
    InFinish,
    /// `during-soak`: a verified rotation is watching its consumers.
    DuringSoak,
    /// `after-current-back`: a rollback moved ACSCurrent back to the old
    /// version, the target not yet put back.
    AfterCurrentBack,
    /// `before-target-rollback`: right before the plugin's `rollback`.
    BeforeTargetRollback,
}

impl CrashPoint {
    /// Every point, in protocol order.
    pub const ALL: [CrashPoint; 9] = [
        Self::AfterCreate,
        Self::BeforeTargetChange,
        Self::AfterTargetChange,
        Self::AfterSet,
        Self::AfterTest,
        Self::InFinish,
        Self::DuringSoak,
        Self::AfterCurrentBack,
        Self::BeforeTargetRollback,
    ];

    /// The points of the protocol proper (every rotation passes them).
    pub const PROTOCOL: [CrashPoint; 6] = [
        Self::AfterCreate,
        Self::BeforeTargetChange,
        Self::AfterTargetChange,
        Self::AfterSet,
        Self::AfterTest,
        Self::InFinish,
    ];

    /// The points of a verified rotation's soak and rollback.
    pub const VERIFICATION: [CrashPoint; 3] = [
        Self::DuringSoak,
        Self::AfterCurrentBack,
        Self::BeforeTargetRollback,
    ];

    /// The name used in `ROTA_TEST_CRASH_AT`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AfterCreate => "after-create",
            Self::BeforeTargetChange => "before-target-change",
            Self::AfterTargetChange => "after-target-change",
            Self::AfterSet => "after-set",
            Self::AfterTest => "after-test",
            Self::InFinish => "in-finish",
            Self::DuringSoak => "during-soak",
            Self::AfterCurrentBack => "after-current-back",
            Self::BeforeTargetRollback => "before-target-rollback",
        }
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown crash point name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown crash point {0:?}; known: after-create, before-target-change, after-target-change, after-set, after-test, in-finish"
)]
pub struct UnknownCrashPoint(pub String);

impl FromStr for CrashPoint {
    type Err = UnknownCrashPoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownCrashPoint(s.to_owned()))
    }
}

/// What happens at a crash point: nothing in production; the binary
/// installs an aborting hook when a test asks for one.
#[derive(Clone, Default)]
pub struct CrashHook(Option<Arc<dyn Fn(CrashPoint) + Send + Sync>>);

impl CrashHook {
    /// No crash anywhere.
    pub fn none() -> Self {
        Self(None)
    }

    /// Calls `f` at every point reached (the binary aborts at the chosen one).
    pub fn new(f: impl Fn(CrashPoint) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Reports reaching `point`.
    pub fn reach(&self, point: CrashPoint) {
        if let Some(f) = &self.0 {
            f(point);
        }
    }
}

impl fmt::Debug for CrashHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "CrashHook(set)"
        } else {
            "CrashHook(none)"
        })
    }
}
