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
    // Stable: a repeated name keeps its values in the order sent.
    pairs.sort_by(by_name);
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

/// Orders `(prefix key, name, value)` by name bytes: the names' first
/// eight bytes as one number (one comparison, no call), then, where those
/// tie, the whole name.
fn by_name(a: &(u64, &str, &str), b: &(u64, &str, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
}

/// An access key secret made ready for V1 signatures: the HMAC-SHA1 key
/// `secret + "&"` with its inner and outer pads hashed once, for a server
/// that verifies many requests signed with one key. `Debug` shows nothing
/// of it.
#[derive(Clone)]
pub struct V1Key {
    mac: Hmac<Sha1>,
}

impl std::fmt::Debug for V1Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("V1Key(***)")
    }
}

impl V1Key {
    /// The key of `access_key_secret` (built on the stack when `secret +
    /// "&"` fits a block, as every real key does).
    pub fn new(access_key_secret: &str) -> Self {
        let mut block = [0u8; 64];
        let n = access_key_secret.len();
        let mac = if n < block.len() {
            block[..n].copy_from_slice(access_key_secret.as_bytes());
            block[n] = b'&';
            <Hmac<Sha1> as KeyInit>::new_from_slice(&block[..=n])
        } else {
            let mut key = Vec::with_capacity(n + 1);
            key.extend_from_slice(access_key_secret.as_bytes());
            key.push(b'&');
            <Hmac<Sha1> as KeyInit>::new_from_slice(&key)
        }
        .expect("HMAC accepts keys of any length");
        Self { mac }
    }

    /// The HMAC-SHA1 of `text` under this key.
    fn mac(&self, text: &[u8]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(text);
        mac.finalize().into_bytes().into()
    }
}

/// Feeds the V1 string to sign to an HMAC through a stack buffer, so that
/// the string is never built.
struct MacSink {
    mac: Hmac<Sha1>,
    buf: [u8; 256],
    len: usize,
}

impl MacSink {
    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.mac.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > self.buf.len() {
                self.mac.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Puts the percent-encoding of the percent-encoding of `s` (see
    /// [`percent_encode_twice_into`]) straight into the buffer, a few
    /// dozen bytes at a time (each may grow to five).
    fn put_encoded_twice(&mut self, s: &str) {
        const CHUNK: usize = 48;
        for chunk in s.as_bytes().chunks(CHUNK) {
            if self.len + CHUNK * 5 > self.buf.len() {
                self.mac.update(&self.buf[..self.len]);
                self.len = 0;
            }
            let mut at = self.len;
            for &b in chunk {
                if crate::encode::is_unreserved(b) {
                    self.buf[at] = b;
                    at += 1;
                } else {
                    self.buf[at..at + 5].copy_from_slice(crate::encode::escaped_twice(b));
                    at += 5;
                }
            }
            self.len = at;
        }
    }

    fn finish(mut self) -> [u8; 20] {
        self.mac.update(&self.buf[..self.len]);
        self.mac.finalize().into_bytes().into()
    }
}

/// The HMAC-SHA1 under `key` of [`v1_string_to_sign`]`(method, params)`,
/// without building that string: parameters that came sorted (as SDKs
/// send them) are fed in their order; otherwise up to 32 are sorted on
/// the stack. Their encoding is fed to the HMAC as it is made.
pub fn v1_mac_of<'a, I>(key: &V1Key, method: &str, params: I) -> [u8; 20]
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    let params = params.into_iter().filter(|(k, _)| *k != "Signature");
    let mut previous: Option<(u64, &str)> = None;
    let sorted = params.clone().all(|(k, _)| {
        let this = (crate::encode::prefix_key(k), k);
        let in_order =
            previous.is_none_or(|p| by_name(&(p.0, p.1, ""), &(this.0, this.1, "")).is_le());
        previous = Some(this);
        in_order
    });
    let mut sink = MacSink {
        mac: key.mac.clone(),
        buf: [0; 256],
        len: 0,
    };
    sink.put(method.as_bytes());
    sink.put(b"&%2F&");
    let mut put_all = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        for (i, (k, v)) in pairs.enumerate() {
            if i > 0 {
                sink.put(b"%26");
            }
            sink.put_encoded_twice(k);
            sink.put(b"%3D");
            sink.put_encoded_twice(v);
        }
    };
    if sorted {
        put_all(&mut params.clone());
    } else {
        const ON_STACK: usize = 32;
        let mut stack: [(u64, &str, &str); ON_STACK] = [(0, "", ""); ON_STACK];
        let mut n = 0;
        let mut heap: Vec<(u64, &str, &str)> = Vec::new();
        for (k, v) in params {
            let pair = (crate::encode::prefix_key(k), k, v);
            if n < ON_STACK {
                stack[n] = pair;
                n += 1;
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&stack);
                }
                heap.push(pair);
            }
        }
        let pairs: &mut [(u64, &str, &str)] = if heap.is_empty() {
            &mut stack[..n]
        } else {
            &mut heap
        };
        // Stable: a repeated name keeps its values in the order sent.
        pairs.sort_by(by_name);
        put_all(&mut pairs.iter().map(|(_, k, v)| (*k, *v)));
    }
    sink.finish()
}

