//! `HttpTransport` against a loopback stub: which failures are retried and
//! which are not, the retry budget, `x-acs-retry-after`, bad responses and
//! bad input, and the server-side view: every request the client sends
//! verifies with `sign::v1_verify` / `sign::v3_verify`.

use std::sync::Arc;
use std::time::Duration;

use rota_kms::credentials::{Credentials, StaticCredentials};
use rota_kms::encode::parse_form;
use rota_kms::http::RetryPolicy;
use rota_kms::kms::{CreateSecret, PutSecretValue};
use rota_kms::sign::{V3Input, parse_v3_authorization, sha256_hex, v1_verify, v3_verify};
use rota_kms::{Endpoints, Error, ErrorKind, HttpTransport, KmsClient, OpenApi, SignatureVersion};

use crate::stub::{Recorded, Reply, Stub};

const AK: &str = "LTAI5tRetryTest";
const SECRET: &str = "retry-test-secret";
const CANARY: &str = "canary-VALUE-31c9";

const OK_VALUE: &str = r#"{"RequestId":"r-ok","SecretName":"app/db","SecretType":"Generic","SecretData":"hunter2","SecretDataType":"text","VersionId":"v1","VersionStages":{"VersionStage":["ACSCurrent"]},"CreateTime":"2024-01-01T00:00:00Z"}"#;

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn error_body(code: &str) -> String {
    serde_json::json!({
        "RequestId": "r-err", "HostId": "kms.cn-hangzhou.aliyuncs.com",
        "Code": code, "Message": format!("{code} happened")
    })
    .to_string()
}

struct Setup {
    version: SignatureVersion,
    retry: RetryPolicy,
    request_timeout: Duration,
    credentials: Credentials,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            version: SignatureVersion::V1,
            retry: fast(3),
            // Generous: only the timeout tests rely on a request timing out.
            request_timeout: Duration::from_secs(20),
            credentials: Credentials::new(AK, SECRET),
        }
    }
}

impl Setup {
    fn transport(self, stub: &Stub) -> HttpTransport {
        HttpTransport::builder()
            .endpoints(Endpoints::custom("cn-hangzhou", &stub.url()).unwrap())
            .credentials(Arc::new(StaticCredentials::new(self.credentials)))
            .signature_version(self.version)
            .retry(self.retry)
            .request_timeout(self.request_timeout)
            .build()
            .unwrap()
    }

    fn kms(self, stub: &Stub) -> KmsClient {
        KmsClient::new(Arc::new(self.transport(stub)))
    }
}

fn kms(stub: &Stub, retry: RetryPolicy) -> KmsClient {
    Setup {
        retry,
        ..Setup::default()
    }
    .kms(stub)
}

