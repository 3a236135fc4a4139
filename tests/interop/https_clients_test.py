"""Interop over HTTPS: Alibaba's Python clients against `rota local serve --tls`.

Run by the Rust test driver (crates/rota-cli/tests/it/interop.rs) with the
interpreter of the venv that `cargo xtask ci` creates, each client on its
default HTTPS route with the local CA where that client looks for trust:

- the KMS SDK (`alibabacloud-kms20160120`): no protocol set (HTTPS is its
  default), the CA in the process's trust store (`SSL_CERT_FILE`, set by
  the driver);
- the old core (`aliyun-python-sdk-core` with `aliyun-python-sdk-kms`,
  whose KMS requests ask for HTTPS): the CA through
  `ALIBABA_CLOUD_CA_BUNDLE`, set by the driver;
- the caching Secrets Manager client (`aliyun-secret-manager-client`):
  configured as its users do, through `cache_client_region_id` and the
  `credentials_*` variables (set by the driver), on its HTTPS route.

Environment: ROTA_ENDPOINT (host:port of the HTTPS server), ROTA_AK,
ROTA_SK (its root access key). Prints one line per check and a closing
"N passed, M failed" line; exits 1 on any failure.
"""

import json
import os
import uuid

from alibabacloud_kms20160120 import models
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from checks import check, finish

ENDPOINT = os.environ["ROTA_ENDPOINT"]
AK = os.environ["ROTA_AK"]
SK = os.environ["ROTA_SK"]
SUFFIX = uuid.uuid4().hex[:8]




SDK = Client(Config(access_key_id=AK, access_key_secret=SK, endpoint=ENDPOINT, region_id="cn-hangzhou"))


@check("KMS SDK over HTTPS, CA in the trust store: create and read")
def _():
    name = f"https/sdk-{SUFFIX}"
    SDK.create_secret(
        models.CreateSecretRequest(secret_name=name, secret_data="over-tls", version_id="v1")
    )
    got = SDK.get_secret_value(models.GetSecretValueRequest(secret_name=name)).body
    assert got.secret_data == "over-tls", got.secret_data


@check("a client that does not trust the CA is refused")
def _():
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkkms.request.v20160120.ListSecretsRequest import ListSecretsRequest

    # verify=True: the bundle requests ships, not ALIBABA_CLOUD_CA_BUNDLE.
    client = AcsClient(AK, SK, "cn-hangzhou", verify=True, auto_retry=False)
    client.add_endpoint("cn-hangzhou", "Kms", ENDPOINT)
    try:
        client.do_action_with_exception(ListSecretsRequest())
    except Exception as e:  # noqa: BLE001
        assert "certificate" in str(e).lower() or "ssl" in str(e).lower(), e
        return
    raise AssertionError("an untrusted certificate was accepted")


@check("old core over HTTPS with ALIBABA_CLOUD_CA_BUNDLE: create and read")
def _():
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkkms.request.v20160120.CreateSecretRequest import CreateSecretRequest
    from aliyunsdkkms.request.v20160120.GetSecretValueRequest import GetSecretValueRequest

    client = AcsClient(AK, SK, "cn-hangzhou")
    client.add_endpoint("cn-hangzhou", "Kms", ENDPOINT)
    name = f"https/core-{SUFFIX}"
    create = CreateSecretRequest()
    create.set_SecretName(name)
    create.set_SecretData("core-over-tls")
    create.set_VersionId("v1")
    create.set_accept_format("JSON")
    client.do_action_with_exception(create)
    get = GetSecretValueRequest()
    get.set_SecretName(name)
    get.set_accept_format("JSON")
    assert get.get_protocol_type() == "https", get.get_protocol_type()
    body = json.loads(client.do_action_with_exception(get))
    assert body["SecretData"] == "core-over-tls", body


@check("caching Secrets Manager client on its HTTPS route")
def _():
    from alibaba_cloud_secretsmanager_client.secret_manager_cache_client_builder import (
        SecretManagerCacheClientBuilder,
    )

    name = f"https/cached-{SUFFIX}"
    SDK.create_secret(
        models.CreateSecretRequest(secret_name=name, secret_data="cached-value", version_id="v1")
    )
    cache = SecretManagerCacheClientBuilder.new_client()
    try:
        info = cache.get_secret_info(name)
        assert info.secret_value == "cached-value", info.secret_value
        assert info.version_id == "v1", info.version_id
        SDK.put_secret_value(
            models.PutSecretValueRequest(secret_name=name, secret_data="rotated-value", version_id="v2")
        )
        cache.refresh_now(name)
        assert cache.get_secret_value(name) == "rotated-value"
    finally:
        cache.close()


finish()
