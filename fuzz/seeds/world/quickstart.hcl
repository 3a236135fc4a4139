# The local world the quickstart runs against when no cloud credentials are
# configured (see rota-local's world.rs): the seed example's account, KMS
# instance, key and ECS instance. Rota picks up a world.hcl beside the
# configuration.
account_id = "1117600963847258"
region     = "cn-hangzhou"

kms_instance "kst-phzz61dbabacquz826y29f" {
  description = "the seed's KMS instance"
}

key "key-phzz661646aeygbqrfqg5j" {
  description  = "the seed's secrets key"
  spec         = "Aliyun_AES_256"
  kms_instance = "kst-phzz61dbabacquz826y29f"
}

# The ECS instance the seed's extended_config names, with the OS account its
# secret_data logs in as. RotateSecret (and Rota's managed rotation) changes
# this account's password through Cloud Assistant.
ecs_instance "i-bp1fr0a100hd0yf6ksq3" {
  region  = "cn-hangzhou"
  os_type = "linux"
  account "ecs-user1423" {
    password = "ecs-user1423"
  }
  # The login the Rhai plugin ecs-password rotates (quickstart/app-login).
  account "app" {
    password = "Initial-Passw0rd"
  }
}