/// Every parameter of a V1 request, as the server decodes it: query and form body.
fn v1_params(req: &Recorded) -> Vec<(String, String)> {
    let mut params = parse_form(req.query()).unwrap();
    if req.header("content-type") == Some("application/x-www-form-urlencoded") {
        params.extend(parse_form(std::str::from_utf8(&req.body).unwrap()).unwrap());
    }
    params
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies a V1 request as the gateway does (kms-api.md §1.8).
fn verify_v1(req: &Recorded, secret: &str) {
    assert_eq!((req.method.as_str(), req.path()), ("POST", "/"));
    let params = v1_params(req);
    let signature = param(&params, "Signature").expect("a Signature parameter");
    let pairs = || params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    v1_verify("POST", pairs(), secret, signature)
        .unwrap_or_else(|e| panic!("V1 signature does not verify: {e}"));
    assert!(v1_verify("POST", pairs(), "another-secret", signature).is_err());
    assert_eq!(param(&params, "SignatureMethod"), Some("HMAC-SHA1"));
    assert_eq!(param(&params, "AccessKeyId"), Some(AK));
}

/// Verifies a V3 request as the gateway does: the canonical request is rebuilt
/// from the headers named in `SignedHeaders`, with the raw `Host` header.
fn verify_v3(req: &Recorded, secret: &str) {
    assert_eq!((req.method.as_str(), req.path()), ("POST", "/"));
    let auth = parse_v3_authorization(req.header("authorization").expect("authorization")).unwrap();
    assert_eq!(auth.algorithm, "ACS3-HMAC-SHA256");
    assert_eq!(auth.access_key_id, AK);
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        assert!(
            auth.signed_headers.iter().any(|h| h == required),
            "{required} is not signed"
        );
    }
    let headers: Vec<(&str, &str)> = auth
        .signed_headers
        .iter()
        .flat_map(|name| {
            req.headers
                .iter()
                .filter(move |(k, _)| k == name)
                .map(|(k, v)| (k.as_str(), v.as_str()))
        })
        .collect();
    assert_eq!(
        headers.len(),
        auth.signed_headers.len(),
        "a signed header is missing"
    );
    let hashed = sha256_hex(&req.body);
    assert_eq!(req.header("x-acs-content-sha256"), Some(hashed.as_str()));
    let query = parse_form(req.query()).unwrap();
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let input = V3Input {
        method: &req.method,
        path: req.path(),
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };
    v3_verify(&input, secret, &auth.signature)
        .unwrap_or_else(|e| panic!("V3 signature does not verify: {e}"));
    assert!(v3_verify(&input, "another-secret", &auth.signature).is_err());
}

// ------------------------------------------------------------------- retried

#[tokio::test]
async fn throttled_429_is_retried_then_succeeds() {
    let stub = Stub::start(|n, _| match n {
        0 => Reply::json(429, &error_body("Rejected.Throttling")),
        _ => Reply::json(200, OK_VALUE),
    })
    .await;
    let value = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap();
    assert_eq!(value.secret_data.expose_secret(), "hunter2");
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    for req in &seen {
        verify_v1(req, SECRET);
        assert_eq!(param(&v1_params(req), "SecretName"), Some("app/db"));
    }
    // Each attempt is signed afresh, with its own nonce.
    let nonce = |r: &Recorded| param(&v1_params(r), "SignatureNonce").unwrap().to_owned();
    assert_ne!(nonce(&seen[0]), nonce(&seen[1]));
}

#[tokio::test]
async fn unavailable_503_is_retried() {
    let stub = Stub::start(|n, _| match n {
        0 | 1 => Reply::json(503, &error_body("ServiceUnavailableTemporary")),
        _ => Reply::json(200, OK_VALUE),
    })
    .await;
    kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap();
    assert_eq!(stub.count(), 3);
}

#[tokio::test]
async fn retry_budget_is_respected() {
    let stub = Stub::always(Reply::json(503, &error_body("ServiceUnavailableTemporary"))).await;
    let err = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    let Error::RetriesExhausted {
        action,
        attempts,
        last,
    } = &err
    else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert_eq!((action.as_str(), *attempts), ("GetSecretValue", 3));
    let Error::Api(api) = last.as_ref() else {
        panic!("expected the last ApiError, got {last:?}");
    };
    assert_eq!(
        (api.status, api.code.as_str(), api.request_id.as_str()),
        (503, "ServiceUnavailableTemporary", "r-err")
    );
    assert_eq!(err.code(), Some("ServiceUnavailableTemporary"));
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(stub.settled(3).await.len(), 3);

    // One attempt in all: the error itself, not RetriesExhausted.
    let stub = Stub::always(Reply::json(503, &error_body("ServiceUnavailableTemporary"))).await;
    let err = kms(&stub, RetryPolicy::none())
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api(_)), "{err:?}");
    assert_eq!(stub.count(), 1);
}

