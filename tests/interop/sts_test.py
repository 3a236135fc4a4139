"""Interop: STS credentials from `rota local serve` used by the official Python SDKs.

Run by the Rust test driver (crates/rota-cli/tests/it/interop.rs) against a
server whose world declares the RAM user `alice` (access key ROTA_ALICE_AK /
ROTA_ALICE_SK) and the role `app-reader`, which trusts her and may read
secrets under `app/`. The old core (`aliyunsdkcore`, `CommonRequest`) calls
STS AssumeRole as alice; the KMS SDK then uses the temporary credentials
(`security_token`), with both signature versions.

Environment: ROTA_ENDPOINT (host:port, plain HTTP), ROTA_AK / ROTA_SK (the
root key), ROTA_ALICE_AK / ROTA_ALICE_SK, ROTA_ACCOUNT. Prints one line per
check and a closing "N passed, M failed" line; exits 1 on any failure.
"""

import json
import os

from alibabacloud_kms20160120 import models
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from checks import check, expect_error, finish

ENDPOINT = os.environ["ROTA_ENDPOINT"]
ACCOUNT = os.environ["ROTA_ACCOUNT"]
ROLE_ARN = f"acs:ram::{ACCOUNT}:role/app-reader"




def kms(ak, sk, token=None, signature="v3"):
    cfg = Config(
        access_key_id=ak,
        access_key_secret=sk,
        security_token=token,
        endpoint=ENDPOINT,
        protocol="HTTP",
        region_id="cn-hangzhou",
    )
    if signature == "v2":
        cfg.signature_algorithm = "v2"
    return Client(cfg)




def assume_role(ak, sk, session, **extra):
    client = AcsClient(ak, sk, "cn-hangzhou")
    req = CommonRequest(domain=ENDPOINT, version="2015-04-01", action_name="AssumeRole")
    req.set_protocol_type("http")
    req.set_method("POST")
    req.add_query_param("RoleArn", ROLE_ARN)
    req.add_query_param("RoleSessionName", session)
    for k, v in extra.items():
        req.add_query_param(k, v)
    return json.loads(client.do_action_with_exception(req))


ROOT = kms(os.environ["ROTA_AK"], os.environ["ROTA_SK"])
for name, value in [("app/db", "readable-by-role"), ("ops/db", "not-for-the-role")]:
    ROOT.create_secret(models.CreateSecretRequest(secret_name=name, secret_data=value, version_id="v1"))


@check("AssumeRole through the old core answers STS credentials")
def _():
    got = assume_role(os.environ["ROTA_ALICE_AK"], os.environ["ROTA_ALICE_SK"], "interop")
    creds = got["Credentials"]
    assert creds["AccessKeyId"].startswith("STS."), creds["AccessKeyId"]
    assert creds["Expiration"].endswith("Z")
    assert got["AssumedRoleUser"]["Arn"] == f"acs:ram::{ACCOUNT}:assumed-role/app-reader/interop"
    global CREDS
    CREDS = creds


for signature in ["v3", "v2"]:

    @check(f"KMS SDK ({signature}) with the STS credentials reads what the role allows")
    def _():
        c = kms(CREDS["AccessKeyId"], CREDS["AccessKeySecret"], CREDS["SecurityToken"], signature)
        got = c.get_secret_value(models.GetSecretValueRequest(secret_name="app/db")).body
        assert got.secret_data == "readable-by-role"

    @check(f"KMS SDK ({signature}) with the STS credentials is refused the rest")
    def _():
        c = kms(CREDS["AccessKeyId"], CREDS["AccessKeySecret"], CREDS["SecurityToken"], signature)
        e = expect_error(
            "Forbidden.NoPermission",
            lambda: c.get_secret_value(models.GetSecretValueRequest(secret_name="ops/db")),
        )
        assert "not-for-the-role" not in str(e)

    @check(f"KMS SDK ({signature}) without the security token is refused")
    def _():
        c = kms(CREDS["AccessKeyId"], CREDS["AccessKeySecret"], None, signature)
        expect_error(
            "MissingSecurityToken",
            lambda: c.get_secret_value(models.GetSecretValueRequest(secret_name="app/db")),
        )


@check("a user the role does not trust is refused")
def _():
    try:
        assume_role(os.environ["ROTA_AK"], os.environ["ROTA_SK"], "root-tries")
    except Exception as e:  # noqa: BLE001
        assert "NoPermission" in str(e), e
        return
    raise AssertionError("the root key assumed a role that trusts only alice")


finish()
