//! Signing cost of a typical PutSecretValue: the bare V1 and V3 signatures
//! (canonicalise, hash, HMAC, encode) over the parameters `wire::prepare`
//! signs, and the whole `prepare` (placement, signing, URL and headers).
//!
//! A hand-rolled harness (`harness = false`, no criterion): each case is
//! warmed up, then timed over several rounds sized to about 40 ms each; the
//! median round is reported, with the fastest and slowest. As a ceiling
//! measured in the same run, the bare HMAC-SHA1 of a V1 string to sign of the
//! same length is timed too, so the figures can be read as ratios across
//! machines (performance.md). Run with `cargo xtask bench sign`.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use rota_kms::credentials::Credentials;
use rota_kms::endpoint::BaseUrl;
use rota_kms::kms::{KmsAction as _, PutSecretValue};
use rota_kms::sign::{self, SignatureVersion, V3Input};
use rota_kms::transport::Placement;
use rota_kms::wire::{self, SigningContext};

const ROUNDS: usize = 15;
const ROUND_TARGET: Duration = Duration::from_millis(40);
const WARM_UP: Duration = Duration::from_millis(300);

/// Nanoseconds per call of `f`: (median, min, max) over the rounds.
fn measure<T>(mut f: impl FnMut() -> T) -> (f64, f64, f64) {
    // Warm up, and size a round from the warm-up's pace.
    let start = Instant::now();
    let mut calls: u64 = 0;
    while start.elapsed() < WARM_UP {
        black_box(f());
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let iters = ((ROUND_TARGET.as_secs_f64() / per_call) as u64).max(10);
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    (rounds[ROUNDS / 2], rounds[0], rounds[ROUNDS - 1])
}

fn report(name: &str, (median, min, max): (f64, f64, f64), ceiling: Option<f64>) {
    let ratio = ceiling
        .map(|c| format!("  ({:.1}× the bare HMAC-SHA1)", median / c))
        .unwrap_or_default();
    println!("{name:<34} {median:>8.0} ns/iter  (min {min:.0}, max {max:.0}){ratio}");
}

fn main() {
    let credentials = Credentials::new("LTAI5tBenchmarkKeyId01", "BenchmarkSecretValue0123456789");
    let put = PutSecretValue {
        secret_name: "app/prod/db-password".into(),
        version_id: "rota-20240101T000000Z-3f9a".into(),
        secret_data: r#"{"user":"app","password":"p@ss wörd!~*+ 9f8e7d6c5b4a"}"#.into(),
        secret_data_type: Some("text".into()),
        version_stages: Some(vec!["ACSCurrent".into()]),
    };
    let request = put.to_request().expect("a valid request");
    let base = BaseUrl::parse("https://kms.cn-hangzhou.aliyuncs.com").unwrap();
    let time = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let nonce = "0123456789abcdef0123456789abcdef";
    let timestamp = wire::format_timestamp(time);
    let secret = credentials.access_key_secret.expose_secret();

    // The parameters a V1 PutSecretValue signs: 9 common, 4 query, 1 body.
    let mut v1_params: Vec<(&str, &str)> = vec![
        ("Action", "PutSecretValue"),
        ("Version", "2016-01-20"),
        ("Format", "JSON"),
        ("AccessKeyId", &credentials.access_key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", &timestamp),
        ("RegionId", "cn-hangzhou"),
    ];
    v1_params.extend(
        request
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str())),
    );

    // The V3 inputs: query parameters, the signed headers, the body hash.
    let query: Vec<(&str, &str)> = request
        .params
        .iter()
        .filter(|p| p.placement == Placement::Query)
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let body = rota_kms::encode::encode_pairs(
        request
            .params
            .iter()
            .filter(|p| p.placement == Placement::Body)
            .map(|p| (p.name.as_str(), p.value.as_str())),
    );
    let hashed = sign::sha256_hex(body.as_bytes());
    let authority = base.authority();
    let headers: Vec<(&str, &str)> = vec![
        ("host", &authority),
        ("x-acs-action", "PutSecretValue"),
        ("x-acs-version", "2016-01-20"),
        ("x-acs-date", &timestamp),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", &hashed),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let v3_input = V3Input {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };

    let ctx = |version| SigningContext {
        credentials: &credentials,
        version,
        time,
        nonce,
        region_id: "cn-hangzhou",
    };
    let v1_ctx = ctx(SignatureVersion::V1);
    let v3_ctx = ctx(SignatureVersion::V3);

    let string_to_sign = sign::v1_string_to_sign("POST", v1_params.iter().copied());
    println!(
        "PutSecretValue: {} V1 parameters, V1 string to sign {} bytes; V3 {} query parameters, {} signed headers",
        v1_params.len(),
        string_to_sign.len(),
        query.len(),
        headers.len()
    );

    let hmac = measure(|| sign::v1_sign(black_box(secret), black_box(&string_to_sign)));
    report("ceiling: HMAC-SHA1 + base64 only", hmac, None);
    let c = Some(hmac.0);
    report(
        "v1_signature (14 params)",
        measure(|| sign::v1_signature("POST", black_box(&v1_params).iter().copied(), secret)),
        c,
    );
    report(
        "v3_signature",
        measure(|| sign::v3_signature(black_box(&v3_input), secret)),
        c,
    );
    report(
        "wire::prepare V1",
        measure(|| wire::prepare(black_box(&request), &base, &v1_ctx)),
        c,
    );
    report(
        "wire::prepare V3",
        measure(|| wire::prepare(black_box(&request), &base, &v3_ctx)),
        c,
    );
}
