//! STS in the local world over HTTP: AssumeRole for declared roles (trust,
//! duration, inline policy), requests signed with the temporary
//! credentials (V1 and V3) and their security token, GetCallerIdentity,
//! and the ECS metadata service handing out an instance role's
//! credentials.

use std::sync::Arc;

use rota_kms::credentials::Credentials;
use rota_kms::kms::*;
use rota_kms::{KmsClient, SecretString, SignatureVersion};
use serde_json::Value;

use crate::common::{Env, code, env_world, status};

const WORLD: &str = r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"
access_key "LTAIaliceexample0001" {
  secret = "alice-secret"
  user   = "alice"
}
access_key "LTAIbobexample000001" {
  secret = "bob-secret"
  user   = "bob"
}
ram_role "app-reader" {
  assume_role_policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { RAM = ["acs:ram::1234567890123456:user/alice"] } }]
  }
  policy = <<JSON
{"Version":"1","Statement":[
  {"Effect":"Allow","Action":["kms:GetSecretValue","kms:DescribeSecret"],"Resource":"acs:kms:*:*:secret/app/*"},
  {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}
JSON
  max_session_duration = 7200
}
ram_role "instance" {
  assume_role_policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { Service = ["ecs.aliyuncs.com"] } }]
  }
}
ecs_instance "i-sts0000000000000001" {
  ram_role = "instance"
}
"#;

fn create(name: &str, data: &str) -> CreateSecret {
    CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(data),
        version_id: "v1".into(),
        ..CreateSecret::default()
    }
}

async fn assume(
    e: &Env,
    server: &rota_local::server::ServerHandle,
    as_key: (&str, &str),
    params: &[(&str, &str)],
) -> Result<Value, rota_kms::Error> {
    let api = rota_kms::OpenApi::new(Arc::new(e.http_with(
        server,
        SignatureVersion::V1,
        Credentials::new(as_key.0, SecretString::new(as_key.1)),
    )));
    api.call(
        "sts",
        "2015-04-01",
        "AssumeRole",
        params.iter().map(|(k, v)| (*k, *v)),
    )
    .await
}

fn temporary(v: &Value) -> Credentials {
    let c = &v["Credentials"];
    Credentials::new(
        c["AccessKeyId"].as_str().unwrap(),
        SecretString::new(c["AccessKeySecret"].as_str().unwrap()),
    )
    .with_security_token(c["SecurityToken"].as_str().unwrap())
}