/// Whether `provided` is the V1 signature under `key` of `params` (which
/// may include `Signature`; it is left out of the signed set), compared in
/// constant time. The server's check: no string to sign is built.
pub fn v1_matches<'a, I>(key: &V1Key, method: &str, params: I, provided: &str) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    // Base64 of 20 bytes is 28 characters: written on the stack.
    let mut expected = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(v1_mac_of(key, method, params), &mut expected)
        .unwrap_or(0);
    constant_time_eq(&expected[..n], provided.as_bytes())
}

/// HMAC-SHA1 of `string_to_sign` under `secret + "&"`, standard base64 with padding.
pub fn v1_sign(access_key_secret: &str, string_to_sign: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(v1_mac(access_key_secret, string_to_sign))
}

/// The HMAC-SHA1 of a V1 signature under `secret + "&"`.
fn v1_mac(secret: &str, string_to_sign: &str) -> [u8; 20] {
    V1Key::new(secret).mac(string_to_sign.as_bytes())
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
    let params: Vec<(&str, &str)> = params.into_iter().collect();
    if v1_matches(
        &V1Key::new(access_key_secret),
        method,
        params.iter().copied(),
        provided,
    ) {
        Ok(())
    } else {
        Err(SignatureMismatch {
            string_to_sign: v1_string_to_sign(method, params),
        })
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

#[cfg(test)]
mod tests {
    use super::{V1Key, v1_mac, v1_mac_of, v1_matches, v1_signature, v1_string_to_sign};

    /// A small seeded generator (xorshift64*): the same cases every run.
    struct Cases(u64);

    impl Cases {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> usize {
            usize::try_from(self.next() % n).unwrap_or(0)
        }

        /// Text from an alphabet with unreserved, reserved, multi-byte
        /// characters and names that share long prefixes.
        fn text(&mut self, max: u64) -> String {
            const PIECES: &[&str] = &[
                "a",
                "Z",
                "0",
                "-",
                "_",
                ".",
                "~",
                " ",
                "&",
                "=",
                "%",
                "+",
                "*",
                "/",
                ":",
                "é",
                "🔑",
                "Signature",
                "SignatureNonce",
                "SecretName",
                "\u{0}",
            ];
            (0..self.below(max))
                .map(|_| PIECES[self.below(PIECES.len() as u64)])
                .collect()
        }
    }

    #[test]
    fn the_streamed_mac_is_the_mac_of_the_string_to_sign() {
        let mut cases = Cases(0x5eed_0001);
        for case in 0..4_000 {
            let secret = cases.text(80);
            let key = V1Key::new(&secret);
            // Up to 40 pairs: past the 32 sorted on the stack.
            let n = cases.below(41);
            let mut pairs: Vec<(String, String)> = (0..n)
                .map(|_| {
                    let long = cases.below(8) == 0;
                    (cases.text(6), cases.text(if long { 200 } else { 12 }))
                })
                .collect();
            if cases.below(2) == 0 {
                // Sent sorted, as SDKs do, repeated names in sending order.
                pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            let refs = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let method = if case % 2 == 0 { "GET" } else { "POST" };
            let expected = v1_mac(&secret, &v1_string_to_sign(method, refs()));
            assert_eq!(
                v1_mac_of(&key, method, refs()),
                expected,
                "case {case}: {pairs:?}"
            );
            let signature = v1_signature(method, refs(), &secret);
            assert!(v1_matches(&key, method, refs(), &signature), "case {case}");
            assert!(
                !v1_matches(
                    &V1Key::new(&format!("{secret}x")),
                    method,
                    refs(),
                    &signature
                ),
                "case {case}: another key"
            );
        }
    }

    #[test]
    fn a_repeated_name_is_signed_in_the_order_sent() {
        let sts = v1_string_to_sign("GET", [("b", "2"), ("a", "y"), ("a", "x")]);
        assert_eq!(sts, "GET&%2F&a%3Dy%26a%3Dx%26b%3D2");
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let key = V1Key::new("canary-secret-value");
        assert_eq!(format!("{key:?}"), "V1Key(***)");
    }
}
