//! Snapshots of the signed wire request of every KMS action (V1, and V3 for a
//! few), with time and nonce fixed: method, URL query one pair per line,
//! headers and body. A change to what goes on the wire shows up here.

use chrono::TimeZone as _;
use rota_kms::kms::*;
use rota_kms::wire::{SigningContext, prepare};
use rota_kms::{BaseUrl, Credentials, SecretString, SignatureVersion};

fn render(action: &impl KmsAction, version: SignatureVersion, sts: bool) -> String {
    let req = action.to_request().expect("valid request");
    let mut creds = Credentials::new("LTAI5tExampleKeyId", "ExampleSecret123");
    if sts {
        creds = creds.with_security_token("sts-token-example");
    }
    let ctx = SigningContext {
        credentials: &creds,
        version,
        time: chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        nonce: "00000000000000000000000000000001",
        region_id: "cn-hangzhou",
    };
    let base = BaseUrl::https("kms.cn-hangzhou.aliyuncs.com");
    let p = prepare(&req, &base, &ctx);
    let (path, query) = p.url.split_once('?').unwrap_or((p.url.as_str(), ""));
    let mut out = format!("{} {path}\n", p.method);
    out.push_str("query:\n");
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        out.push_str(&format!("  {pair}\n"));
    }
    out.push_str("headers:\n");
    for (k, v) in &p.headers {
        let v = if k == "user-agent" {
            "rota/<version>"
        } else {
            v.as_str()
        };
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out.push_str(&format!("body: {}\n", p.body));
    out
}

macro_rules! snap {
    ($name:ident, $action:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(render(&$action, SignatureVersion::V1, false));
        }
    };
}

fn s(v: &str) -> String {
    v.to_owned()
}

