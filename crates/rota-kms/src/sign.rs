//! Request signing, pure and IO-free: signature V1 (HMAC-SHA1) and V3
//! (`ACS3-HMAC-SHA256`), both sign and verify (kms-api.md §1.4–§1.8).
//!
//! Nothing here reads a clock or the network: callers pass the timestamp and
//! nonce in the parameters or headers, which is what makes the published
//! known-answer vectors reproducible.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::encode::{hex_lower, percent_encode_into, percent_encode_twice_into};
use crate::secret::constant_time_eq;

/// The `x-acs-content-sha256` of an empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The V3 algorithm name, first word of the `Authorization` header.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Which signature a client puts on its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// HMAC-SHA1 over the canonicalized parameters (every SDK's classic RPC style).
    #[default]
    V1,
    /// `ACS3-HMAC-SHA256` over a canonical request (current tea SDKs' default).
    V3,
}

/// The V1 string to sign: `METHOD&%2F&enc(canonicalized query)` where the
/// canonicalized query is the sorted, percent-encoded `k=v` pairs joined with
/// `&`. A parameter named `Signature` is left out; empty values stay in.
pub fn v1_string_to_sign<'a, I>(method: &str, params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    // Sorted by name bytes: by the names' first eight bytes as one number
    // (one comparison, no call), then, where those tie, by the whole name.
    let mut pairs: Vec<(u64, &str, &str)> = params
        .into_iter()
        .filter(|(k, _)| *k != "Signature")
        .map(|(k, v)| (crate::encode::prefix_key(k), k, v))
        .collect();
    pairs.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    let estimate: usize = pairs
        .iter()
        .map(|(_, k, v)| k.len() + v.len() * 2 + 8)
        .sum();
    let mut out = String::with_capacity(method.len() + 4 + estimate);
    out.push_str(method);
    out.push_str("&%2F&");
    for (i, (_, k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str("%26");
        }
        percent_encode_twice_into(&mut out, k);
        out.push_str("%3D");
        percent_encode_twice_into(&mut out, v);
    }
    out
}

/// HMAC-SHA1 of `string_to_sign` under `secret + "&"`, standard base64 with padding.
pub fn v1_sign(access_key_secret: &str, string_to_sign: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(v1_mac(access_key_secret, string_to_sign))
}

/// The HMAC-SHA1 of a V1 signature: the key `secret + "&"` is built on
/// the stack when it fits a block (every real key does).
fn v1_mac(secret: &str, string_to_sign: &str) -> [u8; 20] {
    let mut block = [0u8; 64];
    let n = secret.len();
    let mut mac = if n < block.len() {
        block[..n].copy_from_slice(secret.as_bytes());
        block[n] = b'&';
        <Hmac<Sha1> as KeyInit>::new_from_slice(&block[..=n])
    } else {
        let mut key = Vec::with_capacity(n + 1);
        key.extend_from_slice(secret.as_bytes());
        key.push(b'&');
        <Hmac<Sha1> as KeyInit>::new_from_slice(&key)
    }
    .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The V1 `Signature` of a request: [`v1_string_to_sign`] then [`v1_sign`].
pub fn v1_signature<'a, I>(method: &str, params: I, access_key_secret: &str) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    v1_sign(access_key_secret, &v1_string_to_sign(method, params))
}

/// A signature that does not match; carries the string the verifier signed so
/// the server can quote it (kms-api.md gotcha G2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature does not match; server string to sign is:{string_to_sign}")]
pub struct SignatureMismatch {
    /// The verifier's string to sign.
    pub string_to_sign: String,
}

/// Verifies a V1 signature over all `params` (which may include `Signature`;
/// it is excluded from the signed set).
pub fn v1_verify<'a, I>(
    method: &str,
    params: I,
    access_key_secret: &str,
    provided: &str,
) -> Result<(), SignatureMismatch>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let string_to_sign = v1_string_to_sign(method, params);
    // Base64 of 20 bytes is 28 characters: written on the stack.
    let mut expected = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(v1_mac(access_key_secret, &string_to_sign), &mut expected)
        .unwrap_or(0);
    if constant_time_eq(&expected[..n], provided.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureMismatch { string_to_sign })
    }
}

