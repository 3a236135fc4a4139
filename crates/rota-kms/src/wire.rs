//! Turning an [`ApiRequest`] into a signed HTTP request, purely: the caller
//! supplies the time and nonce, so the result is reproducible and snapshot-tested.
//!
//! Placement follows the tea SDKs (kms-api.md §1.2): with V1, common
//! parameters and query-placed business parameters go in the URL query and
//! body-placed ones (SecretData) in a form body; with V3, common parameters
//! become `x-acs-*` headers.

use chrono::{DateTime, Utc};

use crate::credentials::Credentials;
use crate::encode::encode_pairs;
use crate::endpoint::BaseUrl;
use crate::sign::{self, SignatureVersion, V3Input};
use crate::transport::{ApiRequest, Placement};

/// The user agent Rota sends.
pub const USER_AGENT: &str = concat!("rota/", env!("CARGO_PKG_VERSION"));

/// Formats a time as the gateway expects (`2024-01-01T00:00:00Z`).
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    use chrono::{Datelike as _, Timelike as _};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    // By hand: chrono's strftime interpreter costs more than the HMAC.
    let mut out = String::with_capacity(20);
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let two = |out: &mut String, n: u32, sep: char| {
        out.push(digit(n / 10));
        out.push(digit(n));
        out.push(sep);
    };
    let year = year as u32;
    two(&mut out, year / 100, digit(year / 10));
    out.push(digit(year));
    out.push('-');
    two(&mut out, t.month(), '-');
    two(&mut out, t.day(), 'T');
    two(&mut out, t.hour(), ':');
    two(&mut out, t.minute(), ':');
    // A leap second (60) is written as 60, as chrono does.
    two(&mut out, t.second() + t.nanosecond() / 1_000_000_000, 'Z');
    out
}

/// What signing needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct SigningContext<'a> {
    /// Who signs.
    pub credentials: &'a Credentials,
    /// Signature version.
    pub version: SignatureVersion,
    /// Request time.
    pub time: DateTime<Utc>,
    /// Unique nonce (32 hex characters, like every SDK).
    pub nonce: &'a str,
    /// Region id, sent as `RegionId` with V1 unless the request carries one.
    pub region_id: &'a str,
}

/// A signed request, ready to send.
///
/// `Debug` omits the body and the query values (they may hold secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// Always `POST`, as every KMS SDK request class uses.
    pub method: &'static str,
    /// Full URL with query.
    pub url: String,
    /// Headers, in sending order.
    pub headers: Vec<(String, String)>,
    /// Form-encoded body (possibly empty).
    pub body: String,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("PreparedRequest")
            .field("method", &self.method)
            .field("url", &path)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Signs `req` for `base`.
pub fn prepare(req: &ApiRequest, base: &BaseUrl, ctx: &SigningContext<'_>) -> PreparedRequest {
    let timestamp = format_timestamp(ctx.time);
    let query_params = req
        .params
        .iter()
        .filter(|p| p.placement == Placement::Query);
    let body_params: Vec<(&str, &str)> = req
        .params
        .iter()
        .filter(|p| p.placement == Placement::Body)
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let body = encode_pairs(body_params.iter().copied());
    let mut headers: Vec<(String, String)> = Vec::with_capacity(10);
    let creds = ctx.credentials;

    let query = match ctx.version {
        SignatureVersion::V1 => {
            let mut q: Vec<(&str, &str)> = vec![
                ("Action", &req.action),
                ("Version", &req.version),
                ("Format", "JSON"),
                ("AccessKeyId", &creds.access_key_id),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureVersion", "1.0"),
                ("SignatureNonce", ctx.nonce),
                ("Timestamp", &timestamp),
            ];
            if req.param("RegionId").is_none() && !ctx.region_id.is_empty() {
                q.push(("RegionId", ctx.region_id));
            }
            if let Some(token) = &creds.security_token {
                q.push(("SecurityToken", token.expose_secret()));
            }
            q.extend(query_params.map(|p| (p.name.as_str(), p.value.as_str())));
            let signature = sign::v1_signature(
                "POST",
                q.iter().copied().chain(body_params.iter().copied()),
                creds.access_key_secret.expose_secret(),
            );
            q.push(("Signature", &signature));
            headers.push(("x-acs-action".into(), req.action.to_string()));
            headers.push(("x-acs-version".into(), req.version.to_string()));
            encode_pairs(q)
        }
        SignatureVersion::V3 => {
            let mut q: Vec<(&str, &str)> = query_params
                .map(|p| (p.name.as_str(), p.value.as_str()))
                .collect();
            // V3 has no common RegionId; the gateway takes it as a query
            // parameter, and the batch tag actions require it.
            if req.param("RegionId").is_none() && !ctx.region_id.is_empty() {
                q.push(("RegionId", ctx.region_id));
            }
            let hashed = sign::sha256_hex(body.as_bytes());
            let mut signed: Vec<(&str, String)> = vec![
                ("host", base.authority()),
                ("x-acs-action", req.action.to_string()),
                ("x-acs-version", req.version.to_string()),
                ("x-acs-date", timestamp.clone()),
                ("x-acs-signature-nonce", ctx.nonce.to_owned()),
                ("x-acs-content-sha256", hashed.clone()),
            ];
            if !body.is_empty() {
                signed.push((
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            if let Some(token) = &creds.security_token {
                signed.push(("x-acs-security-token", token.expose_secret().to_owned()));
                signed.push(("x-acs-accesskey-id", creds.access_key_id.clone()));
            }
            let header_refs: Vec<(&str, &str)> =
                signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let input = V3Input {
                method: "POST",
                path: "/",
                query: &q,
                headers: &header_refs,
                hashed_payload: &hashed,
            };
            let sig = sign::v3_signature(&input, creds.access_key_secret.expose_secret());
            headers.extend(
                signed
                    .into_iter()
                    .filter(|(k, _)| *k != "host")
                    .map(|(k, v)| (k.to_owned(), v)),
            );
            headers.push((
                "authorization".into(),
                sig.authorization(&creds.access_key_id),
            ));
            headers.push(("accept".into(), "application/json".into()));
            encode_pairs(q)
        }
    };
    if !body.is_empty() && ctx.version == SignatureVersion::V1 {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    headers.push(("user-agent".into(), USER_AGENT.into()));
    let url = if query.is_empty() {
        format!("{base}/")
    } else {
        format!("{base}/?{query}")
    };
    PreparedRequest {
        method: "POST",
        url,
        headers,
        body,
    }
}

/// A fresh nonce: 32 lower-case hex characters, as every SDK sends.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::encode::hex_lower(&bytes)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn timestamps_match_strftime() {
        let reference = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        for t in [
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2016, 2, 23, 12, 46, 24).unwrap(),
            Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(205, 7, 9, 8, 7, 6).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2030, 6, 30, 23, 59, 59).unwrap()
                + chrono::Duration::milliseconds(999),
            // A leap second.
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap()
                .and_utc(),
        ] {
            assert_eq!(format_timestamp(t), reference(t));
        }
        assert_eq!(
            format_timestamp(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            "2024-01-01T00:00:00Z"
        );
    }
}
