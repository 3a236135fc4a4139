// Interop: the official Node.js KMS SDK (@alicloud/kms20160120) against
// `rota local serve --tls`, on its default HTTPS route.
//
// Run by the Rust test driver (crates/rota-cli/tests/it/interop.rs) with
// NODE_PATH at the packages `cargo xtask interop-setup` installs, and the
// local CA in NODE_EXTRA_CA_CERTS (or not, to see the server refused).
// Environment: ROTA_ENDPOINT (host:port), ROTA_AK, ROTA_SK, ROTA_NAME (the
// secret to create). Prints "ok <value>" and exits 0, or "error <code>
// <message>" and exits 1.
const Kms = require('@alicloud/kms20160120');
const OpenApi = require('@alicloud/openapi-client');

(async () => {
  const client = new Kms.default(new OpenApi.Config({
    accessKeyId: process.env.ROTA_AK,
    accessKeySecret: process.env.ROTA_SK,
    endpoint: process.env.ROTA_ENDPOINT,
    regionId: 'cn-hangzhou',
  }));
  const name = process.env.ROTA_NAME;
  await client.createSecret(new Kms.CreateSecretRequest({
    secretName: name, secretData: 'from-node', versionId: 'v1',
  }));
  const got = await client.getSecretValue(new Kms.GetSecretValueRequest({ secretName: name }));
  // Older SDK versions answer the body itself, newer ones { body }.
  const body = got.body || got;
  console.log(`ok ${body.secretData}`);
})().catch((e) => {
  console.log(`error ${e.code || ''} ${String(e.message).split(' ')[0]}`);
  process.exit(1);
});
