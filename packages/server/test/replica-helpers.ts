import assert from 'node:assert/strict';
import { strToU8, zipSync } from 'fflate';
import type { RunningServer } from '../src/server-types.ts';
import { call, lunchPoll, people, sourceArchive } from './harness.ts';

/** An OSV snapshot with one record nothing here uses: scans need a snapshot to publish, not findings. */
export async function importEmptySnapshot(server: { url: string }, adminToken: string) {
  const res = await fetch(`${server.url}/api/v1/advisories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/zip' },
    body: Buffer.from(
      zipSync({
        'r0.json': strToU8(
          JSON.stringify({
            id: 'GHSA-none',
            affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
          }),
        ),
      }),
    ),
  });
  assert.equal(res.status, 201, await res.text());
}

/**
 * A finance lunch poll owned by dave (`lunchPoll`), registered, and with `publish` set, version 1.0.0
 * published: a one-file Node.js server (`serverJs`, or one that answers "hi"). Returns the published
 * artifact (base64) and its digest.
 */
export async function pollApp(
  server: RunningServer,
  daveToken: string,
  name: string,
  options: { publish: boolean; serverJs?: string } = { publish: true },
): Promise<{ artifact: string; digest: string } | null> {
  const reg = await call(server, 'POST', '/api/v1/apps', {
    token: daveToken,
    body: lunchPoll({ name, owner: people.dave, audience: { department: 'finance' } }),
  });
  assert.equal(reg.status, 201, reg.text);
  if (!options.publish) return null;
  const artifact = await sourceArchive({
    'package.json': JSON.stringify({ name, version: '1.0.0' }),
    'server.js':
      options.serverJs ??
      "require('node:http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n",
  });
  const pub = await call(server, 'POST', `/api/v1/apps/${name}/versions`, {
    token: daveToken,
    body: {
      version: '1.0.0',
      artifact,
      sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
    },
  });
  assert.equal(pub.status, 201, pub.text);
  return { artifact, digest: pub.body.digest as string };
}