#[tokio::test]
async fn retry_after_header_is_honoured() {
    const AFTER_MS: u64 = 300;
    let stub = Stub::start(|n, _| match n {
        0 => Reply::json(400, &error_body("Throttling.User"))
            .header("x-acs-retry-after", &AFTER_MS.to_string()),
        _ => Reply::json(200, OK_VALUE),
    })
    .await;
    // Backoff alone would wait at most 5 ms.
    let client = Setup {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        ..Setup::default()
    }
    .kms(&stub);
    client.get_secret_value("app/db").await.unwrap();
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    // A lower bound only (a sleep never ends early), so load cannot make it flaky.
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_millis(AFTER_MS),
        "the retry came {gap:?} after the first attempt, before the {AFTER_MS} ms asked for"
    );
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_non_idempotent_actions() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let transport = HttpTransport::builder()
        .endpoints(Endpoints::custom("cn-hangzhou", &url).unwrap())
        .credentials(Arc::new(StaticCredentials::new(Credentials::new(
            AK, SECRET,
        ))))
        .retry(fast(3))
        .build()
        .unwrap();
    let err = KmsClient::new(Arc::new(transport))
        .send(&CreateSecret {
            secret_name: "app/db".into(),
            version_id: "v1".into(),
            secret_data: CANARY.into(),
            ..CreateSecret::default()
        })
        .await
        .unwrap_err();
    let Error::RetriesExhausted { attempts, last, .. } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(
        matches!(last.as_ref(), Error::Http { action, endpoint, .. } if action == "CreateSecret" && *endpoint == url),
        "{last:?}"
    );
    assert!(!format!("{err:?} {err}").contains(CANARY));
}

#[tokio::test]
async fn timeouts_are_retried_only_for_idempotent_actions() {
    let timeout = Duration::from_millis(300);
    // CreateSecret may have been applied: one attempt, then Timeout.
    let stub = Stub::always(Reply::Hang).await;
    let client = Setup {
        request_timeout: timeout,
        ..Setup::default()
    }
    .kms(&stub);
    let err = client
        .send(&CreateSecret {
            secret_name: "app/db".into(),
            version_id: "v1".into(),
            secret_data: CANARY.into(),
            ..CreateSecret::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { action, timeout_ms: 300, .. } if action == "CreateSecret"),
        "{err:?}"
    );
    assert!(!format!("{err:?} {err}").contains(CANARY));
    assert_eq!(
        stub.settled(1).await.len(),
        1,
        "CreateSecret was sent again"
    );

    // GetSecretValue is idempotent: the timed-out attempt is retried.
    let stub = Stub::start(|n, _| match n {
        0 => Reply::Hang,
        _ => Reply::json(200, OK_VALUE),
    })
    .await;
    let client = Setup {
        request_timeout: timeout,
        ..Setup::default()
    }
    .kms(&stub);
    let value = client.get_secret_value("app/db").await.unwrap();
    assert_eq!(value.version_id, "v1");
    assert_eq!(stub.count(), 2);
}

// --------------------------------------------------------------- not retried

