//! A value that must never be printed: secret material and credentials.
//!
//! [`SecretString`] has a redacting `Debug`, no `Display` and no plain
//! `Serialize`. Reading the value is the greppable [`SecretString::expose_secret`].
//! Wire types that must put the value on the wire opt in explicitly with
//! `#[serde(serialize_with = "rota_kms::secret::serialize_exposed")]`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};

/// A string that holds secret material.
///
/// `Debug` prints `***`; there is no `Display`. Equality is constant-time so a
/// comparison does not leak how much of a guess matched.
#[derive(Clone, Default)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The plain value. Every call site is a place where the secret leaves its
    /// wrapper: keep them few and obvious.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length of the value in bytes (safe to log).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretString {}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// Serializes the plain value. Only for wire types whose job is to carry the
/// secret (a GetSecretValue response, a CreateSecret request).
pub fn serialize_exposed<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.expose_secret())
}

/// Serializes an optional plain value; see [`serialize_exposed`].
pub fn serialize_exposed_opt<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_str(v.expose_secret()),
        None => s.serialize_none(),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("canary-7f3a");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose_secret(), "canary-7f3a");
    }

    #[test]
    fn equality() {
        assert_eq!(SecretString::new("a"), SecretString::new("a"));
        assert_ne!(SecretString::new("a"), SecretString::new("b"));
        assert_ne!(SecretString::new("a"), SecretString::new("ab"));
    }
}
