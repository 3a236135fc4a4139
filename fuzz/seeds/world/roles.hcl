account_id = "1234567890123456"
region     = "cn-hangzhou"
ram_user "alice" {
  access_key "LTAI5tAliceKey000001" {
    secret = "alice-key-secret"
  }
}
ram_role "app-reader" {
  assume_role_policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { RAM = ["acs:ram::1234567890123456:user/alice"], Service = ["ecs.aliyuncs.com"] } }]
  }
  policy = <<JSON
{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:GetSecretValue"],"Resource":"acs:kms:*:*:secret/app/*"},{"Effect":"Deny","Action":"kms:*","Resource":"*"}]}
JSON
  max_session_duration = 7200
}
ecs_instance "i-bp1appserver000001" {
  ram_role = "app-reader"
}