#[tokio::test]
async fn invalid_parameter_400_is_not_retried() {
    let stub = Stub::always(Reply::json(400, &error_body("InvalidParameter"))).await;
    let err = kms(&stub, fast(5))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    let api = err.api().expect("an ApiError");
    assert_eq!((api.status, api.code.as_str()), (400, "InvalidParameter"));
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert!(matches!(err, Error::Api(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "GetSecretValue failed with InvalidParameter (HTTP 400): InvalidParameter happened (request id r-err)"
    );
    assert_eq!(stub.settled(1).await.len(), 1);
}

#[tokio::test]
async fn signature_mismatch_never_echoes_the_secret_value() {
    // The gateway quotes its string to sign, which holds every parameter.
    let message = format!(
        "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecretData%3D{CANARY}"
    );
    let stub = Stub::always(Reply::json(
        400,
        &serde_json::json!({"RequestId": "r", "Code": "SignatureDoesNotMatch", "Message": message})
            .to_string(),
    ))
    .await;
    let err = kms(&stub, fast(3))
        .send(&PutSecretValue {
            secret_name: "app/db".into(),
            version_id: "v2".into(),
            secret_data: CANARY.into(),
            ..PutSecretValue::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Signature);
    let shown = format!("{err:?} {err} {:#?}", err.api());
    assert!(!shown.contains(CANARY), "{shown}");
    assert_eq!(stub.count(), 1);
    // The value did go on the wire, in the form body.
    let req = &stub.requests()[0];
    verify_v1(req, SECRET);
    assert!(!req.query().contains(CANARY));
    assert_eq!(param(&v1_params(req), "SecretData"), Some(CANARY));
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn non_json_success_is_a_decode_error() {
    let stub = Stub::always(Reply::text(200, "<html>gateway</html>")).await;
    let err = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { action, status: 200, len: 20, .. } if action == "GetSecretValue"),
        "{err:?}"
    );
    assert_eq!(stub.count(), 1, "a decode error is not retried");

    // JSON, but not an object.
    let stub = Stub::always(Reply::json(200, "[1,2]")).await;
    let err = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Decode { reason, .. } if reason == "expected a JSON object"));

    // An object of the wrong shape: the typed decode fails without quoting the value.
    let stub = Stub::always(Reply::json(
        200,
        &serde_json::json!({"RequestId": "r", "SecretName": "s", "SecretData": 17, "X": CANARY})
            .to_string(),
    ))
    .await;
    let err = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Decode { .. }), "{err:?}");
    assert!(!format!("{err:?} {err}").contains(CANARY));
}

#[tokio::test]
async fn error_without_code_is_malformed() {
    let stub = Stub::always(Reply::json(400, r#"{"Message":"no code here"}"#)).await;
    let err = kms(&stub, fast(3))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MalformedError { action, status: 400, len: 26 } if action == "GetSecretValue"),
        "{err:?}"
    );
    assert_eq!(stub.settled(1).await.len(), 1);

    // A 5xx without a Code is still worth retrying.
    let stub = Stub::always(Reply::text(502, "bad gateway")).await;
    let err = kms(&stub, fast(2))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { attempts: 2, last, .. }
            if matches!(last.as_ref(), Error::MalformedError { status: 502, .. })),
        "{err:?}"
    );
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn truncated_body_is_a_typed_error() {
    let truncated = Reply::Truncated {
        content_length: 500,
        body: br#"{"RequestId":"r","SecretName":"app/db","SecretDa"#.to_vec(),
    };
    // Not idempotent: one attempt, an Http error naming the action.
    let stub = Stub::always(truncated.clone()).await;
    let err = kms(&stub, fast(3))
        .send(&CreateSecret {
            secret_name: "app/db".into(),
            version_id: "v1".into(),
            secret_data: "x".into(),
            ..CreateSecret::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { action, .. } if action == "CreateSecret"),
        "{err:?}"
    );
    assert_eq!(stub.settled(1).await.len(), 1);

    // Idempotent: retried, then given up.
    let stub = Stub::always(truncated).await;
    let err = kms(&stub, fast(2))
        .get_secret_value("app/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { attempts: 2, last, .. }
            if matches!(last.as_ref(), Error::Http { .. })),
        "{err:?}"
    );
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn oversized_secret_is_refused_before_sending() {
    let stub = Stub::always(Reply::json(200, "{}")).await;
    let client = kms(&stub, fast(3));
    let big = "x".repeat(30_721);
    for result in [
        client
            .send(&PutSecretValue {
                secret_name: "app/db".into(),
                version_id: "v2".into(),
                secret_data: big.as_str().into(),
                ..PutSecretValue::default()
            })
            .await
            .map(|_| ()),
        client
            .send(&CreateSecret {
                secret_name: "app/db".into(),
                version_id: "v1".into(),
                secret_data: big.as_str().into(),
                ..CreateSecret::default()
            })
            .await
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "SecretData"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "invalid SecretData: the value is 30721 bytes; KMS stores at most 30720 bytes"
        );
    }
    // Exactly at the limit is accepted.
    let stub_ok = Stub::always(Reply::json(
        200,
        r#"{"RequestId":"r","SecretName":"app/db","VersionId":"v2"}"#,
    ))
    .await;
    kms(&stub_ok, fast(1))
        .send(&PutSecretValue {
            secret_name: "app/db".into(),
            version_id: "v2".into(),
            secret_data: "x".repeat(30_720).into(),
            ..PutSecretValue::default()
        })
        .await
        .unwrap();
    assert_eq!(stub_ok.count(), 1);
    assert_eq!(stub.count(), 0, "nothing was sent");
}

