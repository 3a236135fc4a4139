//! The known-answer vectors of kms-api.md §1.5 (V1) and §1.7 (V3), byte for byte.

use rota_kms::sign::{
    EMPTY_BODY_SHA256, V3Input, parse_v3_authorization, sha256_hex, v1_sign, v1_string_to_sign,
    v1_verify, v3_signature, v3_string_to_sign, v3_verify,
};

const DOC_NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";
const DOC_TIME: &str = "2016-02-23T12:46:24Z";

/// Checks one V1 vector: the string to sign when the vector gives it, the signature always.
fn check_v1(
    name: &str,
    method: &str,
    params: &[(&str, &str)],
    secret: &str,
    sts: Option<&str>,
    sig: &str,
) {
    let string_to_sign = v1_string_to_sign(method, params.iter().copied());
    if let Some(expected) = sts {
        assert_eq!(string_to_sign, expected, "vector {name}: string to sign");
    }
    assert_eq!(
        v1_sign(secret, &string_to_sign),
        sig,
        "vector {name}: signature"
    );
    let mut with_sig = params.to_vec();
    with_sig.push(("Signature", sig));
    v1_verify(method, with_sig.iter().copied(), secret, sig)
        .unwrap_or_else(|e| panic!("vector {name}: verify failed: {e}"));
    assert!(
        v1_verify(method, params.iter().copied(), "wrong", sig).is_err(),
        "vector {name}: wrong key accepted"
    );
}

