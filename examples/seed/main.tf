variable "name" {
  default = "terraform-example"
}

provider "alicloud" {
  region = "cn-hangzhou"
}


resource "alicloud_kms_secret" "default" {
  version_id                = "v1"
  secret_name               = var.name
  description               = "test"
  secret_type               = "ECS"
  enable_automatic_rotation = true
  secret_data_type          = "text"
  secret_data               = "{\"UserName\":\"ecs-user1423\",\"Password\":\"ecs-user1423\"}"
  policy                    = "{\"Version\":\"1\",\"Statement\":[{\"Action\":[\"kms:*\"],\"Resource\":[\"*\"],\"Effect\":\"Allow\",\"Principal\":{\"RAM\":[\"acs:ram::1117600963847258:*\"]},\"Sid\":\"kms default secret policy\"}]}"
  encryption_key_id         = "key-phzz661646aeygbqrfqg5j"
  dkms_instance_id          = "kst-phzz61dbabacquz826y29f"
  rotation_interval         = "604800s"
  extended_config           = "{\"SecretSubType\":\"Password\",\"InstanceId\":\"i-bp1fr0a100hd0yf6ksq3\",\"CustomData\":{\"Key1\":\"v1\",\"fds\":\"fdsf\"},\"CommandId\":\"cmd-ACS-KMS-RotateECSSecret-For-Linux.sh\",\"RegionId\":\"cn-hangzhou\"}"
}
