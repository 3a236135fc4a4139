"""Interop: the official Python SDK `alibabacloud-kms20160120` against `rota local serve`.

Run by the Rust test driver (crates/rota-local/tests/it/interop.rs) with the
interpreter of the venv that `cargo xtask ci` creates. Environment:

  ROTA_ENDPOINT      host:port of the server (plain HTTP)
  ROTA_AK, ROTA_SK   the server's root access key
  ROTA_SIGNATURE     "v3" (the SDK's default ACS3-HMAC-SHA256) or "v2" (HMAC-SHA1)

Prints one line per check and a closing "N passed, M failed" line; exits 1 on
any failure.
"""

import json
import os
import uuid

from alibabacloud_kms20160120 import models
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from checks import check, expect_error, finish


def make_client():
    cfg = Config(
        access_key_id=os.environ["ROTA_AK"],
        access_key_secret=os.environ["ROTA_SK"],
        endpoint=os.environ["ROTA_ENDPOINT"],
        protocol="HTTP",
        region_id="cn-hangzhou",
    )
    if os.environ.get("ROTA_SIGNATURE", "v3") == "v2":
        cfg.signature_algorithm = "v2"
    return Client(cfg)


CLIENT = make_client()
SUFFIX = uuid.uuid4().hex[:8]


def name(base):
    return f"interop/{os.environ.get('ROTA_SIGNATURE', 'v3')}/{base}-{SUFFIX}"






def create(base, data="v1-data", **kw):
    n = name(base)
    CLIENT.create_secret(
        models.CreateSecretRequest(secret_name=n, secret_data=data, version_id="v1", **kw)
    )
    return n


@check("create and get (text, tags, description)")
def _():
    n = create(
        "basic",
        data="hello world ~*+ ö",
        description="interop",
        tags=json.dumps([{"TagKey": "env", "TagValue": "test"}]),
    )
    r = CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)).body
    assert r.secret_data == "hello world ~*+ ö", r.secret_data
    assert r.version_id == "v1"
    assert r.secret_data_type == "text"
    assert r.version_stages.version_stage == ["ACSCurrent"], r.version_stages.version_stage
    assert r.request_id


@check("duplicate create is Rejected.ResourceExist")
def _():
    n = create("dup")
    expect_error("Rejected.ResourceExist", lambda: create("dup"))
    assert n


@check("missing secret is Forbidden.ResourceNotFound")
def _():
    expect_error(
        "Forbidden.ResourceNotFound",
        lambda: CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=name("absent"))),
    )


@check("put, stage moves, version ids")
def _():
    n = create("stages")
    r = CLIENT.put_secret_value(
        models.PutSecretValueRequest(secret_name=n, version_id="v2", secret_data="two")
    ).body
    assert r.version_id == "v2"
    assert "ACSCurrent" in r.version_stages.version_stage
    # Idempotent replay of the same version and data.
    CLIENT.put_secret_value(models.PutSecretValueRequest(secret_name=n, version_id="v2", secret_data="two"))
    prev = CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n, version_stage="ACSPrevious")).body
    assert prev.version_id == "v1" and prev.secret_data == "v1-data"
    # A custom stage, then ACSCurrent moved back to v1.
    CLIENT.update_secret_version_stage(
        models.UpdateSecretVersionStageRequest(secret_name=n, version_stage="MyStage", move_to_version="v1")
    )
    CLIENT.update_secret_version_stage(
        models.UpdateSecretVersionStageRequest(
            secret_name=n, version_stage="ACSCurrent", move_to_version="v1", remove_from_version="v2"
        )
    )
    cur = CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)).body
    assert cur.version_id == "v1", cur.version_id
    assert set(cur.version_stages.version_stage) >= {"ACSCurrent", "MyStage"}, cur.version_stages.version_stage
    ids = CLIENT.list_secret_version_ids(
        models.ListSecretVersionIdsRequest(secret_name=n, include_deprecated="true")
    ).body
    got = {v.version_id for v in ids.version_ids.version_id}
    assert got == {"v1", "v2"}, got
    assert ids.total_count == 2


