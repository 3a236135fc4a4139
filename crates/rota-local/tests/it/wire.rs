//! The HTTP server, through `HttpTransport` (V1 and V3) and hand-built
//! requests for everything a real client might send.

use std::sync::Arc;

use rota_kms::credentials::Credentials;
use rota_kms::encode::encode_pairs;
use rota_kms::kms::*;
use rota_kms::{KmsClient, SecretString, SignatureVersion};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Env, code, env, status};

/// A raw HTTP/1.1 exchange (`Connection: close`): status, headers, body.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // A large body may be refused before it is all sent.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.as_bytes().to_vec())
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// V1 common parameters for the root key at the test clock's time.
fn v1_params<'a>(action: &'a str, nonce: &'a str, ts: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Action", action),
        ("Version", "2016-01-20"),
        ("AccessKeyId", "LTAIroottestkey00001"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", ts),
    ]
}

fn signed_query(method: &str, params: Vec<(&str, &str)>, secret: &str) -> String {
    let sig = rota_kms::sign::v1_signature(method, params.iter().copied(), secret);
    let mut all = params;
    all.push(("Signature", sig.as_str()));
    encode_pairs(all)
}

#[tokio::test]
async fn v1_and_v3_clients_work_end_to_end() {
    let e = env().await;
    let server = e.server().await;
    for (i, version) in [SignatureVersion::V1, SignatureVersion::V3]
        .into_iter()
        .enumerate()
    {
        let c = KmsClient::new(Arc::new(e.http(&server, version)));
        let name = format!("wire/{i}");
        c.send(&CreateSecret {
            secret_name: name.clone(),
            secret_data: SecretString::new("a b*c~d+e ö {\"json\":1}"),
            version_id: "v1".into(),
            tags: vec![Tag::new("env", "prod")],
            ..CreateSecret::default()
        })
        .await
        .unwrap();
        c.send(&PutSecretValue {
            secret_name: name.clone(),
            version_id: "v2".into(),
            secret_data: SecretString::new("second"),
            secret_data_type: Some("binary".into()),
            version_stages: Some(vec!["ACSCurrent".into(), "ACSNext".into()]),
        })
        .await
        .unwrap();
        let v = c
            .send(&GetSecretValue {
                version_id: Some("v1".into()),
                ..GetSecretValue::current(&name)
            })
            .await
            .unwrap();
        assert_eq!(v.secret_data.expose_secret(), "a b*c~d+e ö {\"json\":1}");
        let cur = c.get_secret_value(&name).await.unwrap();
        assert_eq!(cur.secret_data_type, "binary");
        assert_eq!(cur.version_stages.version_stage, ["ACSCurrent", "ACSNext"]);
        // The same read in-process gives the same answer (request ids aside).
        let local = e.client().get_secret_value(&name).await.unwrap();
        assert_eq!(
            SecretValue {
                request_id: String::new(),
                ..cur
            },
            SecretValue {
                request_id: String::new(),
                ..local
            }
        );
        let d = c.describe_secret(&name).await.unwrap();
        assert_eq!(d.tags.unwrap().tag, vec![Tag::new("env", "prod")]);
        assert_eq!(
            code(c.get_secret_value("wire/none").await),
            "Forbidden.ResourceNotFound"
        );
        assert_eq!(status(c.get_secret_value("wire/none").await), 404);
        let dup = c
            .send(&CreateSecret {
                secret_name: name.clone(),
                secret_data: SecretString::new("x"),
                version_id: "v1".into(),
                ..CreateSecret::default()
            })
            .await;
        assert_eq!(code(dup), "Rejected.ResourceExist");
        let listed = c.list_all_secrets(vec![], true).await.unwrap();
        assert!(listed.iter().any(|s| s.secret_name == name));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn other_access_keys_and_wrong_secrets() {
    let e = env().await;
    let server = e.server().await;
    let alice = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V3,
        Credentials::new("LTAIaliceexample0001", "alice-secret"),
    )));
    alice.send(&DescribeRegions).await.unwrap();
    for version in [SignatureVersion::V1, SignatureVersion::V3] {
        let wrong = KmsClient::new(Arc::new(e.http_with(
            &server,
            version,
            Credentials::new("LTAIaliceexample0001", "not-her-secret"),
        )));
        assert_eq!(
            code(wrong.send(&DescribeRegions).await),
            "SignatureDoesNotMatch"
        );
        let unknown = KmsClient::new(Arc::new(e.http_with(
            &server,
            version,
            Credentials::new("LTAIunknown", "x"),
        )));
        let r = unknown.send(&DescribeRegions).await;
        assert_eq!(status(unknown.send(&DescribeRegions).await), 404);
        assert_eq!(code(r), "InvalidAccessKeyId.NotFound");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn timestamps_outside_fifteen_minutes_are_refused() {
    let e = env().await;
    let server = e.server().await;
    let c = KmsClient::new(Arc::new(e.http(&server, SignatureVersion::V1)));
    c.send(&DescribeRegions).await.unwrap();
    // The server's clock moves; the client's signing clock is the same manual
    // clock, so skew it with a separate client clock instead.
    for (offset, ok) in [(14 * 60, true), (16 * 60, false), (-16 * 60, false)] {
        let clock = e.clock.clone();
        let t = rota_kms::HttpTransport::builder()
            .endpoints(
                rota_kms::Endpoints::custom(
                    "cn-hangzhou",
                    &format!("http://{}", server.local_addr()),
                )
                .unwrap(),
            )
            .credentials(Arc::new(rota_kms::credentials::StaticCredentials::new(
                e.cloud.root_credentials(),
            )))
            .retry(rota_kms::http::RetryPolicy::none())
            .signature_version(if ok {
                SignatureVersion::V3
            } else {
                SignatureVersion::V1
            })
            .clock(Arc::new(move || {
                rota_local::Clock::now(&clock) + chrono::Duration::seconds(offset)
            }))
            .build()
            .unwrap();
        let r = KmsClient::new(Arc::new(t)).send(&DescribeRegions).await;
        if ok {
            r.unwrap();
        } else {
            assert_eq!(code(r), "InvalidTimeStamp.Expired");
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn signature_mismatch_quotes_the_string_to_sign_after_a_colon() {
    let e = env().await;
    let server = e.server().await;
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let params = v1_params("DescribeRegions", "nonce-sig-1", &ts);
    let expected_sts = rota_kms::sign::v1_string_to_sign("POST", params.iter().copied());
    let mut q = params.clone();
    q.push(("Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    let (st, _, body) = raw(
        server.local_addr(),
        "POST",
        &format!("/?{}", encode_pairs(q)),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 400);
    let v = json(&body);
    assert_eq!(v["Code"], "SignatureDoesNotMatch");
    let msg = v["Message"].as_str().unwrap();
    // The Python core SDK compares Message.split(':')[1] with its own string to sign (G2).
    assert_eq!(msg.split(':').nth(1), Some(expected_sts.as_str()));
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(v[field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
    }
    assert!(
        v["Recommend"]
            .as_str()
            .unwrap()
            .contains("q=SignatureDoesNotMatch")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nonces_cannot_be_replayed() {
    let e = env().await;
    let server = e.server().await;
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let q = signed_query(
        "POST",
        v1_params("DescribeRegions", "nonce-replay", &ts),
        "root-test-secret",
    );
    let (st, _, _) = raw(server.local_addr(), "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 200);
    let (st, _, body) = raw(server.local_addr(), "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 400);
    assert_eq!(json(&body)["Code"], "SignatureNonceUsed");
    server.shutdown().await;
}

#[tokio::test]
async fn every_client_variant_is_accepted() {
    let e = env().await;
    let server = e.server().await;
    let addr = server.local_addr();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    // Old core: GET, everything in the query, Format=JSON, RegionId, empty SignatureType, True booleans.
    let mut p = v1_params("CreateSecret", "n-old-core", &ts);
    p.extend([
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("SignatureType", ""),
        ("SecretName", "variants/old"),
        ("VersionId", "v1"),
        ("SecretData", "hello world~*+"),
        ("Tags", r#"[{"TagKey":"env","TagValue":"prod"}]"#),
    ]);
    let q = signed_query("GET", p, "root-test-secret");
    let (st, _, body) = raw(addr, "GET", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["SecretName"], "variants/old");
    assert!(json(&body)["RequestId"].as_str().is_some());
    // pop-core POST: everything, Signature included, in the form body; lower-case json; True.
    let mut p = v1_params("DescribeSecret", "n-pop-core", &ts);
    p.extend([
        ("Format", "json"),
        ("SecretName", "variants/old"),
        ("FetchTags", "True"),
    ]);
    let form = signed_query("POST", p, "root-test-secret").replace("%20", "+");
    let (st, _, body) = raw(
        addr,
        "POST",
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["Tags"]["Tag"][0]["TagKey"], "env");
    // Terraform: common params in the query, business params in the body.
    let common = v1_params("GetSecretValue", "n-terraform", &ts);
    let business = vec![("SecretName", "variants/old")];
    let sig = rota_kms::sign::v1_signature(
        "POST",
        common.iter().chain(business.iter()).copied(),
        "root-test-secret",
    );
    let mut q = common.clone();
    q.push(("Signature", &sig));
    let (st, _, body) = raw(
        addr,
        "POST",
        &format!("/?{}", encode_pairs(q)),
        &[("content-type", "application/x-www-form-urlencoded")],
        encode_pairs(business).as_bytes(),
    )
    .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["SecretData"], "hello world~*+");
    // Format=XML answers XML, lists repeated inside their wrapper.
    let mut p = v1_params("GetSecretValue", "n-xml", &ts);
    p.extend([("Format", "XML"), ("SecretName", "variants/old")]);
    let q = signed_query("POST", p, "root-test-secret");
    let (st, head, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 200);
    assert!(head.to_ascii_lowercase().contains("text/xml"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("<VersionStages><VersionStage>ACSCurrent</VersionStage></VersionStages>"),
        "{text}"
    );
    assert!(text.contains("<SecretData>hello world~*+</SecretData>"));
    // XML errors have an <Error> root.
    let mut p = v1_params("GetSecretValue", "n-xml-err", &ts);
    p.extend([("Format", "xml"), ("SecretName", "variants/none")]);
    let q = signed_query("POST", p, "root-test-secret");
    let (st, _, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 404);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("<Error>") && text.contains("<Code>Forbidden.ResourceNotFound</Code>"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn missing_parameters_unknown_actions_routes_and_limits() {
    let e: Env = env().await;
    let server = e.server().await;
    let addr = server.local_addr();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    // No Timestamp.
    let p: Vec<(&str, &str)> = v1_params("DescribeRegions", "n-missing", &ts)
        .into_iter()
        .filter(|(k, _)| *k != "Timestamp")
        .collect();
    let q = signed_query("POST", p, "root-test-secret");
    let (st, _, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (400, "MissingParameter")
    );
    assert!(
        json(&body)["Message"]
            .as_str()
            .unwrap()
            .contains("Timestamp")
    );
    // Missing business parameter.
    let q = signed_query(
        "POST",
        v1_params("GetSecretValue", "n-missing-2", &ts),
        "root-test-secret",
    );
    let (st, _, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (400, "MissingParameter")
    );
    // Unknown action.
    let q = signed_query(
        "POST",
        v1_params("DoMagic", "n-unknown", &ts),
        "root-test-secret",
    );
    let (st, _, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (404, "InvalidAction.NotFound")
    );
    // Other products are routed by version; unknown actions are refused.
    let mut p = v1_params("StartInstance", "n-ecs", &ts);
    p[1] = ("Version", "2014-05-26");
    let q = signed_query("POST", p, "root-test-secret");
    let (st, _, body) = raw(addr, "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (404, "InvalidAction.NotFound")
    );
    assert!(json(&body)["Message"].as_str().unwrap().contains("ECS"));
    // Wrong path and method.
    let (st, _, body) = raw(addr, "POST", "/other", &[], b"").await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (404, "InvalidAction.NotFound")
    );
    let (st, _, _) = raw(addr, "DELETE", "/", &[], b"").await;
    assert_eq!(st, 404);
    // A body over the limit: a clear error, and the server keeps serving.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let (st, _, body) = raw(
        addr,
        "POST",
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        &big,
    )
    .await;
    assert_eq!(
        (st, json(&body)["Code"].as_str().unwrap()),
        (413, "InvalidParameter.RequestTooLarge")
    );
    let c = KmsClient::new(Arc::new(e.http(&server, SignatureVersion::V3)));
    c.send(&DescribeRegions).await.unwrap();
    server.shutdown().await;
}

/// A V3 request for `action`, signed over `signed` (names of the headers
/// sent that the signature covers).
fn v3_request(
    addr: std::net::SocketAddr,
    action: &str,
    nonce: &str,
    date: &str,
    body: &[u8],
    signed: &[&str],
) -> Vec<(String, String)> {
    let host = addr.to_string();
    let hashed = rota_kms::sign::sha256_hex(body);
    let all: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("x-acs-action".into(), action.into()),
        ("x-acs-version".into(), "2016-01-20".into()),
        ("x-acs-date".into(), date.into()),
        ("x-acs-signature-nonce".into(), nonce.into()),
        ("x-acs-content-sha256".into(), hashed.clone()),
    ];
    let covered: Vec<(&str, &str)> = all
        .iter()
        .filter(|(k, _)| signed.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let input = rota_kms::sign::V3Input {
        method: "POST",
        path: "/",
        query: &[("SecretName", "v3/target")],
        headers: &covered,
        hashed_payload: &hashed,
    };
    let sig = rota_kms::sign::v3_signature(&input, "root-test-secret");
    let mut out: Vec<(String, String)> = all.into_iter().filter(|(k, _)| k != "host").collect();
    out.push((
        "authorization".into(),
        sig.authorization("LTAIroottestkey00001"),
    ));
    out
}

#[tokio::test]
async fn v3_signatures_must_cover_host_and_every_acs_header_and_the_body() {
    let e = env().await;
    let server = e.server().await;
    let addr = server.local_addr();
    let date = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    e.client()
        .send(&CreateSecret {
            secret_name: "v3/target".into(),
            secret_data: SecretString::new("v3-canary-value"),
            version_id: "v1".into(),
            ..CreateSecret::default()
        })
        .await
        .unwrap();
    let send = |headers: Vec<(String, String)>, body: &'static [u8]| async move {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        raw(addr, "POST", "/?SecretName=v3%2Ftarget", &refs, body).await
    };
    // Fully signed: accepted.
    let all = [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ];
    let (st, _, body) = send(
        v3_request(addr, "DescribeSecret", "v3-ok", &date, b"", &all),
        b"",
    )
    .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    // Signed over host only: the action could be swapped; refused.
    let mut h = v3_request(
        addr,
        "DescribeSecret",
        "v3-host-only",
        &date,
        b"",
        &["host"],
    );
    for (k, v) in &mut h {
        if k == "x-acs-action" {
            *v = "DeleteSecret".into();
        }
    }
    let (st, _, body) = send(h, b"").await;
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let j = json(&body);
    assert_eq!(j["Code"], "IncompleteSignature");
    assert!(
        j["Message"].as_str().unwrap().contains("x-acs-action"),
        "{j}"
    );
    // Without host: refused.
    let no_host: Vec<&str> = all.iter().copied().filter(|h| *h != "host").collect();
    let (st, _, _) = send(
        v3_request(addr, "DescribeSecret", "v3-no-host", &date, b"", &no_host),
        b"",
    )
    .await;
    assert_eq!(st, 400);
    // A body that is not the one x-acs-content-sha256 names: refused.
    let (st, _, body) = send(
        v3_request(addr, "DescribeSecret", "v3-body", &date, b"", &all),
        b"SecretName=other",
    )
    .await;
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        json(&body)["Message"]
            .as_str()
            .unwrap()
            .contains("x-acs-content-sha256")
    );
    // The secret is still there.
    assert!(e.client().describe_secret("v3/target").await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn a_v1_signature_mismatch_never_echoes_the_secret_value() {
    let e = env().await;
    let server = e.server().await;
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let mut p = v1_params("CreateSecret", "n-mismatch", &ts);
    p.extend([
        ("SecretName", "echo/x"),
        ("VersionId", "v1"),
        ("SecretData", "echo-canary-9931 with spaces"),
        ("SecurityToken", "token-canary-5521"),
    ]);
    let q = signed_query("POST", p, "not-the-secret");
    let (st, _, body) = raw(server.local_addr(), "POST", &format!("/?{q}"), &[], b"").await;
    assert_eq!(st, 400);
    let j = json(&body);
    assert_eq!(j["Code"], "SignatureDoesNotMatch");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("echo-canary-9931"), "{text}");
    assert!(!text.contains("echo-canary"), "{text}");
    assert!(text.contains("SecretData%3D%252A%252A%252A"), "{text}");
    // A security token is a credential: not echoed either.
    assert!(!text.contains("token-canary"), "{text}");
    assert!(text.contains("SecurityToken%3D%252A%252A%252A"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_bodies_time_out_and_connections_past_the_cap_get_an_envelope() {
    let e = env().await;
    let server = rota_local::server::serve(
        e.cloud.clone(),
        rota_local::server::ServerConfig {
            max_connections: 2,
            body_timeout: std::time::Duration::from_millis(500),
            metrics_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..rota_local::server::ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    // A body that never finishes: answered with an error once the body
    // timeout passed, not held open.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nab")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&out).contains("\"RequestId\"") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the slow body was held open");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("did not arrive within"), "{text}");
    // Two idle connections take the cap; a third is told so.
    let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _b = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let j = json(body.as_bytes());
    assert_eq!(j["Code"], "ServiceUnavailable");
    assert!(j["RequestId"].as_str().is_some());
    // The metrics say so: two open at the cap of two, one refused, one
    // body timed out.
    let metrics_addr = server.metrics_addr().expect("metrics served");
    let mut m = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    m.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), m.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    for line in [
        "rota_local_connections_open 2",
        "rota_local_connections_max 2",
        "rota_local_connections_refused_total 1",
        "rota_local_body_timeouts_total 1",
        "# TYPE rota_local_replay_window_narrowed_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    server.shutdown().await;
}

/// Requests the HTTP library refuses before our code runs (a bad request
/// line, a bad header, too many headers, a URI past its limit) are still
/// answered in the error envelope, with the library's status.
#[tokio::test]
async fn framing_errors_are_answered_in_the_error_envelope() {
    let e = env().await;
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let long_uri = format!("GET /?a={} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            "400",
            "MalformedRequest",
        ),
        (
            "bad header",
            b"GET / HTTP/1.1\r\nhost x\r\n\r\n".to_vec(),
            "400",
            "MalformedRequest",
        ),
        (
            "too many headers",
            format!("GET / HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n").into_bytes(),
            "431",
            "InvalidParameter.HeadersTooLarge",
        ),
        (
            "long URI",
            long_uri.into_bytes(),
            "414",
            "InvalidParameter.UriTooLong",
        ),
    ];
    for (what, input, status, code) in cases {
        let out = rota_local::server::exchange(&e.cloud, &input).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {text}"
        );
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let j = json(body.as_bytes());
        assert_eq!(j["Code"], code, "{what}: {text}");
        assert!(
            j["RequestId"].as_str().is_some_and(|r| !r.is_empty()),
            "{what}: {text}"
        );
        assert!(j["HostId"].is_string(), "{what}: {text}");
    }
    // A well-formed request still gets our own answer (here: unsigned).
    let out = rota_local::server::exchange(
        &e.cloud,
        b"GET /?Action=ListSecrets HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\"Code\":\"MissingParameter") || text.contains("\"Code\":\"Missing"),
        "{text}"
    );
}

/// The server writes GetSecretValue's JSON from the stored secret without
/// building the typed answer; its text must be exactly the typed answer's
/// (the in-process path's), for plain and managed secrets, every field
/// the answer can carry.
#[tokio::test]
async fn get_secret_value_json_is_the_typed_answer_byte_for_byte() {
    let e = env().await;
    let server = e.server().await;
    let addr = server.local_addr();
    let c = e.client();
    c.send(&CreateSecret {
        secret_name: "json/plain".into(),
        secret_data: SecretString::new("line1\n\"quoted\" \\ é \u{1F511}"),
        version_id: "v1".into(),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    c.send(&PutSecretValue {
        secret_name: "json/plain".into(),
        secret_data: SecretString::new("second"),
        version_id: "v2".into(),
        version_stages: Some(vec!["ACSCurrent".into(), "blue".into()]),
        ..PutSecretValue::default()
    })
    .await
    .unwrap();
    c.send(&CreateSecret {
        secret_name: "json/rds".into(),
        secret_data: SecretString::new(
            r#"{"Accounts":[{"AccountName":"app","AccountPassword":"P@ss1234"}]}"#,
        ),
        version_id: "v1".into(),
        secret_type: Some("Rds".into()),
        extended_config: Some(
            r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","CustomData":{"a":"b"}}"#.into(),
        ),
        enable_automatic_rotation: Some(true),
        rotation_interval: Some("7d".into()),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("json/plain", &[]),
        ("json/plain", &[("VersionId", "v1")]),
        ("json/plain", &[("VersionStage", "blue")]),
        ("json/rds", &[]),
        ("json/rds", &[("FetchExtendedConfig", "true")]),
    ];
    for (i, (name, extra)) in cases.iter().enumerate() {
        let nonce = format!("n-json-{i}");
        let mut p = v1_params("GetSecretValue", &nonce, &ts);
        p.push(("SecretName", name));
        p.extend(extra.iter().copied());
        let q = signed_query("GET", p, "root-test-secret");
        let (st, _, body) = raw(addr, "GET", &format!("/?{q}"), &[], b"").await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        let served: Value = json(&body);
        let mut typed = c
            .send(&GetSecretValue {
                version_id: extra
                    .iter()
                    .find(|(k, _)| *k == "VersionId")
                    .map(|(_, v)| (*v).to_owned()),
                version_stage: extra
                    .iter()
                    .find(|(k, _)| *k == "VersionStage")
                    .map(|(_, v)| (*v).to_owned()),
                fetch_extended_config: extra
                    .iter()
                    .any(|(k, _)| *k == "FetchExtendedConfig")
                    .then_some(true),
                ..GetSecretValue::current(*name)
            })
            .await
            .unwrap();
        typed.request_id = served["RequestId"].as_str().unwrap().to_owned();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            serde_json::to_string(&typed).unwrap(),
            "case {i}"
        );
    }
    server.shutdown().await;
}

/// Shutdown closes idle keep-alive connections, and returns once every
/// connection has ended.
#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let e = env().await;
    let server = e.server().await;
    let addr = server.local_addr();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    // An idle keep-alive connection, after one answered request.
    let q = signed_query(
        "GET",
        v1_params("DescribeRegions", "n-idle", &ts),
        "root-test-secret",
    );
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(format!("GET /?{q} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Read the whole answer (head, then content-length bytes).
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = idle.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if body.len() >= len {
                assert!(head.starts_with("HTTP/1.1 200"), "{text}");
                break;
            }
        }
    }
    let stopping = tokio::spawn(server.shutdown());
    // The idle connection is closed: end of stream, nothing more.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    stopping.await.unwrap();
}

/// A rustls client that trusts `ca_pem` and checks validity at `at` (the
/// instant the server's certificate was issued for, not the machine's).
fn tls_client(ca_pem: &[u8], at: chrono::DateTime<chrono::Utc>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject as _;
    #[derive(Debug)]
    struct At(rustls::pki_types::UnixTime);
    impl rustls::time_provider::TimeProvider for At {
        fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
            Some(self.0)
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let secs = u64::try_from(at.timestamp()).unwrap();
    let config = rustls::ClientConfig::builder_with_details(
        Arc::new(rustls::crypto::ring::default_provider()),
        Arc::new(At(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(secs),
        ))),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `--tls`: a signed request over HTTPS with the local CA trusted, for
/// every name the certificate carries; plain HTTP on its own address
/// beside it; a client that does not trust the CA, plain text on the TLS
/// port and a stalled handshake get nothing.
#[tokio::test]
async fn https_with_the_local_ca_and_plain_http_beside_it() {
    let e = env().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let issued = crate::common::start_time();
    let (tls, ca) =
        rota_local::tls::local_ca(tls_dir.path(), &["kms.rota.test".into()], issued).unwrap();
    let server = rota_local::server::serve(
        e.cloud.clone(),
        rota_local::server::ServerConfig {
            tls: Some(tls),
            plain_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            header_timeout: std::time::Duration::from_millis(500),
            ..rota_local::server::ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let ca_pem = std::fs::read(&ca.cert_path).unwrap();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let query = |nonce: &str| {
        signed_query(
            "GET",
            v1_params("DescribeRegions", nonce, &ts),
            "root-test-secret",
        )
    };
    let connector = tls_client(&ca_pem, issued);
    for (i, name) in ["localhost", "127.0.0.1", "kms.rota.test"]
        .into_iter()
        .enumerate()
    {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut s = connector.connect(server_name, tcp).await.unwrap();
        let head = format!(
            "GET /?{} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n",
            query(&format!("tls-{i}"))
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
        assert!(text.contains("\"Regions\""), "{name}: {text}");
    }
    // A name the certificate does not carry is refused by the client.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let other = rustls::pki_types::ServerName::try_from("kms.example.com").unwrap();
    assert!(connector.connect(other, tcp).await.is_err());
    // A CA the client does not trust: refused.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = rota_local::tls::local_ca(stranger_dir.path(), &[], issued)
        .unwrap()
        .1;
    let untrusting = tls_client(&std::fs::read(&stranger.cert_path).unwrap(), issued);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let local = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(untrusting.connect(local, tcp).await.is_err());
    // Plain HTTP on its own address.
    let plain = server.plain_addr().expect("plain listener");
    let (st, _, body) = raw(plain, "GET", &format!("/?{}", query("plain-1")), &[], b"").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    // Plain text on the TLS port gets no HTTP answer.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("HTTP/1.1"),
        "{out:?}"
    );
    // A connection that never starts its handshake is closed at the
    // header timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    server.shutdown().await;
}

/// Plain HTTP: a client that stalls inside its headers, and a keep-alive
/// connection left idle, are both closed at the header timeout.
#[tokio::test]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_at_the_header_timeout() {
    let e = env().await;
    let server = rota_local::server::serve(
        e.cloud.clone(),
        rota_local::server::ServerConfig {
            header_timeout: std::time::Duration::from_millis(300),
            ..rota_local::server::ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let closed_within = |mut s: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        (ended.is_ok(), String::from_utf8_lossy(&out).into_owned())
    };
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (closed, _) = closed_within(slow).await;
    assert!(closed, "a stalled header section was held open");
    // One answered request, then silence: the connection is closed.
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let q = signed_query(
        "GET",
        v1_params("DescribeRegions", "idle-1", &ts),
        "root-test-secret",
    );
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(format!("GET /?{q} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (closed, text) = closed_within(idle).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection was held open");
    server.shutdown().await;
}

/// Issue 20's replay test, over HTTP with a small bound: a second key
/// floods many times the guard's capacity, then every captured request of
/// the root key, still inside the ±15-minute window, is refused on replay.
#[tokio::test]
async fn a_flood_past_the_nonce_bound_never_lets_another_keys_captured_requests_replay() {
    let e = env().await;
    let server = rota_local::server::serve(
        e.cloud.clone(),
        rota_local::server::ServerConfig {
            nonce_capacity: 640,
            ..rota_local::server::ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    // Root's requests, answered once and captured.
    let mut captured = Vec::new();
    for i in 0..20 {
        let q = signed_query(
            "GET",
            v1_params("DescribeRegions", &format!("root-{i}"), &ts),
            "root-test-secret",
        );
        let (st, _, body) = raw(addr, "GET", &format!("/?{q}"), &[], b"").await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        captured.push(q);
    }
    // Alice floods ten times the bound, a second later.
    e.clock.advance(chrono::TimeDelta::seconds(1));
    let ts = rota_local::clock::wire_time(rota_local::Clock::now(&e.clock));
    let mut accepted = 0;
    for i in 0..6400 {
        let mut p = v1_params("DescribeRegions", "", &ts);
        p.retain(|(k, _)| *k != "AccessKeyId" && *k != "SignatureNonce");
        let nonce = format!("flood-{i}");
        p.push(("AccessKeyId", "LTAIaliceexample0001"));
        p.push(("SignatureNonce", &nonce));
        let q = signed_query("GET", p, "alice-secret");
        let (st, _, _) = raw(addr, "GET", &format!("/?{q}"), &[], b"").await;
        if st == 200 {
            accepted += 1;
        }
    }
    assert!(accepted > 0, "the flood was refused outright");
    // Every captured request is still refused, whatever the flood did.
    for q in &captured {
        let (st, _, body) = raw(addr, "GET", &format!("/?{q}"), &[], b"").await;
        let j = json(&body);
        assert_ne!(st, 200, "a captured request replayed: {j}");
        let code = j["Code"].as_str().unwrap_or_default();
        // Remembered, or older than the oldest remembered pair once the
        // window narrowed: refused either way.
        assert!(
            code == "SignatureNonceUsed" || code == "InvalidTimeStamp.Expired",
            "{j}"
        );
    }
    server.shutdown().await;
}
