# Rota quickstart: three secrets of different types, each rotated by a
# different plugin, and a compliance workflow, on the embedded local cloud
# (no cloud account needed).
#
#   cargo run --release -p rota-cli -- run examples/quickstart --apply --once
#
# --apply creates the secrets (as `rota apply --auto-approve`), --once runs
# everything due and exits with a summary. Each rotation says
# `rotate_immediately = true` (and the workflow `run_immediately = true`):
# newly scheduled, it is due at once, then weekly. State lives in
# examples/quickstart/.rota/ (git-ignored); a second run finds nothing due
# until next week's slot. Delete that directory to start over. Without
# --once, `rota run` stays up as the daemon.

# The shipped plugins (plugins/ at the repository root), wherever Rota is
# started from; plugins/ beside this file and in the current directory are
# searched too.
plugins {
  paths = ["../../plugins"]
}

provider "alicloud" {
  region = "cn-hangzhou"
}

# 1. A Generic secret rotated by the built-in `password` plugin.
resource "alicloud_kms_secret" "api_token" {
  secret_name = "quickstart/api-token"
  secret_data = "initial-api-token"
  version_id  = "v1"
  description = "an API token; the password plugin generates each new value"
}

rotation "api-token" {
  secrets  = ["alicloud_kms_secret.api_token"]
  schedule = "@weekly"
  jitter   = false

  rotate_immediately = true
  plugin   = "password"
  settings = { length = 32 }
}

# 2. The seed's ECS secret: a managed type rotated by the built-in `managed`
# plugin (RotateSecret), which changes the password of ecs-user1423 on the
# world's ECS instance.
resource "alicloud_kms_secret" "ecs" {
  version_id                = "v1"
  secret_name               = "acs/ecs/quickstart"
  description               = "the seed's ECS secret"
  secret_type               = "ECS"
  enable_automatic_rotation = true
  secret_data_type          = "text"
  secret_data               = "{\"UserName\":\"ecs-user1423\",\"Password\":\"ecs-user1423\"}"
  policy                    = "{\"Version\":\"1\",\"Statement\":[{\"Action\":[\"kms:*\"],\"Resource\":[\"*\"],\"Effect\":\"Allow\",\"Principal\":{\"RAM\":[\"acs:ram::1117600963847258:*\"]},\"Sid\":\"kms default secret policy\"}]}"
  encryption_key_id         = "key-phzz661646aeygbqrfqg5j"
  dkms_instance_id          = "kst-phzz61dbabacquz826y29f"
  rotation_interval         = "604800s"
  extended_config           = "{\"SecretSubType\":\"Password\",\"InstanceId\":\"i-bp1fr0a100hd0yf6ksq3\",\"CommandId\":\"cmd-ACS-KMS-RotateECSSecret-For-Linux.sh\",\"RegionId\":\"cn-hangzhou\"}"
}

rotation "ecs" {
  secrets  = ["alicloud_kms_secret.ecs"]
  schedule = "@weekly"
  jitter   = false

  rotate_immediately = true
  plugin   = "managed"
}

# 3. A Generic secret holding an OS login, rotated by the shipped Rhai plugin
# plugins/ecs-password (found through the plugins block above). It sets the new password with Cloud Assistant
# and logs in with it before promoting it.
resource "alicloud_kms_secret" "app_login" {
  secret_name = "quickstart/app-login"
  secret_data = jsonencode({ username = "app", password = "Initial-Passw0rd" })
  version_id  = "v1"
  description = "the app login on i-bp1fr0a100hd0yf6ksq3"
}

rotation "app-login" {
  secrets  = ["alicloud_kms_secret.app_login"]
  schedule = "@weekly"
  jitter   = false

  rotate_immediately = true
  plugin   = "ecs-password"
  settings = { instance_id = "i-bp1fr0a100hd0yf6ksq3" } # region: the provider's
}

# 4. A lifecycle workflow (Rhai): the shipped rotation-compliance report over
# every secret in KMS. Its run is recorded in `rota history`.
workflow "compliance" {
  schedule        = "0 6 * * 1"
  timezone        = "Europe/Berlin"
  script          = "../../scripts/compliance-report.rhai"
  settings        = { max_age_days = 90 }
  run_immediately = true
}