@check("put with different data under an existing version is refused")
def _():
    n = create("conflict")
    try:
        CLIENT.put_secret_value(models.PutSecretValueRequest(secret_name=n, version_id="v1", secret_data="other"))
    except Exception as e:  # noqa: BLE001
        assert getattr(e, "code", None) in ("Rejected.ResourceExist", "InvalidParameter"), e
    else:
        raise AssertionError("conflicting put accepted")


@check("binary data is returned verbatim")
def _():
    n = create("binary", data="not-base64 !", secret_data_type="binary")
    r = CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)).body
    assert r.secret_data == "not-base64 !" and r.secret_data_type == "binary"


@check("describe with tags")
def _():
    n = create("describe", description="d1", tags=json.dumps([{"TagKey": "team", "TagValue": "ops"}]))
    r = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n, fetch_tags="true")).body
    assert r.secret_name == n and r.description == "d1" and r.secret_type == "Generic"
    assert r.arn.startswith("acs:kms:") and r.arn.endswith(":secret/" + n), r.arn
    assert [(t.tag_key, t.tag_value) for t in r.tags.tag] == [("team", "ops")]
    assert r.create_time.endswith("Z")


@check("list with filters")
def _():
    a = create("list-a")
    create("list-b")
    filters = json.dumps([{"Key": "SecretName", "Values": [a]}])
    r = CLIENT.list_secrets(models.ListSecretsRequest(filters=filters, page_size=10)).body
    names = [s.secret_name for s in r.secret_list.secret]
    assert names == [a], names
    assert r.total_count == 1


@check("rotation policy on a managed ECS secret")
def _():
    n = "acs/ecs/" + name("rotation").replace("/", "-")
    ext = {"SecretSubType": "Password", "InstanceId": "i-interop", "RegionId": "cn-hangzhou"}
    try:
        CLIENT.create_secret(
            models.CreateSecretRequest(
                secret_name=n,
                secret_data=json.dumps({"UserName": "ecs-user", "Password": "Passw0rd!"}),
                version_id="v1",
                secret_type="ECS",
                extended_config=ext,
            )
        )
    except Exception as e:  # noqa: BLE001
        # A world without that instance refuses it; a generic secret still exercises the policy call.
        raise AssertionError(f"ECS create refused: {e}")
    CLIENT.update_secret_rotation_policy(
        models.UpdateSecretRotationPolicyRequest(
            secret_name=n, enable_automatic_rotation=True, rotation_interval="7d"
        )
    )
    r = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n)).body
    assert r.automatic_rotation == "Enabled", r.automatic_rotation
    assert r.rotation_interval == "604800s", r.rotation_interval
    assert r.next_rotation_date
    CLIENT.update_secret_rotation_policy(
        models.UpdateSecretRotationPolicyRequest(secret_name=n, enable_automatic_rotation=False)
    )
    r = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n)).body
    assert r.automatic_rotation == "Disabled", r.automatic_rotation


@check("batch tags: tag, list, untag")
def _():
    n = create("tags")
    CLIENT.tag_resources(
        models.TagResourcesRequest(
            region_id="cn-hangzhou",
            resource_type="secret",
            resource_id=[n],
            tag=[models.TagResourcesRequestTag(key="Created", value="TF"), models.TagResourcesRequestTag(key="For", value="Secret")],
        )
    )
    r = CLIENT.list_tag_resources(
        models.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="secret", resource_id=[n])
    ).body
    got = sorted((t.tag_key, t.tag_value) for t in r.tag_resources.tag_resource)
    assert got == [("Created", "TF"), ("For", "Secret")], got
    CLIENT.untag_resources(
        models.UntagResourcesRequest(region_id="cn-hangzhou", resource_type="secret", resource_id=[n], tag_key=["For"])
    )
    r = CLIENT.list_tag_resources(
        models.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="secret", resource_id=[n])
    ).body
    assert [t.tag_key for t in r.tag_resources.tag_resource] == ["Created"]


@check("per-resource tags: TagResource / UntagResource")
def _():
    n = create("tag1")
    CLIENT.tag_resource(models.TagResourceRequest(secret_name=n, tags=json.dumps([{"TagKey": "k", "TagValue": "v"}])))
    r = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n, fetch_tags="true")).body
    assert [(t.tag_key, t.tag_value) for t in r.tags.tag] == [("k", "v")]
    CLIENT.untag_resource(models.UntagResourceRequest(secret_name=n, tag_keys=json.dumps(["k"])))
    r = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n, fetch_tags="true")).body
    assert not (r.tags and r.tags.tag)