snap!(
    create_secret,
    CreateSecret {
        secret_name: s("acs/ecs/demo"),
        secret_data: SecretString::new(r#"{"UserName":"ecs-user","Password":"pw d*~"}"#),
        version_id: s("v1"),
        secret_data_type: Some(s("text")),
        secret_type: Some(s("ECS")),
        encryption_key_id: Some(s("key-phzz661646aeygbqrfqg5j")),
        dkms_instance_id: Some(s("kst-phzz61dbabacquz826y29f")),
        description: Some(s("demo secret")),
        tags: vec![Tag::new("env", "prod")],
        extended_config: Some(s(
            r#"{"SecretSubType":"Password","InstanceId":"i-1","RegionId":"cn-hangzhou"}"#
        )),
        enable_automatic_rotation: Some(true),
        rotation_interval: Some(s("604800s")),
        policy: None,
    }
);
snap!(
    get_secret_value,
    GetSecretValue {
        secret_name: s("app/db"),
        version_id: None,
        version_stage: Some(s("ACSPrevious")),
        fetch_extended_config: Some(true),
        dry_run: None,
    }
);
snap!(
    put_secret_value,
    PutSecretValue {
        secret_name: s("app/key"),
        version_id: s("v2"),
        secret_data: SecretString::new("hello world~*+"),
        secret_data_type: Some(s("binary")),
        version_stages: Some(vec![s("ACSCurrent"), s("ACSNext")]),
    }
);
snap!(
    update_secret_version_stage,
    UpdateSecretVersionStage {
        secret_name: s("app/key"),
        version_stage: s("ACSCurrent"),
        move_to_version: Some(s("v2")),
        remove_from_version: Some(s("v1")),
    }
);
snap!(
    describe_secret,
    DescribeSecret {
        secret_name: s("app/key"),
        fetch_tags: Some(true)
    }
);
snap!(
    list_secrets,
    ListSecrets {
        page_number: Some(2),
        page_size: Some(50),
        fetch_tags: Some(true),
        filters: vec![
            Filter {
                key: s("SecretType"),
                values: vec![s("RDS"), s("Generic")]
            },
            Filter {
                key: s("TagKey"),
                values: vec![s("env")]
            },
        ],
    }
);
snap!(
    list_secret_version_ids,
    ListSecretVersionIds {
        secret_name: s("app/key"),
        include_deprecated: Some(true),
        page_number: Some(1),
        page_size: Some(10),
    }
);
snap!(
    update_secret,
    UpdateSecret {
        secret_name: s("acs/ecs/demo"),
        description: Some(s("new description")),
        custom_data: Some(s(r#"{"k":"v"}"#)),
    }
);
snap!(
    update_secret_rotation_policy,
    UpdateSecretRotationPolicy {
        secret_name: s("acs/ecs/demo"),
        enable_automatic_rotation: true,
        rotation_interval: Some(s("7d")),
    }
);
snap!(
    rotate_secret,
    RotateSecret {
        secret_name: s("acs/ecs/demo"),
        version_id: s("rota-20240101")
    }
);
snap!(
    delete_secret,
    DeleteSecret {
        secret_name: s("app/key"),
        force_delete_without_recovery: Some(true),
        recovery_window_in_days: Some(30),
    }
);
snap!(
    restore_secret,
    RestoreSecret {
        secret_name: s("app/key")
    }
);
snap!(
    set_secret_policy,
    SetSecretPolicy {
        secret_name: s("app/key"),
        policy: s(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1:*"]},"Action":["kms:*"],"Resource":["*"]}]}"#
        ),
        policy_name: Some(s("default")),
    }
);
snap!(
    get_secret_policy,
    GetSecretPolicy {
        secret_name: s("app/key"),
        policy_name: Some(s("default"))
    }
);
snap!(
    tag_resource,
    TagResource {
        target: TagTarget::SecretName(s("app/key")),
        tags: vec![Tag::new("env", "prod"), Tag::new("team", "ops")],
    }
);
snap!(
    untag_resource,
    UntagResource {
        target: TagTarget::SecretName(s("app/key")),
        tag_keys: vec![s("env")]
    }
);
snap!(
    tag_resources,
    TagResources {
        resource_type: s("secret"),
        resource_ids: vec![s("app/key"), s("app/db")],
        tags: vec![Tag::new("Created", "TF")],
    }
);
snap!(
    untag_resources,
    UntagResources {
        resource_type: s("secret"),
        resource_ids: vec![s("app/key")],
        tag_keys: vec![s("Created"), s("For")],
        all: None,
    }
);
snap!(
    list_tag_resources,
    ListTagResources {
        resource_type: s("secret"),
        resource_ids: vec![s("app/key")],
        tags: vec![],
        next_token: Some(s("token-2")),
    }
);
snap!(
    get_random_password,
    GetRandomPassword {
        password_length: Some(24),
        exclude_characters: Some(s("\"'`")),
        exclude_lowercase: None,
        exclude_uppercase: None,
        exclude_numbers: Some(false),
        exclude_punctuation: Some(true),
        require_each_included_type: Some(true),
    }
);
snap!(
    batch_get_secret_value,
    BatchGetSecretValue {
        secrets: vec![
            BatchSecretRef {
                secret_name: s("a"),
                version_id: None,
                version_stage: None,
                fetch_extended_config: None
            },
            BatchSecretRef {
                secret_name: s("b"),
                version_id: Some(s("v2")),
                version_stage: Some(s("ACSPrevious")),
                fetch_extended_config: Some(true),
            },
        ],
    }
);
snap!(describe_regions, DescribeRegions);

#[test]
fn put_secret_value_v3() {
    let action = PutSecretValue {
        secret_name: s("app/key"),
        version_id: s("v2"),
        secret_data: SecretString::new("hello world~*+"),
        secret_data_type: None,
        version_stages: None,
    };
    insta::assert_snapshot!(render(&action, SignatureVersion::V3, false));
}

#[test]
fn get_secret_value_v3_sts() {
    insta::assert_snapshot!(render(
        &GetSecretValue::current("app/key"),
        SignatureVersion::V3,
        true
    ));
}

#[test]
fn get_secret_value_v1_sts() {
    insta::assert_snapshot!(render(
        &GetSecretValue::current("app/key"),
        SignatureVersion::V1,
        true
    ));
}

#[test]
fn oversized_secret_is_refused_before_sending() {
    let big = "x".repeat(30_721);
    let err = PutSecretValue {
        secret_name: s("a"),
        version_id: s("v"),
        secret_data: SecretString::new(big),
        ..Default::default()
    }
    .to_request()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid SecretData: the value is 30721 bytes; KMS stores at most 30720 bytes"
    );
    let ok = "x".repeat(30_720);
    assert!(
        PutSecretValue {
            secret_name: s("a"),
            version_id: s("v"),
            secret_data: SecretString::new(ok),
            ..Default::default()
        }
        .to_request()
        .is_ok()
    );
}

#[test]
fn request_debug_never_shows_values() {
    let req = PutSecretValue {
        secret_name: s("a"),
        version_id: s("v"),
        secret_data: SecretString::new("canary-5d1e"),
        ..Default::default()
    };
    assert!(!format!("{req:?}").contains("canary-5d1e"));
    let api = req.to_request().unwrap();
    assert!(!format!("{api:?}").contains("canary-5d1e"));
}
