//! Password generation under a policy compatible with KMS GetRandomPassword
//! (kms-api.md §3.15): length 8–128 (default 32), classes lower-case,
//! upper-case, digits and ASCII punctuation, excluded characters, and at
//! least one character of each included class when required.
//!
//! Shared by the local cloud's GetRandomPassword and the rotation engine's
//! `password` plugin, so both generate and check values the same way. The
//! random source is the operating system's CSPRNG via `rand`'s thread RNG.

use rand::Rng as _;
use rand::seq::SliceRandom as _;
use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

/// ASCII punctuation, the fourth class.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// Shortest password allowed.
pub const MIN_LENGTH: usize = 8;
/// Longest password allowed.
pub const MAX_LENGTH: usize = 128;

/// What a generated password may contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Length, 8–128.
    pub length: usize,
    /// Characters never used.
    pub exclude_characters: String,
    /// No a–z.
    pub exclude_lowercase: bool,
    /// No A–Z.
    pub exclude_uppercase: bool,
    /// No 0–9.
    pub exclude_numbers: bool,
    /// No punctuation.
    pub exclude_punctuation: bool,
    /// At least one character of every included class.
    pub require_each_included_type: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: String::new(),
            exclude_lowercase: false,
            exclude_uppercase: false,
            exclude_numbers: false,
            exclude_punctuation: false,
            require_each_included_type: true,
        }
    }
}

/// Why a policy cannot be met, or a value breaks it. Never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The length is outside 8–128.
    #[error("length {0} is outside {MIN_LENGTH}–{MAX_LENGTH}")]
    Length(usize),
    /// Every class is excluded.
    #[error("every character class is excluded")]
    NoClasses,
    /// More required classes than characters.
    #[error("length {length} is shorter than the {classes} required character classes")]
    TooShortForClasses {
        /// The length.
        length: usize,
        /// Required classes.
        classes: usize,
    },
    /// A value has the wrong length.
    #[error("the value has {actual} characters, the policy wants {expected}")]
    WrongLength {
        /// Policy length.
        expected: usize,
        /// Value length.
        actual: usize,
    },
    /// A value uses a character the policy excludes.
    #[error("the value contains a character the policy excludes ({class})")]
    Excluded {
        /// Which rule.
        class: &'static str,
    },
    /// A value lacks a required class.
    #[error("the value has no {class} character, which the policy requires")]
    MissingClass {
        /// Which class.
        class: &'static str,
    },
}

impl PasswordPolicy {
    fn classes(&self) -> Vec<(&'static str, Vec<char>)> {
        [
            (!self.exclude_lowercase, "lower-case", LOWER),
            (!self.exclude_uppercase, "upper-case", UPPER),
            (!self.exclude_numbers, "digit", DIGITS),
            (!self.exclude_punctuation, "punctuation", PUNCTUATION),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, name, set)| {
            (
                name,
                set.chars()
                    .filter(|c| !self.exclude_characters.contains(*c))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, c)| !c.is_empty())
        .collect()
    }

