variable "apps" {
  type    = map(string)
  default = { web = "w", api = "a" }
}
variable "db_password" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
locals {
  names = [for k, v in var.apps : upper(k)]
  tags  = merge({ team = "ops" }, { env = lower("PROD") })
}
resource "alicloud_kms_secret" "db" {
  secret_name                   = "db/${join("-", sort(keys(var.apps)))}"
  secret_data                   = jsonencode({ user = "app", password = var.db_password })
  version_id                    = format("v%d", length(local.names))
  description                   = trimspace(" db ")
  recovery_window_in_days       = 7
  enable_automatic_rotation     = true
  rotation_interval             = "${7 * 24}h"
  tags                          = local.tags
  lifecycle {
    ignore_changes = [secret_data, version_id]
  }
}
output "arn" {
  value = alicloud_kms_secret.db.arn
}
