// The platform serves HTTPS itself when given a certificate (inside a cluster, the apps' pods fetch their
// artifacts from it over TLS), refuses a half or careless setting, and takes a renewed certificate without
// a restart.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { loadConfig } from '../src/config.ts';
import { companyCa, startTestServer, type TestServer } from './harness.ts';

function get(url: string, ca: string | null): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((done, fail) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      u.protocol === 'https:' ? { ca: ca ?? undefined, rejectUnauthorized: true } : {},
      (res) => {
        res.resume();
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', fail);
    req.end();
  });
}

/** The serial number of the certificate the server presents now. */
function presented(port: number, ca: string): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      done(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', fail);
  });
}

describe('the platform over TLS', () => {
  let dir: string;
  let ca: ReturnType<typeof companyCa>;
  let server: TestServer;
  let caPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-tls-'));
    ca = companyCa(dir);
    writeFileSync(join(dir, 'tls.crt'), ca.cert);
    writeFileSync(join(dir, 'tls.key'), ca.key, { mode: 0o600 });
    caPem = readFileSync(ca.ca, 'utf8');
    server = await startTestServer('sqlite', {
      env: { MICROAPP_TLS_CERT_FILE: join(dir, 'tls.crt'), MICROAPP_TLS_KEY_FILE: join(dir, 'tls.key') },
    });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('it answers over https only, with a certificate the company CA vouches for, and says so (HSTS)', async () => {
    assert.match(server.url, /^https:\/\/localhost:\d+$/);
    const ok = await get(`${server.url}/healthz`, caPem);
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['strict-transport-security']), /max-age=\d+/);
    await assert.rejects(get(`${server.url}/healthz`, null), /self-signed|unable to (get|verify)/);
    await assert.rejects(get(server.url.replace('https:', 'http:') + '/healthz', null));
  });

  test('a renewed certificate is served without a restart', async () => {
    const port = Number(new URL(server.url).port);
    const first = await presented(port, caPem);
    // The same CA issues a new certificate; cert-manager writes it over the old files.
    const renewed = companyCa(mkdtempSync(join(dir, 'renew-')));
    // The new pair is signed by another CA here: trust both, and see which one comes back.
    const both = `${caPem}${readFileSync(renewed.ca, 'utf8')}`;
    writeFileSync(join(dir, 'tls.key'), renewed.key);
    writeFileSync(join(dir, 'tls.crt'), renewed.cert);
    let now = first;
    // The files are looked at every 30 s.
    for (let i = 0; i < 80 && now === first; i++) {
      await new Promise((r) => setTimeout(r, 500));
      now = await presented(port, both);
    }
    assert.notEqual(now, first, 'the renewed certificate is served');
  });

  test('half a setting, a missing file, or a key others can read stops the start, naming the setting; its own group may read it', () => {
    const key = join(dir, 'loose.key');
    copyFileSync(join(dir, 'tls.key'), key);
    chmodSync(key, 0o644);
    for (const [env, message] of [
      [
        { MICROAPP_TLS_CERT_FILE: join(dir, 'tls.crt') },
        /MICROAPP_TLS_CERT_FILE and MICROAPP_TLS_KEY_FILE go together/,
      ],
      [
        { MICROAPP_TLS_CERT_FILE: join(dir, 'nope.crt'), MICROAPP_TLS_KEY_FILE: join(dir, 'tls.key') },
        /MICROAPP_TLS_CERT_FILE .*nope\.crt cannot be read: ENOENT/,
      ],
      [
        { MICROAPP_TLS_CERT_FILE: join(dir, 'tls.key'), MICROAPP_TLS_KEY_FILE: join(dir, 'tls.key') },
        /MICROAPP_TLS_CERT_FILE .* holds no PEM certificate/,
      ],
      [
        { MICROAPP_TLS_CERT_FILE: join(dir, 'tls.crt'), MICROAPP_TLS_KEY_FILE: key },
        /MICROAPP_TLS_KEY_FILE .* can be read or written by other users \(mode 0644\): chmod 600/,
      ],
    ] as const)
      assert.throws(() => loadConfig({ dev: true }, env), message);
    // On Kubernetes a Secret's files are readable by the pod's group (fsGroup, mode 0440): the platform's own.
    chmodSync(key, 0o640);
    const config = loadConfig(
      { dev: true },
      { MICROAPP_TLS_CERT_FILE: join(dir, 'tls.crt'), MICROAPP_TLS_KEY_FILE: key },
    );
    assert.equal(config.tls?.keyFile, key);
  });
});