fn old_core(
    action: &str,
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut p = vec![
        ("AccessKeyId", "LTAI5tExampleKeyId"),
        ("Action", "GetSecretValue"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", DOC_NONCE),
        ("SignatureType", ""),
        ("SignatureVersion", "1.0"),
        ("Timestamp", DOC_TIME),
        ("Version", "2016-01-20"),
    ];
    p[1].1 = if action == "CreateSecret" {
        "CreateSecret"
    } else {
        "GetSecretValue"
    };
    p.extend_from_slice(extra);
    p
}

#[test]
fn v1_a_doc_describe_regions() {
    let params = [
        ("AccessKeyId", "testid"),
        ("Action", "DescribeRegions"),
        ("Format", "XML"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", DOC_NONCE),
        ("SignatureVersion", "1.0"),
        ("Timestamp", DOC_TIME),
        ("Version", "2014-05-26"),
    ];
    check_v1(
        "V1-a",
        "GET",
        &params,
        "testsecret",
        None,
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY=",
    );
}

#[test]
fn v1_a_prime_empty_signature_type() {
    let params = [
        ("AccessKeyId", "testid"),
        ("Action", "DescribeRegions"),
        ("Format", "XML"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", DOC_NONCE),
        ("SignatureType", ""),
        ("SignatureVersion", "1.0"),
        ("Timestamp", DOC_TIME),
        ("Version", "2014-05-26"),
    ];
    check_v1(
        "V1-a'",
        "GET",
        &params,
        "testsecret",
        Some(
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26",
        ),
        "l2RHWHoXOKbFEAkq17TTwV31vac=",
    );
}

#[test]
fn v1_b_kms_doc_create_key() {
    let params = [
        ("AccessKeyId", "testid"),
        ("Action", "CreateKey"),
        ("Format", "json"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2016-03-28T03:13:08Z"),
        ("Version", "2016-01-20"),
    ];
    check_v1(
        "V1-b",
        "GET",
        &params,
        "testsecret",
        None,
        "41wk2SSX1GJh7fwnc5eqOfiJPFg=",
    );
}

#[test]
fn v1_c_get_secret_value_awkward_name() {
    let params = old_core(
        "GetSecretValue",
        &[
            ("SecretName", "my/secret name+1~*"),
            ("VersionStage", "ACSCurrent"),
        ],
    );
    check_v1(
        "V1-c",
        "POST",
        &params,
        "ExampleSecret123",
        Some(
            "POST&%2F&AccessKeyId%3DLTAI5tExampleKeyId%26Action%3DGetSecretValue%26Format%3DJSON%26RegionId%3Dcn-hangzhou%26SecretName%3Dmy%252Fsecret%2520name%252B1~%252A%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2016-01-20%26VersionStage%3DACSCurrent",
        ),
        "kJHagY+tbzqh9njXGeInF+0bmH4=",
    );
}

#[test]
fn v1_d_create_secret_json_non_ascii() {
    let params = old_core(
        "CreateSecret",
        &[
            ("SecretName", "db/prod"),
            ("VersionId", "v1"),
            ("SecretData", "{\"user\":\"admin\",\"pass\":\"p@ss wörd!\"}"),
            ("SecretDataType", "text"),
            ("Tags", "[{\"TagKey\":\"env\",\"TagValue\":\"prod\"}]"),
        ],
    );
    check_v1(
        "V1-d",
        "POST",
        &params,
        "ExampleSecret123",
        Some(
            "POST&%2F&AccessKeyId%3DLTAI5tExampleKeyId%26Action%3DCreateSecret%26Format%3DJSON%26RegionId%3Dcn-hangzhou%26SecretData%3D%257B%2522user%2522%253A%2522admin%2522%252C%2522pass%2522%253A%2522p%2540ss%2520w%25C3%25B6rd%2521%2522%257D%26SecretDataType%3Dtext%26SecretName%3Ddb%252Fprod%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Tags%3D%255B%257B%2522TagKey%2522%253A%2522env%2522%252C%2522TagValue%2522%253A%2522prod%2522%257D%255D%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2016-01-20%26VersionId%3Dv1",
        ),
        "dted8bJEjr0uCx6hLquG4EN+3OQ=",
    );
}

#[test]
fn v1_f_old_core_put_secret_value_full_wire() {
    let params = [
        ("SecretName", "app/key"),
        ("VersionId", "v2"),
        ("SecretData", "hello world~*+"),
        ("Version", "2016-01-20"),
        ("Action", "PutSecretValue"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("Timestamp", "2024-01-01T00:00:00Z"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureType", ""),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "00000000000000000000000000000001"),
        ("AccessKeyId", "LTAI5tExampleKeyId"),
    ];
    check_v1(
        "V1-f",
        "POST",
        &params,
        "ExampleSecret123",
        None,
        "/ZnRZTLPPrySG3sHJ0lXD1BAcQs=",
    );
    // The captured URL carries the signature URL-encoded.
    let wire = "/?SecretName=app%2Fkey&VersionId=v2&SecretData=hello%20world~%2A%2B&Version=2016-01-20&Action=PutSecretValue&Format=JSON&RegionId=cn-hangzhou&Timestamp=2024-01-01T00%3A00%3A00Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=00000000000000000000000000000001&AccessKeyId=LTAI5tExampleKeyId&Signature=%2FZnRZTLPPrySG3sHJ0lXD1BAcQs%3D";
    let decoded = rota_kms::encode::parse_form(wire.trim_start_matches("/?")).unwrap();
    let sig = &decoded.iter().find(|(k, _)| k == "Signature").unwrap().1;
    v1_verify(
        "POST",
        decoded.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        "ExampleSecret123",
        sig,
    )
    .expect("vector V1-f: the captured wire request verifies");
}

#[test]
fn v1_g_tea_query_plus_body() {
    let query = "Action=PutSecretValue&Format=json&Version=2016-01-20&Timestamp=2024-01-01T00%3A00%3A00Z&SignatureNonce=00000000000000000000000000000001&SecretName=app%2Fkey&VersionId=v2&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tExampleKeyId";
    let body = "SecretData=hello+world~%2A%2B";
    let mut params = rota_kms::encode::parse_form(query).unwrap();
    params.extend(rota_kms::encode::parse_form(body).unwrap());
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    check_v1(
        "V1-g",
        "POST",
        &borrowed,
        "ExampleSecret123",
        Some(
            "POST&%2F&AccessKeyId%3DLTAI5tExampleKeyId%26Action%3DPutSecretValue%26Format%3Djson%26SecretData%3Dhello%2520world~%252A%252B%26SecretName%3Dapp%252Fkey%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D00000000000000000000000000000001%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2016-01-20%26VersionId%3Dv2",
        ),
        "4Gq7Hao+/4bbXi7xTFIroUY6HUw=",
    );
}

#[test]
fn v3_a_doc_run_instances() {
    let query = [
        (
            "ImageId",
            "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        ),
        ("RegionId", "cn-shanghai"),
    ];
    let headers = [
        ("host", "ecs.cn-shanghai.aliyuncs.com"),
        ("x-acs-action", "RunInstances"),
        ("x-acs-content-sha256", EMPTY_BODY_SHA256),
        ("x-acs-date", "2023-10-26T10:22:32Z"),
        ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
        ("x-acs-version", "2014-05-26"),
    ];
    let input = V3Input {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        hashed_payload: EMPTY_BODY_SHA256,
    };
    assert_eq!(
        sha256_hex(b""),
        EMPTY_BODY_SHA256,
        "vector V3-a: empty body hash"
    );
    let sig = v3_signature(&input, "YourAccessKeySecret");
    assert_eq!(
        sig.signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
        "vector V3-a: signature"
    );
    let auth = parse_v3_authorization(&sig.authorization("YourAccessKeyId")).unwrap();
    assert_eq!(auth.access_key_id, "YourAccessKeyId");
    assert_eq!(auth.signed_headers.len(), 6);
    v3_verify(&input, "YourAccessKeySecret", &auth.signature).expect("vector V3-a: verify");
}

#[test]
fn v3_b_put_secret_value_with_body() {
    let body = b"SecretData=hello+world~%2A%2B";
    let hashed = sha256_hex(body);
    assert_eq!(
        hashed, "b910a35e5e8c06a8ac87aa9ce82cdd3476cf160d44cd2967ff4cd02284ac317c",
        "vector V3-b: body hash"
    );
    let query = [
        ("SecretName", "app/key"),
        ("VersionId", "v2"),
        ("Note", "a b*c~d+e"),
    ];
    // Given out of order and in mixed case: the signer sorts and lower-cases.
    let headers = [
        ("X-Acs-Version", "2016-01-20"),
        ("host", "kms.cn-hangzhou.aliyuncs.com"),
        ("x-acs-action", "PutSecretValue"),
        ("x-acs-date", "2024-01-01T00:00:00Z"),
        ("x-acs-signature-nonce", "00000000000000000000000000000001"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-acs-content-sha256", hashed.as_str()),
    ];
    let input = V3Input {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };
    let sig = v3_signature(&input, "ExampleSecret123");
    let expected_canonical = "POST\n/\nNote=a%20b%2Ac~d%2Be&SecretName=app%2Fkey&VersionId=v2\ncontent-type:application/x-www-form-urlencoded\nhost:kms.cn-hangzhou.aliyuncs.com\nx-acs-action:PutSecretValue\nx-acs-content-sha256:b910a35e5e8c06a8ac87aa9ce82cdd3476cf160d44cd2967ff4cd02284ac317c\nx-acs-date:2024-01-01T00:00:00Z\nx-acs-signature-nonce:00000000000000000000000000000001\nx-acs-version:2016-01-20\n\ncontent-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\nb910a35e5e8c06a8ac87aa9ce82cdd3476cf160d44cd2967ff4cd02284ac317c";
    assert_eq!(
        sig.canonical_request, expected_canonical,
        "vector V3-b: canonical request"
    );
    assert_eq!(
        v3_string_to_sign(&sig.canonical_request),
        "ACS3-HMAC-SHA256\ncd88524a4e585f44c8fe180c74e751eb4d41986c7b8f63ac4c6134c62a14b5ca",
        "vector V3-b: string to sign"
    );
    assert_eq!(
        sig.signature, "6d86ecad88d9686d5a66938a901420051a5277cc6e901c11bcef108c88e4ab7c",
        "vector V3-b: signature"
    );
    assert!(
        v3_verify(&input, "wrong", &sig.signature).is_err(),
        "vector V3-b: wrong key accepted"
    );
}