#[tokio::test]
async fn assumed_role_credentials_read_what_the_role_allows_until_they_expire() {
    let e = env_world(WORLD).await;
    let server = e.server().await;
    let root = e.client();
    root.send(&create("app/db", "role-may-read")).await.unwrap();
    root.send(&create("ops/db", "role-may-not")).await.unwrap();
    let alice = ("LTAIaliceexample0001", "alice-secret");
    let arn = "acs:ram::1234567890123456:role/app-reader";

    let v = assume(
        &e,
        &server,
        alice,
        &[("RoleArn", arn), ("RoleSessionName", "ci-run")],
    )
    .await
    .unwrap();
    assert_eq!(
        v["AssumedRoleUser"]["Arn"],
        "acs:ram::1234567890123456:assumed-role/app-reader/ci-run"
    );
    assert!(
        v["Credentials"]["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("STS.")
    );
    // DurationSeconds defaults to 3600.
    assert_eq!(v["Credentials"]["Expiration"], "2024-01-01T01:00:00Z");
    let creds = temporary(&v);

    for version in [SignatureVersion::V1, SignatureVersion::V3] {
        let c = KmsClient::new(Arc::new(e.http_with(&server, version, creds.clone())));
        let got = c.get_secret_value("app/db").await.unwrap();
        assert_eq!(got.secret_data.expose_secret(), "role-may-read");
        // The role's policy does not allow other secrets, nor writes.
        let refused = c.get_secret_value("ops/db").await;
        assert_eq!(status(c.get_secret_value("ops/db").await), 403);
        assert_eq!(code(refused), "Forbidden.NoPermission");
        assert_eq!(
            code(
                c.send(&PutSecretValue {
                    secret_name: "app/db".into(),
                    version_id: "v2".into(),
                    secret_data: SecretString::new("x"),
                    secret_data_type: None,
                    version_stages: None,
                })
                .await
            ),
            "Forbidden.NoPermission"
        );
        let me = rota_kms::OpenApi::new(Arc::new(e.http_with(&server, version, creds.clone())))
            .call(
                "sts",
                "2015-04-01",
                "GetCallerIdentity",
                Vec::<(String, String)>::new(),
            )
            .await
            .unwrap();
        assert_eq!(me["IdentityType"], "AssumedRoleUser");
        assert_eq!(
            me["Arn"],
            "acs:ram::1234567890123456:assumed-role/app-reader/ci-run"
        );
    }

    // Without the token, with another session's token, with garbage.
    let bare = Credentials::new(creds.access_key_id.clone(), creds.access_key_secret.clone());
    let c = KmsClient::new(Arc::new(e.http_with(&server, SignatureVersion::V1, bare)));
    assert_eq!(
        code(c.get_secret_value("app/db").await),
        "MissingSecurityToken"
    );
    let other = temporary(
        &assume(
            &e,
            &server,
            alice,
            &[("RoleArn", arn), ("RoleSessionName", "other")],
        )
        .await
        .unwrap(),
    );
    let crossed = creds
        .clone()
        .with_security_token(other.security_token.clone().unwrap().expose_secret());
    let c = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V3,
        crossed,
    )));
    assert_eq!(
        code(c.get_secret_value("app/db").await),
        "InvalidSecurityToken.MismatchWithAccessKey"
    );
    let junk = creds.clone().with_security_token("CAISnot-a-token");
    let c = KmsClient::new(Arc::new(e.http_with(&server, SignatureVersion::V1, junk)));
    assert_eq!(
        code(c.get_secret_value("app/db").await),
        "InvalidSecurityToken.Malformed"
    );

    // An inline Policy narrows the session further.
    let narrow = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:DescribeSecret","Resource":"*"}]}"#;
    let v = assume(
        &e,
        &server,
        alice,
        &[
            ("RoleArn", arn),
            ("RoleSessionName", "narrow"),
            ("Policy", narrow),
        ],
    )
    .await
    .unwrap();
    let c = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V1,
        temporary(&v),
    )));
    assert!(c.describe_secret("app/db").await.is_ok());
    assert_eq!(
        code(c.get_secret_value("app/db").await),
        "Forbidden.NoPermission"
    );

    // Secret policies see the session's principal: one that denies it
    // wins over the role's policy, and one that allows only it admits
    // the session and not the root's other sessions.
    root.send(&create("app/locked", "policy-says-no"))
        .await
        .unwrap();
    root.send(&SetSecretPolicy {
        secret_name: "app/locked".into(),
        policy: r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["acs:ram::1234567890123456:assumed-role/app-reader/ci-run"]},"Action":["kms:*"],"Resource":["*"]},{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"],"Resource":["*"]}]}"#.into(),
        policy_name: None,
    })
    .await
    .unwrap();
    let c = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V1,
        creds.clone(),
    )));
    assert_eq!(
        code(c.get_secret_value("app/locked").await),
        "Forbidden.NoPermission"
    );
    let narrow_session = KmsClient::new(Arc::new(
        e.http_with(
            &server,
            SignatureVersion::V1,
            temporary(
                &assume(
                    &e,
                    &server,
                    alice,
                    &[("RoleArn", arn), ("RoleSessionName", "other-run")],
                )
                .await
                .unwrap(),
            ),
        ),
    ));
    assert_eq!(
        narrow_session
            .get_secret_value("app/locked")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "policy-says-no"
    );

    // Past its expiry the token is refused with the real code.
    e.clock.advance(chrono::TimeDelta::seconds(3600));
    let c = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V1,
        creds.clone(),
    )));
    let expired = c.get_secret_value("app/db").await;
    assert_eq!(status(c.get_secret_value("app/db").await), 403);
    assert_eq!(code(expired), "InvalidSecurityToken.Expired");
    server.shutdown().await;
}

