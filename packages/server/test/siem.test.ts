import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { call, lunchPoll, people, signInEveryone, startTestServer, type TestServer } from './harness.ts';

/** A syslog receiver on loopback that splits octet-counted frames (RFC 6587) and keeps the messages. */
function receiver(port: number, messages: string[]): Promise<Server> {
  let buffer = '';
  const server = createServer((socket) => {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buffer += d;
      for (;;) {
        const m = /^(\d+) /.exec(buffer);
        if (!m) break;
        const start = m[0].length;
        const len = Number(m[1]);
        const bytes = Buffer.from(buffer.slice(start));
        if (bytes.length < len) break;
        messages.push(bytes.subarray(0, len).toString('utf8'));
        buffer = bytes.subarray(len).toString('utf8');
      }
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

describe('the audit trail streams to a SIEM over syslog, at least once', () => {
  let server: TestServer;
  let port: number;
  let siem: Server | null = null;
  const messages: string[] = [];
  before(async () => {
    // A port nobody listens on yet: the SIEM starts "down".
    const probe = await receiver(0, []);
    port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    server = await startTestServer('sqlite', { env: { MICROAPP_SIEM_SYSLOG: `tcp://127.0.0.1:${port}` } });
  });
  after(async () => {
    await server.stop();
    await new Promise((r) => (siem ? siem.close(r) : r(null)));
  });

  test('an outage of the SIEM loses nothing; every event arrives as RFC 5424 with its seq and hash', async () => {
    const t = await signInEveryone(server);
    for (const name of ['siem-one', 'siem-two']) {
      const r = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({ name, owner: people.alice }),
      });
      assert.equal(r.status, 201, r.text);
    }
    assert.equal(
      await server.internals.jobs.trigger('siem-export'),
      false,
      'the run fails while the SIEM is down',
    );
    const jobs = await call(server, 'GET', '/api/v1/jobs', { token: t.ivan });
    const job = jobs.body.items.find((j: { name: string }) => j.name === 'siem-export');
    assert.match(job.lastError, /ECONNREFUSED/);

    siem = await receiver(port, messages);
    assert.equal(await server.internals.jobs.trigger('siem-export'), true);
    for (let i = 0; i < 100 && !messages.some((m) => m.includes('siem-two')); i++)
      await new Promise((r) => setTimeout(r, 20));
    const events = (await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan })).body
      .items as {
      seq: number;
      hash: string;
      action: string;
    }[];
    const got = new Map<number, string>();
    // After the events comes a signed checkpoint of the chain, which the SIEM keeps.
    const checkpoints = messages.filter((m) => m.includes(' audit-checkpoint '));
    assert.ok(checkpoints.length >= 1, 'the export carries a checkpoint');
    const checkpoint = JSON.parse(checkpoints.at(-1)!.slice(checkpoints.at(-1)!.indexOf('] ') + 2));
    assert.equal(checkpoint.type, 'microapp.audit.checkpoint/v1');
    const verified = await call(server, 'POST', '/api/v1/audit/verify', {
      token: t.ivan,
      body: { checkpoint },
    });
    assert.equal(verified.body.ok, true, verified.text);
    for (const m of messages.filter((x) => !x.includes(' audit-checkpoint '))) {
      assert.match(
        m,
        /^<109>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ microapp - audit \[microapp@32473 seq="\d+" hash="[0-9a-f]{64}"/,
      );
      const seq = Number(/seq="(\d+)"/.exec(m)![1]);
      got.set(seq, /hash="([0-9a-f]+)"/.exec(m)![1]!);
      const json = JSON.parse(m.slice(m.indexOf('] ') + 2));
      assert.equal(json.seq, seq);
    }
    for (const e of events)
      assert.equal(got.get(e.seq), e.hash, `event ${e.seq} (${e.action}) arrived intact`);

    // Later events follow from the stored cursor, without resending the rest.
    const before = messages.length;
    const third = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'siem-three', owner: people.alice }),
    });
    assert.equal(third.status, 201, third.text);
    assert.equal(await server.internals.jobs.trigger('siem-export'), true);
    // The sender is done once the kernel has the bytes; the receiver reads them a moment later.
    for (let i = 0; i < 100 && !messages.slice(before).some((m) => m.includes('siem-three')); i++)
      await new Promise((r) => setTimeout(r, 20));
    const fresh = messages.slice(before).filter((m) => !m.includes(' audit-checkpoint '));
    assert.equal(
      fresh.length,
      4,
      'only the new events: registered, assessed, auto-approved, and its repository created',
    );
    assert.ok(fresh.some((m) => m.includes('siem-three')));
  });
});