/// The parts of a request that a V3 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct V3Input<'a> {
    /// HTTP method, upper-case.
    pub method: &'a str,
    /// Request path; `/` for RPC.
    pub path: &'a str,
    /// Decoded query parameters (any order).
    pub query: &'a [(&'a str, &'a str)],
    /// The headers to sign (any case, any order); all of them are signed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body (`x-acs-content-sha256`).
    pub hashed_payload: &'a str,
}

/// The V3 canonical request and the `SignedHeaders` value.
pub fn v3_canonical_request(input: &V3Input<'_>) -> (String, String) {
    let mut out = String::with_capacity(512);
    out.push_str(input.method);
    out.push('\n');
    out.push_str(input.path);
    out.push('\n');

    let mut query: Vec<(&str, &str)> = input.query.to_vec();
    query.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (i, (k, v)) in query.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out.push('\n');

    let mut headers: Vec<(String, &str)> = input
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    // Several values of one header are joined with ','.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(value);
            }
            _ => merged.push((name, value.to_owned())),
        }
    }
    for (name, value) in &merged {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    out.push_str(&signed_headers);
    out.push('\n');
    out.push_str(input.hashed_payload);
    (out, signed_headers)
}

/// `ACS3-HMAC-SHA256\n<hex sha256(canonical request)>`.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    let mut out = String::with_capacity(V3_ALGORITHM.len() + 65);
    out.push_str(V3_ALGORITHM);
    out.push('\n');
    out.push_str(&sha256_hex(canonical_request.as_bytes()));
    out
}

/// Lower-case hex HMAC-SHA256 of the string to sign, keyed by the secret itself.
pub fn v3_sign(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex_lower(&mac.finalize().into_bytes())
}

/// Lower-case hex SHA-256 of `data`, as sent in `x-acs-content-sha256`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

/// A V3 signature with everything needed for the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Signature {
    /// The canonical request that was signed.
    pub canonical_request: String,
    /// The `SignedHeaders` list.
    pub signed_headers: String,
    /// Hex signature.
    pub signature: String,
}

impl V3Signature {
    /// The `Authorization` header value.
    pub fn authorization(&self, access_key_id: &str) -> String {
        format!(
            "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={}",
            self.signed_headers, self.signature
        )
    }
}

/// Signs a V3 request.
pub fn v3_signature(input: &V3Input<'_>, access_key_secret: &str) -> V3Signature {
    let (canonical_request, signed_headers) = v3_canonical_request(input);
    let signature = v3_sign(access_key_secret, &v3_string_to_sign(&canonical_request));
    V3Signature {
        canonical_request,
        signed_headers,
        signature,
    }
}

/// A parsed V3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Authorization {
    /// Algorithm name, e.g. `ACS3-HMAC-SHA256`.
    pub algorithm: String,
    /// The access key id (`Credential=`).
    pub access_key_id: String,
    /// The signed header names, lower-case.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Why an `Authorization` header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header: {0}")]
pub struct MalformedAuthorization(pub &'static str);

/// Parses `ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex`.
pub fn parse_v3_authorization(value: &str) -> Result<V3Authorization, MalformedAuthorization> {
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or(MalformedAuthorization("no space after the algorithm"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(MalformedAuthorization("a part has no '='"))?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    Ok(V3Authorization {
        algorithm: algorithm.to_owned(),
        access_key_id: credential
            .ok_or(MalformedAuthorization("Credential is missing"))?
            .to_owned(),
        signed_headers: signed
            .ok_or(MalformedAuthorization("SignedHeaders is missing"))?
            .split(';')
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature
            .ok_or(MalformedAuthorization("Signature is missing"))?
            .to_owned(),
    })
}

/// Verifies a V3 signature. `input.headers` must be exactly the headers named
/// in `SignedHeaders`, with the raw `host` value (port included).
pub fn v3_verify(
    input: &V3Input<'_>,
    access_key_secret: &str,
    provided: &str,
) -> Result<(), SignatureMismatch> {
    let (canonical_request, _) = v3_canonical_request(input);
    let string_to_sign = v3_string_to_sign(&canonical_request);
    let expected = v3_sign(access_key_secret, &string_to_sign);
    if constant_time_eq(
        expected.as_bytes(),
        provided.to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(SignatureMismatch { string_to_sign })
    }
}
