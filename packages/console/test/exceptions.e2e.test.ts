// Vulnerability exceptions in the console, as a security reviewer and an app's owner use them: the owner
// sees what was accepted and cannot accept it herself; the reviewer accepts a finding with a reason and a
// date, is told plainly when an id is wrong, and revokes it; the API and the audit trail agree.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, lunchPoll } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

describe('vulnerability exceptions on the app page', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig();
    const registered = await call(rig.server, 'POST', '/api/v1/apps', {
      token: rig.tokens.alice,
      body: lunchPoll({
        name: 'pad-report',
        owner: 'alice@example.com',
        audience: { department: 'finance' },
      }),
    });
    assert.equal(registered.status, 201, registered.text);
  });
  after(() => rig?.stop());

  test('the owner sees none accepted, and no form to accept one', async () => {
    const { context, page, errors } = await rig.signedIn('alice@example.com');
    await page.goto(`${rig.server.url}/apps/pad-report`);
    await page.getByRole('heading', { name: 'Vulnerability exceptions' }).waitFor();
    await page.getByText('No finding of pad-report has been accepted.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Accept until that date' }).count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a security reviewer accepts a finding, is told when an id is unknown, and revokes it', async () => {
    const { context, page } = await rig.signedIn('bob@example.com');
    await page.goto(`${rig.server.url}/apps/pad-report`);
    const until = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    const form = page.getByRole('form').or(page.locator('form')).filter({ hasText: 'Accept findings' });
    await page.getByLabel('Advisory ids, as the scan shows them').fill('GHSA-nope-nope-nope');
    await page.getByLabel('Package (leave empty for every package of the app)').fill('left-pad');
    await page
      .getByLabel('Why the risk is acceptable')
      .fill('left-pad is only used by the build script, never at run time');
    await page.getByLabel('Until (at most 180 days)').fill(until);
    await form.getByRole('button', { name: 'Accept until that date' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'GHSA-nope-nope-nope is not in the advisory data for left-pad' })
      .waitFor();

    // The id as people paste it (lower case): the platform writes it as OSV does.
    await page.getByLabel('Advisory ids, as the scan shows them').fill('ghsa-x');
    await form.getByRole('button', { name: 'Accept until that date' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Accepted GHSA-x for left-pad until ${until}.` })
      .waitFor();
    const row = page.getByRole('row', { name: /GHSA-x left-pad live accepted until/ });
    await row.waitFor();
    await rig.accessible(page, 'the exceptions section');
    await rig.shot(page, '20-exceptions');

    await row.getByRole('button', { name: 'Revoke the exception for GHSA-x in left-pad' }).click();
    await page.getByRole('status').filter({ hasText: 'The exception for GHSA-x is revoked' }).waitFor();
    await page.getByRole('row', { name: /GHSA-x left-pad revoked revoked by bob@example\.com/ }).waitFor();

    const listed = await call(rig.server, 'GET', '/api/v1/apps/pad-report/scan-exceptions', {
      token: rig.tokens.alice,
    });
    assert.deepEqual(
      listed.body.items.map((x: { advisory: string; state: string }) => [x.advisory, x.state]),
      [['GHSA-x', 'revoked']],
      'one exception, the refused id never stored',
    );
    const audit = await call(rig.server, 'GET', '/api/v1/audit/events?app=pad-report&action=scan.', {
      token: rig.tokens.ivan,
    });
    assert.deepEqual(
      audit.body.items.map((e: { action: string; actor: string }) => `${e.action} ${e.actor}`).sort(),
      ['scan.exception_granted bob@example.com', 'scan.exception_revoked bob@example.com'],
    );
    await context.close();
  });
});