#[test]
fn bad_region_endpoint_and_settings_are_config_errors() {
    let config_key = |e: Error| match e {
        Error::Config { key, reason } => (key, reason),
        other => panic!("expected Config, got {other:?}"),
    };
    let (key, reason) = config_key(Endpoints::region("cn-nowhere-9").unwrap_err());
    assert_eq!(key, "region");
    assert!(
        reason.starts_with("unknown region \"cn-nowhere-9\""),
        "{reason}"
    );
    for bad in [
        "ftp://127.0.0.1:1",
        "http://127.0.0.1:1/kms",
        "http://h:99999",
        "http://",
    ] {
        let (key, _) = config_key(Endpoints::custom("cn-hangzhou", bad).unwrap_err());
        assert_eq!(key, "endpoint", "{bad}");
    }
    let (key, _) = config_key(Endpoints::custom(" ", "http://127.0.0.1:1").unwrap_err());
    assert_eq!(key, "region");

    let creds = || Arc::new(StaticCredentials::new(Credentials::new(AK, SECRET)));
    let endpoints = || Endpoints::custom("cn-hangzhou", "http://127.0.0.1:1").unwrap();
    let (key, _) = config_key(
        HttpTransport::builder()
            .credentials(creds())
            .build()
            .unwrap_err(),
    );
    assert_eq!(key, "endpoints");
    let (key, _) = config_key(
        HttpTransport::builder()
            .endpoints(endpoints())
            .build()
            .unwrap_err(),
    );
    assert_eq!(key, "credentials");
    let (key, _) = config_key(
        HttpTransport::builder()
            .endpoints(endpoints())
            .credentials(creds())
            .retry(RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::default()
            })
            .build()
            .unwrap_err(),
    );
    assert_eq!(key, "retry.max_attempts");
}

// ----------------------------------------------------- server-side signatures

