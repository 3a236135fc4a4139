//! GetRandomPassword and DescribeRegions (kms-api.md §3.15).
//!
//! The password pool is digits, ASCII letters and ASCII punctuation
//! (`!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~`). `RequireEachIncludedType` defaults
//! to true (as AWS does; the Alibaba docs are silent): at least one
//! character of every included class. DescribeRegions lists the one region
//! of the local world.

use rand::Rng as _;
use rand::seq::SliceRandom as _;
use rota_kms::SecretString;
use rota_kms::kms::{DescribeRegionsResponse, GetRandomPasswordResponse, RegionInfo, Regions};
use serde_json::Value;

use super::Engine;
use super::secrets::to_json;
use crate::errors::ServiceError;
use crate::params::Params;

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// What GetRandomPassword may use.
#[derive(Debug, Clone)]
pub(crate) struct PasswordSpec {
    pub(crate) length: usize,
    pub(crate) exclude_characters: String,
    pub(crate) lowercase: bool,
    pub(crate) uppercase: bool,
    pub(crate) numbers: bool,
    pub(crate) punctuation: bool,
    pub(crate) require_each: bool,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: String::new(),
            lowercase: true,
            uppercase: true,
            numbers: true,
            punctuation: true,
            require_each: true,
        }
    }
}

/// Generates a password, or explains why the spec cannot be met.
pub(crate) fn generate_password(spec: &PasswordSpec) -> Result<String, ServiceError> {
    let classes: Vec<Vec<char>> = [
        (spec.lowercase, "abcdefghijklmnopqrstuvwxyz"),
        (spec.uppercase, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        (spec.numbers, "0123456789"),
        (spec.punctuation, PUNCTUATION),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, set)| {
        set.chars()
            .filter(|c| !spec.exclude_characters.contains(*c))
            .collect::<Vec<_>>()
    })
    .filter(|c| !c.is_empty())
    .collect();
    if classes.is_empty() {
        return Err(ServiceError::invalid(
            "ExcludeCharacters",
            "every character class is excluded",
        ));
    }
    if spec.require_each && classes.len() > spec.length {
        return Err(ServiceError::invalid(
            "PasswordLength",
            "is shorter than the number of required character classes",
        ));
    }
    let pool: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = rand::rng();
    let mut out: Vec<char> = Vec::with_capacity(spec.length);
    if spec.require_each {
        for c in &classes {
            out.push(c[rng.random_range(0..c.len())]);
        }
    }
    while out.len() < spec.length {
        out.push(pool[rng.random_range(0..pool.len())]);
    }
    out.shuffle(&mut rng);
    Ok(out.into_iter().collect())
}

impl Engine {
    pub(crate) fn get_random_password(&self, p: &Params) -> Result<Value, ServiceError> {
        let spec = PasswordSpec {
            length: p.int_in("PasswordLength", 8, 128, 32)? as usize,
            exclude_characters: p.opt("ExcludeCharacters").unwrap_or_default().to_owned(),
            lowercase: !p.bool("ExcludeLowercase")?.unwrap_or(false),
            uppercase: !p.bool("ExcludeUppercase")?.unwrap_or(false),
            numbers: !p.bool("ExcludeNumbers")?.unwrap_or(false),
            punctuation: !p.bool("ExcludePunctuation")?.unwrap_or(false),
            require_each: p.bool("RequireEachIncludedType")?.unwrap_or(true),
        };
        let password = generate_password(&spec)?;
        Ok(to_json(&GetRandomPasswordResponse {
            request_id: String::new(),
            random_password: SecretString::new(password),
        }))
    }

    pub(crate) fn describe_regions(&self) -> Value {
        to_json(&DescribeRegionsResponse {
            request_id: String::new(),
            regions: Regions {
                region: vec![RegionInfo {
                    region_id: self.world.region.clone(),
                }],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_honour_the_spec() {
        let spec = PasswordSpec {
            length: 8,
            exclude_characters: "abc".into(),
            punctuation: false,
            ..PasswordSpec::default()
        };
        for _ in 0..200 {
            let p = generate_password(&spec).unwrap();
            assert_eq!(p.chars().count(), 8);
            assert!(!p.contains(['a', 'b', 'c']));
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
        }
        let none = PasswordSpec {
            lowercase: false,
            uppercase: false,
            numbers: false,
            punctuation: false,
            ..PasswordSpec::default()
        };
        assert!(generate_password(&none).is_err());
    }
}