    /// Checks that the policy can be met.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.length) {
            return Err(PolicyError::Length(self.length));
        }
        let classes = self.classes();
        if classes.is_empty() {
            return Err(PolicyError::NoClasses);
        }
        if self.require_each_included_type && classes.len() > self.length {
            return Err(PolicyError::TooShortForClasses {
                length: self.length,
                classes: classes.len(),
            });
        }
        Ok(())
    }

    /// A fresh random password.
    pub fn generate(&self) -> Result<SecretString, PolicyError> {
        self.validate()?;
        let classes = self.classes();
        let pool: Vec<char> = classes
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        let mut rng = rand::rng();
        let mut out: Vec<char> = Vec::with_capacity(self.length);
        if self.require_each_included_type {
            for (_, c) in &classes {
                out.push(c[rng.random_range(0..c.len())]);
            }
        }
        while out.len() < self.length {
            out.push(pool[rng.random_range(0..pool.len())]);
        }
        out.shuffle(&mut rng);
        Ok(SecretString::new(out.into_iter().collect::<String>()))
    }

    /// Checks that `value` satisfies the policy (what the `password`
    /// plugin's test step proves).
    pub fn check(&self, value: &SecretString) -> Result<(), PolicyError> {
        let v = value.expose_secret();
        let len = v.chars().count();
        if len != self.length {
            return Err(PolicyError::WrongLength {
                expected: self.length,
                actual: len,
            });
        }
        if v.chars().any(|c| self.exclude_characters.contains(c)) {
            return Err(PolicyError::Excluded {
                class: "excluded characters",
            });
        }
        for (excluded, class, set) in [
            (self.exclude_lowercase, "lower-case", LOWER),
            (self.exclude_uppercase, "upper-case", UPPER),
            (self.exclude_numbers, "digit", DIGITS),
            (self.exclude_punctuation, "punctuation", PUNCTUATION),
        ] {
            if excluded && v.chars().any(|c| set.contains(c)) {
                return Err(PolicyError::Excluded { class });
            }
        }
        if v.chars()
            .any(|c| !(c.is_ascii_alphanumeric() || PUNCTUATION.contains(c)))
        {
            return Err(PolicyError::Excluded {
                class: "characters outside the pool",
            });
        }
        if self.require_each_included_type {
            for (class, chars) in self.classes() {
                if !v.chars().any(|c| chars.contains(&c)) {
                    return Err(PolicyError::MissingClass { class });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_pass_their_policy() {
        let policies = [
            PasswordPolicy::default(),
            PasswordPolicy {
                length: 8,
                exclude_punctuation: true,
                ..Default::default()
            },
            PasswordPolicy {
                length: 12,
                exclude_characters: "0Oo1lI".into(),
                ..Default::default()
            },
            PasswordPolicy {
                length: 128,
                exclude_lowercase: true,
                exclude_uppercase: true,
                ..Default::default()
            },
        ];
        for p in policies {
            for _ in 0..50 {
                let v = p.generate().unwrap();
                p.check(&v).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            }
        }
    }

    #[test]
    fn impossible_policies_and_bad_values() {
        assert_eq!(
            PasswordPolicy {
                length: 7,
                ..Default::default()
            }
            .validate(),
            Err(PolicyError::Length(7))
        );
        let none = PasswordPolicy {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..Default::default()
        };
        assert_eq!(none.validate(), Err(PolicyError::NoClasses));
        let p = PasswordPolicy {
            length: 8,
            exclude_punctuation: true,
            ..Default::default()
        };
        assert!(matches!(
            p.check(&SecretString::new("abcdefg1")),
            Err(PolicyError::MissingClass { .. })
        ));
        assert!(matches!(
            p.check(&SecretString::new("abcDEF1!")),
            Err(PolicyError::Excluded { .. })
        ));
        assert!(matches!(
            p.check(&SecretString::new("aB1")),
            Err(PolicyError::WrongLength { .. })
        ));
        assert_eq!(p.check(&SecretString::new("abcDEF12")), Ok(()));
    }
}

/// The SHA-512-crypt hash (`$6$salt$…`, glibc's `crypt(3)` format, 5,000
/// rounds, a random 16-character salt) of `value`: what `/etc/shadow`
/// holds and `chpasswd -e` sets, so that an OS password can be set on a
/// machine without the value itself travelling in a command's text.
pub fn crypt_sha512(value: &str) -> String {
    use sha_crypt::{PasswordHasher as _, ShaCrypt};
    let salt: [u8; 12] = rand::random();
    ShaCrypt::SHA512
        .hash_password_with_salt(value.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing a password with a 12-byte salt cannot fail (the salt is
        // within the format's 16 characters); an empty hash verifies nothing.
        .unwrap_or_default()
}

/// Whether `value` is the password of the crypt hash `hash` (`$6$…` or
/// `$5$…`); a malformed hash matches nothing.
pub fn crypt_verify(value: &str, hash: &str) -> bool {
    use sha_crypt::{PasswordVerifier as _, ShaCrypt};
    ShaCrypt::SHA512
        .verify_password(value.as_bytes(), hash.trim())
        .is_ok()
}

#[cfg(test)]
mod crypt_tests {
    use super::{crypt_sha512, crypt_verify};

    #[test]
    fn crypt_hashes_verify_and_match_glibc() {
        let h = crypt_sha512("Passw0rd!");
        assert!(h.starts_with("$6$"), "{h}");
        assert!(!h.contains("Passw0rd"));
        assert!(crypt_verify("Passw0rd!", &h));
        assert!(!crypt_verify("passw0rd!", &h));
        assert_ne!(crypt_sha512("Passw0rd!"), h, "a new salt each time");
        // glibc's own test vector (crypt-sha512, salt "saltstring").
        assert!(crypt_verify(
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ));
        assert!(!crypt_verify("x", "not a hash"));
        assert!(!crypt_verify("x", ""));
    }
}
