import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { AppError } from '../src/errors.ts';
import { receive } from '../src/modules/repos/git-backend.ts';
import { refusedReport } from '../src/modules/repos/git-report.ts';

/** The pkt-lines of a git protocol stream: each payload, or null for a flush packet. */
function packets(bytes: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < bytes.length; ) {
    const length = Number.parseInt(bytes.subarray(i, i + 4).toString(), 16);
    assert.ok(Number.isInteger(length), `a packet length at ${i}`);
    out.push(length === 0 ? null : bytes.subarray(i + 4, i + length));
    i += length === 0 ? 4 : length;
  }
  return out;
}

test('a push is received whole up to the limit, and refused past it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-git-backend-'));
  try {
    const chunks = (n: number) => Readable.from([Buffer.alloc(n, 1), Buffer.alloc(n, 2)]);
    await receive(chunks(512), join(dir, 'at-limit'), 1024);
    assert.equal(readFileSync(join(dir, 'at-limit')).length, 1024);
    await assert.rejects(
      receive(chunks(513), join(dir, 'over'), 1024),
      (e: Error) => e instanceof AppError && e.status === 413 && /smaller steps/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a refused push is reported as git's own refusal, multiplexed when git's answer was", () => {
  const reason = 'main moved while this change was written\nfetch and try again';
  // git's answer when the client asked for side-band-64k: band 1 carries the report.
  const sideband = Buffer.from('0015\x01000eunpack ok\n0000');
  const out = packets(refusedReport(sideband, ['refs/heads/main', 'refs/heads/x'], reason));
  assert.equal(out.at(-1), null);
  const bands = out.filter((p): p is Buffer => p !== null);
  assert.equal(bands[0]![0], 2);
  assert.match(bands[0]!.subarray(1).toString(), /^microapp: main moved while this change was written fetch/);
  const report = packets(Buffer.concat(bands.filter((p) => p[0] === 1).map((p) => p.subarray(1))));
  assert.deepEqual(
    report.map((p) => p?.toString() ?? null),
    [
      'unpack ok\n',
      'ng refs/heads/main main moved while this change was written fetch and try again\n',
      'ng refs/heads/x main moved while this change was written fetch and try again\n',
      null,
    ],
  );
  // Without side-band: the report as it is.
  const plain = packets(refusedReport(Buffer.from('000eunpack ok\n0000'), ['refs/heads/main'], 'no'));
  assert.deepEqual(
    plain.map((p) => p?.toString() ?? null),
    ['unpack ok\n', 'ng refs/heads/main no\n', null],
  );
});
