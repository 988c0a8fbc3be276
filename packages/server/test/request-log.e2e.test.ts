import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

// The server's own log, as an operator reads it: a line per request only when asked (it cost the gateway a
// tenth of its time), and then without query strings, which may hold personal data or a sign-in code.

const bin = resolve(import.meta.dirname, '../../cli/bin/microapp.js');
const started: { child: ChildProcess; dir: string }[] = [];
after(() => {
  for (const s of started) {
    s.child.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  }
});

/** A dev server as its own process; what it logged once `requests` were answered. */
async function logOf(env: Record<string, string>, requests: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-request-log-'));
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  const child = spawn(
    process.execPath,
    [bin, 'server', '--dev', '--port', '0', '--dev-idp-port', '0', '--data-dir', dir],
    { env: { ...parent, MICROAPP_LOG_LEVEL: 'info', MICROAPP_JOBS: 'off', DATABASE_URL: '', ...env } },
  );
  started.push({ child, dir });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  const url = await new Promise<string>((done, fail) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) done(m[1]!);
    });
    child.on('exit', (code) => fail(new Error(`server exited ${code}: ${err}`)));
  });
  for (const path of requests) await (await fetch(url + path)).text();
  // The log is written as the response goes: give the pipe a moment, then read what came.
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGTERM');
  return out;
}

describe('the request log', () => {
  test('off by default: no line per request', async () => {
    const out = await logOf({}, ['/healthz?who=alice@example.com', '/api/v1/meta']);
    assert.doesNotMatch(out, /request completed|incoming request/);
    assert.doesNotMatch(out, /alice@example\.com/);
  });

  test('on when asked: method, path and status, never the query string', async () => {
    const out = await logOf({ MICROAPP_REQUEST_LOG: 'on' }, ['/healthz?who=alice@example.com&code=s3cret']);
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as {
            msg: string;
            req?: { path?: string; method?: string };
            res?: { statusCode?: number };
          },
      );
    const incoming = lines.find((l) => l.msg === 'incoming request');
    assert.equal(incoming?.req?.path, '/healthz');
    assert.equal(incoming?.req?.method, 'GET');
    assert.ok(
      lines.some((l) => l.msg === 'request completed' && l.res?.statusCode === 200),
      out,
    );
    assert.doesNotMatch(out, /alice@example\.com|s3cret/);
  });

  test('a value other than on or off stops the start with what to write', async () => {
    await assert.rejects(
      logOf({ MICROAPP_REQUEST_LOG: 'verbose' }, []),
      /MICROAPP_REQUEST_LOG is on or off, got "verbose"/,
    );
  });
});
