/**
 * The init container's program: fetches the artifact from the platform over TLS, presenting the pod's own
 * service-account token (audience `microapp-artifacts`, ten minutes, written by the kubelet), refuses it
 * unless its SHA-256 is the signed digest, and unpacks it into /app. A different artifact, even a signed
 * one of the same app, is refused; the platform refuses a token of another app's service account.
 * Plain CommonJS on Node's own modules: it runs on the runtime image with nothing installed.
 */
export const fetchArtifact = `const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { execFileSync } = require('node:child_process');
const { gunzipSync } = require('node:zlib');
(async () => {
  const url = process.env.ARTIFACT_URL;
  if (!url.startsWith('https://')) throw new Error('the artifact is fetched over https only, not ' + url);
  const token = readFileSync(process.env.ARTIFACT_TOKEN_FILE, 'utf8').trim();
  const res = await fetch(url, { headers: { authorization: 'Bearer ' + token } });
  if (!res.ok) throw new Error('the platform answered ' + res.status + ' for the artifact: ' + (await res.text()).slice(0, 300));
  const bytes = Buffer.from(await res.arrayBuffer());
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  if (digest !== process.env.ARTIFACT_DIGEST) throw new Error('artifact digest ' + digest + ' is not the signed ' + process.env.ARTIFACT_DIGEST);
  // Unzipped here, so the image needs tar but no gzip.
  execFileSync('tar', ['-xf', '-', '-C', '/app', '--no-same-owner', '--no-same-permissions'], { input: gunzipSync(bytes), maxBuffer: 512 * 1024 * 1024 });
  console.log('fetched and checked ' + digest);
})().catch((e) => { console.error(e.message); process.exit(1); });
`;
