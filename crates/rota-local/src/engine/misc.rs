//! GetRandomPassword and DescribeRegions (kms-api.md §3.15).
//!
//! The password pool is digits, ASCII letters and ASCII punctuation
//! (`!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~`). `RequireEachIncludedType` defaults
//! to true (as AWS does; the Alibaba docs are silent): at least one
//! character of every included class. DescribeRegions lists the one region
//! of the local world.

use rota_kms::SecretString;
use rota_kms::kms::{DescribeRegionsResponse, GetRandomPasswordResponse, RegionInfo, Regions};
use rota_kms::password::{PasswordPolicy, PolicyError};
use serde_json::Value;

use super::Engine;
use super::secrets::to_json;
use crate::errors::ServiceError;
use crate::params::Params;

/// Generates a password under `policy`, or says which parameter makes it
/// impossible. The generator is shared with the rotation engine
/// ([`rota_kms::password`]).
pub(crate) fn generate_password(policy: &PasswordPolicy) -> Result<String, ServiceError> {
    policy
        .generate()
        .map(|p| p.expose_secret().to_owned())
        .map_err(|e| {
            let field = match e {
                PolicyError::NoClasses => "ExcludeCharacters",
                _ => "PasswordLength",
            };
            ServiceError::invalid(field, e.to_string())
        })
}

impl Engine {
    pub(crate) fn get_random_password(&self, p: &Params) -> Result<Value, ServiceError> {
        let spec = PasswordPolicy {
            length: p.int_in("PasswordLength", 8, 128, 32)? as usize,
            exclude_characters: p.opt("ExcludeCharacters").unwrap_or_default().to_owned(),
            exclude_lowercase: p.bool("ExcludeLowercase")?.unwrap_or(false),
            exclude_uppercase: p.bool("ExcludeUppercase")?.unwrap_or(false),
            exclude_numbers: p.bool("ExcludeNumbers")?.unwrap_or(false),
            exclude_punctuation: p.bool("ExcludePunctuation")?.unwrap_or(false),
            require_each_included_type: p.bool("RequireEachIncludedType")?.unwrap_or(true),
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
        let spec = PasswordPolicy {
            length: 8,
            exclude_characters: "abc".into(),
            exclude_punctuation: true,
            ..PasswordPolicy::default()
        };
        for _ in 0..200 {
            let p = generate_password(&spec).unwrap();
            assert_eq!(p.chars().count(), 8);
            assert!(!p.contains(['a', 'b', 'c']));
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        }
        let none = PasswordPolicy {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..PasswordPolicy::default()
        };
        assert!(generate_password(&none).is_err());
    }
}
