//! `Secret`: how secret values reach scripts. A script can pass one to host
//! functions, compare it, and call `.reveal()` to build a command; printing,
//! interpolating, concatenating or logging it shows `***`. Every value that
//! becomes a `Secret` during a call is remembered by the call's environment,
//! so a revealed value that ends up in a log line, an error or a report is
//! scrubbed to `***` as well.

use std::fmt;
use std::sync::Arc;

use rhai::{Dynamic, Engine};
use rota_kms::SecretString;

use crate::env;

/// A secret value inside a script.
#[derive(Clone)]
pub struct Secret(Arc<SecretString>);

impl Secret {
    /// Wraps `value`, remembering it for redaction in the current call.
    pub fn new(value: SecretString) -> Self {
        env::with(|e| e.remember(&value));
        Self(Arc::new(value))
    }

    /// The value.
    pub fn expose(&self) -> &SecretString {
        &self.0
    }

    /// `value` as a script value.
    pub(crate) fn dynamic(value: SecretString) -> Dynamic {
        Dynamic::from(Self::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Registers the type and its methods.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Secret>("Secret")
        .register_fn("to_string", |_: &mut Secret| "***".to_owned())
        .register_fn("to_debug", |_: &mut Secret| "***".to_owned())
        .register_fn("reveal", |s: &mut Secret| s.0.expose_secret().to_owned())
        .register_fn("len", |s: &mut Secret| s.0.len() as i64)
        .register_fn("is_empty", |s: &mut Secret| s.0.is_empty())
        .register_fn("==", |a: Secret, b: Secret| a.0 == b.0)
        .register_fn("!=", |a: Secret, b: Secret| a.0 != b.0)
        .register_fn("==", |a: Secret, b: &str| {
            rota_kms::secret::constant_time_eq(a.0.expose_secret().as_bytes(), b.as_bytes())
        })
        .register_fn("!=", |a: Secret, b: &str| {
            !rota_kms::secret::constant_time_eq(a.0.expose_secret().as_bytes(), b.as_bytes())
        })
        .register_fn("secret", |s: &str| Secret::new(SecretString::new(s)));
}
