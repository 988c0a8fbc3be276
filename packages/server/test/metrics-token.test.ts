// A metrics scraper's own token (MICROAPP_METRICS_TOKEN_FILE): it reads /metrics and nothing else, belongs
// to no person, rotates by replacing its file, and a file others can read stops the start.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { signInEveryone, startTestServer, type TestServer } from './harness.ts';

describe("the metrics scraper's token", () => {
  let dir: string;
  let file: string;
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  const scrape = (token?: string, path = '/metrics') =>
    fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-metrics-'));
    file = join(dir, 'metrics-token');
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    server = await startTestServer('sqlite', { env: { MICROAPP_METRICS_TOKEN_FILE: file } });
    t = await signInEveryone(server);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('it reads the metrics; an admin or an auditor may too; nobody else', async () => {
    const token = readFileSync(file, 'utf8').trim();
    const ok = await scrape(token);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /microapp_usage_records_dropped_total/);
    assert.equal((await scrape(t.ivan)).status, 200, 'an admin');
    assert.equal((await scrape(t.carol)).status, 200, 'an auditor');
    const creator = await scrape(t.alice);
    assert.equal(creator.status, 403);
    assert.match(
      ((await creator.json()) as { detail: string }).detail,
      /admins, auditors and the metrics scraper/,
    );
    const anonymous = await scrape();
    assert.equal(anonymous.status, 401);
    assert.match(((await anonymous.json()) as { detail: string }).detail, /MICROAPP_METRICS_TOKEN_FILE/);
    const wrong = await scrape(`${token.slice(0, -1)}${token.endsWith('a') ? 'b' : 'a'}`);
    assert.equal(wrong.status, 401);
  });

  test('it opens nothing but /metrics', async () => {
    const token = readFileSync(file, 'utf8').trim();
    for (const path of ['/api/v1/apps', '/api/v1/audit/events', '/api/v1/auth/session'])
      assert.equal((await scrape(token, path)).status, 401, path);
  });

  test('replacing the file rotates it at once', async () => {
    const old = readFileSync(file, 'utf8').trim();
    const rotated = randomBytes(32).toString('hex');
    writeFileSync(file, `${rotated}\n`);
    assert.equal((await scrape(rotated)).status, 200);
    assert.equal((await scrape(old)).status, 401);
  });

  test('a short token, a missing file or one others can read stops the start, naming the setting', () => {
    const short = join(dir, 'short');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    const loose = join(dir, 'loose');
    writeFileSync(loose, `${randomBytes(32).toString('hex')}\n`);
    chmodSync(loose, 0o644);
    for (const [path, message] of [
      [short, /at least 32 characters on one line/],
      [join(dir, 'missing'), /MICROAPP_METRICS_TOKEN_FILE .*missing cannot be read: ENOENT/],
      [loose, /MICROAPP_METRICS_TOKEN_FILE .*can be read or written by other users \(mode 0644\)/],
    ] as const)
      assert.throws(() => loadConfig({ dev: true }, { MICROAPP_METRICS_TOKEN_FILE: path }), message);
  });
});
