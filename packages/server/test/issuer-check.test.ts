// The identity provider is checked when the server starts and by /readyz: a misnamed issuer stops the start,
// a provider that does not answer yet keeps the server not ready, and says so.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { ConfigError, loadConfig } from '../src/config.ts';
import { startServer } from '../src/server.ts';
import { call } from './harness.ts';

/** A stand-in provider's discovery document, naming itself `name()`. */
function provider(name: () => string): Server {
  return createServer((req, res) => {
    if (req.url !== '/.well-known/openid-configuration') return res.writeHead(404).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ issuer: name(), authorization_endpoint: `${name()}/auth` }));
  });
}
const listen = (s: Server, port = 0) =>
  new Promise<number>((r) => s.listen(port, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

const settings = (issuer: string) => ({
  MICROAPP_OIDC_ISSUER: issuer,
  MICROAPP_OIDC_CLIENT_ID: 'microapp',
  MICROAPP_OIDC_CLIENT_SECRET: 'client-secret-value',
  MICROAPP_OIDC_GROUP_ROLES: '{"finance-builders":{"roles":["creator"]}}',
  MICROAPP_KEK: Buffer.alloc(32, 9).toString('base64'),
  MICROAPP_LOG_LEVEL: 'silent',
  MICROAPP_JOBS: 'off',
});

// The server reads its KEK from the process's environment (this file runs in a process of its own).
process.env.MICROAPP_KEK = Buffer.alloc(32, 9).toString('base64');

describe('the identity provider at start and in /readyz', () => {
  test('a provider that calls itself by another issuer stops the start, naming the setting', async () => {
    const idp = provider(() => 'https://login.example.com');
    const port = await listen(idp);
    const dataDir = mkdtempSync(join(tmpdir(), 'microapp-issuer-'));
    try {
      const config = loadConfig({ port: 0, dataDir }, settings(`http://127.0.0.1:${port}`));
      await assert.rejects(startServer(config, { logger: pino({ level: 'silent' }) }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /MICROAPP_OIDC_ISSUER is "http:\/\/127\.0\.0\.1:\d+" but the identity provider calls itself "https:\/\/login\.example\.com"/,
        );
        assert.ok(!error.message.includes('client-secret-value'));
        return true;
      });
    } finally {
      idp.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a provider that does not answer yet keeps the server not ready until it does', async () => {
    // A port nothing listens on yet.
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const issuer = `http://127.0.0.1:${port}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'microapp-issuer-'));
    const server = await startServer(loadConfig({ port: 0, dataDir }, settings(issuer)), {
      logger: pino({ level: 'silent' }),
    });
    const idp = provider(() => issuer);
    try {
      const down = await call(server, 'GET', '/readyz');
      assert.equal(down.status, 503);
      assert.match(
        down.body.status,
        /MICROAPP_OIDC_ISSUER: the identity provider's discovery document .* cannot be read/,
      );
      await listen(idp, port);
      const up = await call(server, 'GET', '/readyz');
      assert.equal(up.status, 200, up.text);
    } finally {
      await server.close();
      idp.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
