import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { dayMs } from '../src/clock.ts';
import { webhookSignature } from '../src/modules/notifications/notification-service.ts';
import { call, lunchPoll, people, signInEveryone, startTestServer, type TestServer } from './harness.ts';

type Mail = { to: string; body: string };
type Hook = { body: string; signature: string | undefined };

describe('notifications leave by e-mail and webhook, signed and retried', () => {
  let server: TestServer;
  let smtp: SMTPServer;
  let hooks: Server;
  const mails: Mail[] = [];
  const received: Hook[] = [];
  let failNextHook = true;
  const secret = 'webhook-test-secret-0123456789';

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, done) {
        let body = '';
        stream.on('data', (d) => (body += d));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), body });
          done();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        // The first delivery fails, as a receiver having a bad minute would: it must be retried.
        if (failNextHook && body.includes('has not been used')) {
          failNextHook = false;
          res.writeHead(503).end();
          return;
        }
        received.push({ body, signature: req.headers['x-microapp-signature'] as string | undefined });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    const hookPort = (hooks.address() as AddressInfo).port;
    server = await startTestServer('sqlite', {
      env: {
        MICROAPP_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        MICROAPP_MAIL_FROM: 'microapp <platform@example.com>',
        MICROAPP_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/hook`,
        MICROAPP_WEBHOOK_SECRET: secret,
      },
    });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((r) => smtp.close(() => r()));
    await new Promise((r) => hooks.close(r));
  });

  test('a warning reaches the owner’s mailbox and the webhook; a failed webhook is retried later', async () => {
    const t = await signInEveryone(server);
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'mailed-poll', owner: people.alice }),
    });
    assert.equal(reg.status, 201, reg.text);
    server.internals.clock.advance(61 * dayMs);
    await server.internals.jobs.runDue();
    await server.internals.jobs.trigger('notifications');

    const mail = mails.find((m) => m.body.includes('mailed-poll has not been used for 61 days'));
    assert.ok(mail, `mail to the owner: ${mails.map((m) => m.to).join(', ')}`);
    assert.equal(mail.to, people.alice);
    assert.match(mail.body, /What to do: http:\/\/[^/]+\/apps\/mailed-poll#renew/);
    const warned = () => received.filter((h) => h.body.includes('has not been used'));
    assert.equal(warned().length, 0, 'the first webhook attempt failed');

    // Not retried before its back-off has passed, then delivered once, signed.
    await server.internals.jobs.trigger('notifications');
    assert.equal(warned().length, 0);
    server.internals.clock.advance(2 * 60_000);
    await server.internals.jobs.trigger('notifications');
    assert.equal(warned().length, 1);
    const hook = warned()[0]!;
    const [, ts] = /t=(\d+)/.exec(hook.signature ?? '') ?? [];
    assert.equal(
      hook.signature,
      webhookSignature(secret, Number(ts), hook.body),
      'the HMAC matches the body',
    );
    assert.notEqual(hook.signature, webhookSignature('another-secret', Number(ts), hook.body));
    const payload = JSON.parse(hook.body);
    assert.match(payload.text, /mailed-poll/);
    assert.equal(payload.microapp.recipient, people.alice);

    // Delivered means done: running the job again sends nothing twice.
    const before = mails.length + received.length;
    await server.internals.jobs.trigger('notifications');
    assert.equal(mails.length + received.length, before);

    // Alice turns e-mail off: the next warning reaches her inbox and the team's webhook, not her mailbox.
    const prefs = await call(server, 'PUT', '/api/v1/notifications/preferences', {
      token: t.alice,
      body: { email: false },
    });
    assert.equal(prefs.status, 200, prefs.text);
    const second = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'quiet-poll', owner: people.alice }),
    });
    assert.equal(second.status, 201, second.text);
    server.internals.clock.advance(61 * dayMs);
    await server.internals.jobs.runDue();
    await server.internals.jobs.trigger('notifications');
    const inbox = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
    assert.ok(
      inbox.body.items.some((n: { subject: string }) => n.subject.startsWith('quiet-poll has not been used')),
    );
    assert.ok(!mails.some((m) => m.body.includes('quiet-poll has not been used')), 'no mail');
    assert.ok(
      received.some((h) => h.body.includes('quiet-poll has not been used')),
      'the webhook still hears',
    );
  });
});
