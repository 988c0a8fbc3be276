import assert from 'node:assert/strict';
import { strToU8, zipSync } from 'fflate';

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