#[tokio::test]
async fn assume_role_refuses_strangers_unknown_roles_and_bad_parameters() {
    let e = env_world(WORLD).await;
    let server = e.server().await;
    let alice = ("LTAIaliceexample0001", "alice-secret");
    let bob = ("LTAIbobexample000001", "bob-secret");
    let arn = "acs:ram::1234567890123456:role/app-reader";
    type Case<'a> = ((&'a str, &'a str), Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            bob,
            vec![("RoleArn", arn), ("RoleSessionName", "s1")],
            "NoPermission",
        ),
        (
            alice,
            vec![
                ("RoleArn", "acs:ram::1234567890123456:role/none"),
                ("RoleSessionName", "s1"),
            ],
            "EntityNotExist.Role",
        ),
        (
            alice,
            vec![
                ("RoleArn", "acs:ram::999:role/app-reader"),
                ("RoleSessionName", "s1"),
            ],
            "InvalidParameter.RoleArn",
        ),
        (
            alice,
            vec![("RoleArn", arn), ("RoleSessionName", "x")],
            "InvalidParameter.RoleSessionName",
        ),
        (
            alice,
            vec![("RoleArn", arn), ("RoleSessionName", "bad name")],
            "InvalidParameter.RoleSessionName",
        ),
        (
            alice,
            vec![
                ("RoleArn", arn),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "899"),
            ],
            "InvalidParameter.DurationSeconds",
        ),
        (
            alice,
            vec![
                ("RoleArn", arn),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "7201"),
            ],
            "InvalidParameter.DurationSeconds",
        ),
        (
            alice,
            vec![
                ("RoleArn", arn),
                ("RoleSessionName", "s1"),
                ("Policy", "{not json"),
            ],
            "InvalidParameter.PolicyGrammar",
        ),
        (alice, vec![("RoleSessionName", "s1")], "MissingParameter"),
        // An instance role trusts the ECS service, not users.
        (
            alice,
            vec![
                ("RoleArn", "acs:ram::1234567890123456:role/instance"),
                ("RoleSessionName", "s1"),
            ],
            "NoPermission",
        ),
    ];
    for (key, params, want) in cases {
        let got = assume(&e, &server, key, &params).await;
        assert_eq!(code(got), want, "{params:?}");
    }
    let v = assume(
        &e,
        &server,
        alice,
        &[
            ("RoleArn", arn),
            ("RoleSessionName", "long"),
            ("DurationSeconds", "7200"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(v["Credentials"]["Expiration"], "2024-01-01T02:00:00Z");
    server.shutdown().await;
}

/// Raw HTTP/1.1 to the metadata service: status and body.
async fn metadata(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn the_metadata_service_hands_out_the_instance_roles_credentials() {
    let e = env_world(WORLD).await;
    let server = e.server().await;
    e.client()
        .send(&create("app/db", "from-the-instance"))
        .await
        .unwrap();
    let md = rota_local::metadata::serve_metadata(
        e.cloud.clone(),
        rota_local::metadata::MetadataConfig {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            instance_id: None,
            hardened: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(md.instance_id(), "i-sts0000000000000001");
    let addr = md.local_addr();
    let creds_path = "/latest/meta-data/ram/security-credentials/";
    // Hardened: no token, no answer; a bad TTL, no token.
    assert_eq!(metadata(addr, "GET", creds_path, &[]).await.0, 403);
    assert_eq!(
        metadata(
            addr,
            "PUT",
            "/latest/api/token",
            &[("X-aliyun-ecs-metadata-token-ttl-seconds", "0")]
        )
        .await
        .0,
        400
    );
    let (st, token) = metadata(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aliyun-ecs-metadata-token-ttl-seconds", "60")],
    )
    .await;
    assert_eq!(st, 200);
    let with = [("X-aliyun-ecs-metadata-token", token.as_str())];
    assert_eq!(
        metadata(
            addr,
            "GET",
            creds_path,
            &[("X-aliyun-ecs-metadata-token", "nope")]
        )
        .await
        .0,
        401
    );
    assert_eq!(
        metadata(addr, "GET", creds_path, &with).await,
        (200, "instance".to_owned())
    );
    let (st, body) = metadata(addr, "GET", &format!("{creds_path}instance"), &with).await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Code"], "Success");
    assert_eq!(v["Expiration"], "2024-01-01T01:00:00Z");
    // The same credentials until they near their expiry.
    let (_, again) = metadata(addr, "GET", &format!("{creds_path}instance"), &with).await;
    assert_eq!(again, body);
    // Rota's own provider reads them and they sign requests.
    let clock = e.clock.clone();
    let provider = rota_kms::credentials::EcsRamRoleCredentials::new(None)
        .metadata_base_url(format!("http://{addr}"))
        .disable_imds_v1(true)
        .clock(Arc::new(move || {
            std::time::SystemTime::from(rota_local::Clock::now(&clock))
        }));
    let got = rota_kms::credentials::CredentialsProvider::provide(&provider)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.access_key_id, v["AccessKeyId"].as_str().unwrap());
    let c = KmsClient::new(Arc::new(e.http_with(&server, SignatureVersion::V3, got)));
    assert_eq!(
        c.get_secret_value("app/db")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "from-the-instance"
    );
    // The token expires.
    e.clock.advance(chrono::TimeDelta::seconds(61));
    assert_eq!(metadata(addr, "GET", creds_path, &with).await.0, 401);
    md.stop();
    server.shutdown().await;
}

#[tokio::test]
async fn the_metadata_service_refuses_instances_it_cannot_serve() {
    let e = env_world(WORLD).await;
    let start = |id: Option<&str>| {
        rota_local::metadata::serve_metadata(
            e.cloud.clone(),
            rota_local::metadata::MetadataConfig {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                instance_id: id.map(str::to_owned),
                hardened: false,
            },
        )
    };
    let err = start(Some("i-none")).await.unwrap_err().to_string();
    assert!(err.contains("not an ecs_instance"), "{err}");
    let untrusting = env_world(&WORLD.replace("ecs.aliyuncs.com", "fc.aliyuncs.com")).await;
    let err = rota_local::metadata::serve_metadata(
        untrusting.cloud.clone(),
        rota_local::metadata::MetadataConfig {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            instance_id: None,
            hardened: false,
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not trust the service ecs.aliyuncs.com"),
        "{err}"
    );
}