@check("secret policy: set and get")
def _():
    n = create("policy")
    policy = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Sid": "kms default secret policy",
                    "Effect": "Allow",
                    "Principal": {"RAM": ["acs:ram::*:*"]},
                    "Action": ["kms:*"],
                    "Resource": ["*"],
                }
            ],
        }
    )
    CLIENT.set_secret_policy(models.SetSecretPolicyRequest(secret_name=n, policy=policy))
    got = CLIENT.get_secret_policy(models.GetSecretPolicyRequest(secret_name=n)).body.policy
    assert json.loads(got) == json.loads(policy), got


@check("delete with recovery window, restore, force delete")
def _():
    n = create("delete")
    r = CLIENT.delete_secret(models.DeleteSecretRequest(secret_name=n, recovery_window_in_days="7")).body
    assert r.planned_delete_time and r.planned_delete_time.endswith("Z"), r.planned_delete_time
    d = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n)).body
    assert d.planned_delete_time
    expect_error("Rejected.ResourceInDeleteWindow", lambda: create("delete"))
    CLIENT.restore_secret(models.RestoreSecretRequest(secret_name=n))
    d = CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n)).body
    assert not d.planned_delete_time
    CLIENT.delete_secret(
        models.DeleteSecretRequest(secret_name=n, force_delete_without_recovery="true", recovery_window_in_days="30")
    )
    expect_error(
        "Forbidden.ResourceNotFound",
        lambda: CLIENT.describe_secret(models.DescribeSecretRequest(secret_name=n)),
    )


@check("random password and regions")
def _():
    p = CLIENT.get_random_password(
        models.GetRandomPasswordRequest(password_length="24", exclude_punctuation="true")
    ).body.random_password
    assert len(p) == 24 and p.isalnum(), len(p)
    regions = CLIENT.describe_regions().body.regions.region
    assert any(r.region_id for r in regions)


@check("key lifecycle: disable, enable, schedule and cancel deletion")
def _():
    key = CLIENT.create_key(models.CreateKeyRequest(description="interop")).body.key_metadata.key_id
    n = create("under-key", data="keyed-value", encryption_key_id=key)
    CLIENT.disable_key(models.DisableKeyRequest(key_id=key))
    meta = CLIENT.describe_key(models.DescribeKeyRequest(key_id=key)).body.key_metadata
    assert meta.key_state == "Disabled", meta.key_state
    e = expect_error(
        "Rejected.Disabled",
        lambda: CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)),
    )
    assert "keyed-value" not in str(e)
    expect_error(
        "Rejected.Disabled",
        lambda: CLIENT.put_secret_value(
            models.PutSecretValueRequest(secret_name=n, secret_data="next", version_id="v2")
        ),
    )
    CLIENT.enable_key(models.EnableKeyRequest(key_id=key))
    got = CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)).body
    assert got.secret_data == "keyed-value" and got.version_id == "v1"
    CLIENT.schedule_key_deletion(
        models.ScheduleKeyDeletionRequest(key_id=key, pending_window_in_days=7)
    )
    meta = CLIENT.describe_key(models.DescribeKeyRequest(key_id=key)).body.key_metadata
    assert meta.key_state == "PendingDeletion" and meta.delete_date.endswith("Z"), meta
    expect_error(
        "Rejected.PendingDeletion",
        lambda: CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)),
    )
    expect_error(
        "Rejected.StateModifiedFailed",
        lambda: CLIENT.enable_key(models.EnableKeyRequest(key_id=key)),
    )
    CLIENT.cancel_key_deletion(models.CancelKeyDeletionRequest(key_id=key))
    assert CLIENT.get_secret_value(models.GetSecretValueRequest(secret_name=n)).body.secret_data == "keyed-value"
    expect_error(
        "Forbidden.KeyNotFound",
        lambda: CLIENT.describe_key(models.DescribeKeyRequest(key_id="key-none")),
    )


finish()