#[tokio::test]
async fn v1_requests_verify_on_the_server_with_and_without_sts() {
    let stub = Stub::always(Reply::json(
        200,
        r#"{"RequestId":"r","SecretName":"app/db","VersionId":"v2"}"#,
    ))
    .await;
    let put = PutSecretValue {
        secret_name: "app/db key+1~*".into(),
        version_id: "v2".into(),
        secret_data: "hello wörld ~*+&=".into(),
        version_stages: Some(vec!["ACSCurrent".into()]),
        ..PutSecretValue::default()
    };
    Setup::default().kms(&stub).send(&put).await.unwrap();
    Setup {
        credentials: Credentials::new(AK, SECRET).with_security_token("sts-token/+="),
        ..Setup::default()
    }
    .kms(&stub)
    .send(&put)
    .await
    .unwrap();
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    for req in &seen {
        verify_v1(req, SECRET);
        let params = v1_params(req);
        assert_eq!(param(&params, "Action"), Some("PutSecretValue"));
        assert_eq!(param(&params, "SecretName"), Some("app/db key+1~*"));
        assert_eq!(param(&params, "SecretData"), Some("hello wörld ~*+&="));
        assert_eq!(param(&params, "VersionStages"), Some(r#"["ACSCurrent"]"#));
        assert_eq!(param(&params, "RegionId"), Some("cn-hangzhou"));
        assert_eq!(req.header("x-acs-action"), Some("PutSecretValue"));
    }
    // V1 carries the STS token as the signed SecurityToken query parameter.
    assert_eq!(param(&v1_params(&seen[0]), "SecurityToken"), None);
    assert!(seen[1].query().contains("SecurityToken=sts-token%2F%2B%3D"));
    assert_eq!(
        param(&v1_params(&seen[1]), "SecurityToken"),
        Some("sts-token/+=")
    );
}

#[tokio::test]
async fn v3_requests_verify_on_the_server_with_and_without_sts() {
    let stub = Stub::always(Reply::json(
        200,
        r#"{"RequestId":"r","SecretName":"app/db","VersionId":"v2"}"#,
    ))
    .await;
    let put = PutSecretValue {
        secret_name: "app/db".into(),
        version_id: "v2".into(),
        secret_data: "hello wörld ~*+&=".into(),
        ..PutSecretValue::default()
    };
    let v3 = |credentials| Setup {
        version: SignatureVersion::V3,
        credentials,
        ..Setup::default()
    };
    v3(Credentials::new(AK, SECRET))
        .kms(&stub)
        .send(&put)
        .await
        .unwrap();
    v3(Credentials::new(AK, SECRET).with_security_token("sts-token"))
        .kms(&stub)
        .send(&put)
        .await
        .unwrap();
    // A query-only request (empty body) through the generic call.
    OpenApi::new(Arc::new(v3(Credentials::new(AK, SECRET)).transport(&stub)))
        .call("kms", "", "DescribeSecret", [("SecretName", "app/db")])
        .await
        .unwrap();
    let seen = stub.requests();
    assert_eq!(seen.len(), 3);
    for req in &seen {
        verify_v3(req, SECRET);
        // V3 has no common parameters in the query.
        assert!(!req.query().contains("Action=") && !req.query().contains("Signature"));
        assert_eq!(req.header("x-acs-version"), Some("2016-01-20"));
    }
    assert_eq!(seen[0].header("x-acs-action"), Some("PutSecretValue"));
    assert_eq!(
        parse_form(std::str::from_utf8(&seen[0].body).unwrap()).unwrap(),
        [("SecretData".to_owned(), "hello wörld ~*+&=".to_owned())]
    );
    // The STS token is a signed header, with the key id beside it.
    assert_eq!(seen[0].header("x-acs-security-token"), None);
    assert_eq!(seen[1].header("x-acs-security-token"), Some("sts-token"));
    assert_eq!(seen[1].header("x-acs-accesskey-id"), Some(AK));
    let auth = parse_v3_authorization(seen[1].header("authorization").unwrap()).unwrap();
    assert!(
        auth.signed_headers
            .iter()
            .any(|h| h == "x-acs-security-token")
    );
    assert_eq!(seen[2].header("x-acs-action"), Some("DescribeSecret"));
    assert!(seen[2].body.is_empty());
}

#[tokio::test]
async fn openapi_call_to_another_product_is_signed_and_retried() {
    let stub = Stub::start(|n, _| match n {
        0 => Reply::json(500, &error_body("InternalError")),
        _ => Reply::json(200, r#"{"RequestId":"r","Instances":{"Instance":[]}}"#),
    })
    .await;
    let transport = HttpTransport::builder()
        .endpoints(
            Endpoints::region("cn-hangzhou")
                .unwrap()
                .with_endpoint(rota_kms::Product::Ecs, &stub.url())
                .unwrap(),
        )
        .credentials(Arc::new(StaticCredentials::new(Credentials::new(
            AK, SECRET,
        ))))
        .retry(fast(3))
        .build()
        .unwrap();
    let v = OpenApi::new(Arc::new(transport))
        .call("ecs", "", "DescribeInstances", [("PageSize", "10")])
        .await
        .unwrap();
    assert_eq!(v["RequestId"], "r");
    let seen = stub.requests();
    assert_eq!(seen.len(), 2, "500 InternalError is retried");
    for req in &seen {
        verify_v1(req, SECRET);
        let params = v1_params(req);
        assert_eq!(param(&params, "Action"), Some("DescribeInstances"));
        assert_eq!(param(&params, "Version"), Some("2014-05-26"));
        assert_eq!(param(&params, "PageSize"), Some("10"));
    }
}
