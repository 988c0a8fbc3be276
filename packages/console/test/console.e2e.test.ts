import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { zipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { bankReconciliation, call, type TestServer, viaGateway } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

/**
 * The console in a real browser (Debian's chromium driven by playwright-core) against a real server, the
 * embedded identity provider and a console built from these sources. Each page is scanned with axe-core
 * (no serious or critical WCAG 2.1 A/AA violation) and photographed into test-output/console/.
 */
describe('web console in a browser', () => {
  let rig: ConsoleRig;
  let server: TestServer;
  let browser: Browser;
  let tokens: ConsoleRig['tokens'];
  let work: string;
  before(async () => {
    rig = await startConsoleRig();
    ({ server, browser, tokens } = rig);
    work = mkdtempSync(join(tmpdir(), 'microapp-console-files-'));
  });
  after(async () => {
    await rig?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });
  const signedIn = (email: string) => rig.signedIn(email);
  const accessible = (page: Page, what: string) => rig.accessible(page, what);
  const shot = (page: Page, name: string) => rig.shot(page, name);

  test('the sign-in page, and the server still answers 404 for API paths it does not know', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // A signed-out visit is an answer, not an error in the browser's console (a 401 used to be logged).
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${server.url}/apps/anything`);
    await page.getByRole('link', { name: 'Sign in with your company account' }).waitFor();
    const href = await page
      .getByRole('link', { name: 'Sign in with your company account' })
      .getAttribute('href');
    assert.equal(
      href,
      '/auth/login?return_to=%2Fapps%2Fanything',
      'sign-in comes back to the page asked for',
    );
    await accessible(page, 'the sign-in page');
    await shot(page, '01-sign-in');
    const api = await page.request.get(`${server.url}/api/v1/nothing-here`);
    assert.equal(api.status(), 404);
    assert.match(api.headers()['content-type'] ?? '', /problem\+json/);
    assert.deepEqual(errors, [], 'the signed-out page logs no error');
    await context.close();
  });

  test('alice registers a form app by answering questions, builds its form, deploys it and opens it', async () => {
    const { context, page, errors } = await signedIn('alice@example.com');
    await accessible(page, 'the catalog');
    await shot(page, '02-catalog');

    await page.getByRole('link', { name: 'New app' }).click();
    await page.getByRole('heading', { level: 1, name: 'Register a new app' }).waitFor();
    await page.getByRole('radio', { name: /Form/ }).check();
    await accessible(page, 'the new-app wizard');
    await page.getByRole('button', { name: 'Next' }).click();

    // A bad name is explained, and the wizard stays on the question.
    await page.getByRole('textbox', { name: 'What should the app be called?' }).fill('Team Survey!');
    await page.getByRole('button', { name: 'Next' }).click();
    // The question's own message (the risk panel may say so too, once its assessment comes back).
    await page.locator('#problem').filter({ hasText: 'lower-case letters' }).waitFor();
    await page.getByRole('textbox', { name: 'What should the app be called?' }).fill('team-survey');
    await page.getByRole('button', { name: 'Next' }).click();
    await page
      .getByRole('textbox', { name: 'What is it for?' })
      .fill('Ask the finance team which training they want next quarter');
    await page.getByRole('button', { name: 'Next' }).click();
    assert.equal(await page.getByLabel('Department whose people may open it').inputValue(), 'finance');
    await page.getByLabel('About how many people, at most?').fill('30');
    await page.getByRole('button', { name: 'Next' }).click();

    // Each data class says what decides it: who answered a form is internal information, not personal data.
    await page
      .getByText(
        "Knowing who uses the app is not personal data: colleagues' names and work e-mails are internal information.",
      )
      .waitFor();
    await page.getByRole('checkbox', { name: /Personal data about people.*home addresses/ }).waitFor();
    // Personal and financial data make it high risk, with reasons; taking them back makes it low again.
    const risk = page.getByRole('complementary', { name: 'Risk so far' });
    await page.getByRole('checkbox', { name: /Personal data/ }).check();
    await page.getByRole('checkbox', { name: /Financial records/ }).check();
    await risk.getByText('High risk').waitFor();
    assert.match(
      (await page.getByTestId('tier-meaning').textContent()) ?? '',
      /security reviewer and a compliance reviewer/,
    );
    await accessible(page, 'the wizard showing a high tier');
    await shot(page, '03-new-app-high-risk');
    await page.getByRole('checkbox', { name: /Personal data/ }).uncheck();
    await page.getByRole('checkbox', { name: /Financial records/ }).uncheck();
    await page.getByRole('checkbox', { name: /Internal information/ }).check();
    await risk.getByText('Low risk').waitFor();
    assert.match((await page.getByTestId('tier-meaning').textContent()) ?? '', /approved automatically/);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Next' }).click(); // connections: none
    // Lifetime: the default is said as the lifecycle will apply it, for this tier.
    await page.getByText('Leave empty and it runs up to 90 days, the longest a low-risk app runs').waitFor();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: 'Check your answers' }).waitFor();
    await page.getByText('90 days from approval, then you renew it').waitFor();
    await shot(page, '04-new-app-review');
    await page.getByRole('button', { name: 'Register the app' }).click();

    await page.getByRole('heading', { level: 1, name: 'team-survey' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Registered' }).waitFor();
    await page.getByText('Approved', { exact: true }).first().waitFor();
    await page.getByRole('cell', { name: 'app.registered' }).waitFor();
    await accessible(page, 'the app page');
    await shot(page, '05-app-page');

    // The form builder: change the questions, then Deploy, and watch every step of the pipeline.
    const builder = page.getByRole('group', { name: "The form's questions" });
    await builder.getByLabel('Question 1', { exact: true }).fill('Which course would help you most?');
    await builder.getByRole('button', { name: 'Remove question 3' }).click();
    await builder.getByRole('button', { name: 'Add a question' }).click();
    await builder.getByLabel('Question 3', { exact: true }).fill('Anything else?');
    // A new question must be answered unless its owner says otherwise.
    assert.equal(await builder.getByRole('checkbox', { name: 'Required' }).nth(2).isChecked(), true);
    await builder.getByRole('checkbox', { name: 'Required' }).nth(2).uncheck();
    await builder.getByRole('button', { name: 'Move question 3 up' }).click();
    // Typed questions: a list to choose from, and an amount of money.
    await builder.getByLabel('Answer', { exact: true }).first().selectOption({ label: 'One of a list' });
    await builder.getByLabel('Choices, one per line').fill('Negotiation\nExcel\n\nPublic speaking\n');
    await builder.getByRole('button', { name: 'Add a question' }).click();
    await builder.getByLabel('Question 4', { exact: true }).fill('Budget per person');
    await builder.getByLabel('Answer', { exact: true }).nth(3).selectOption({ label: 'An amount of money' });
    // The preview draws the form as people will see it, as it is written.
    const preview = page.getByRole('form', { name: 'Preview of the form' });
    assert.deepEqual(
      await preview.getByLabel('Which course would help you most?').locator('option').allTextContents(),
      ['Choose…', 'Negotiation', 'Excel', 'Public speaking'],
    );
    assert.equal(await preview.getByLabel('Budget per person').getAttribute('inputmode'), 'decimal');
    await preview.getByText('(optional)').waitFor();
    await accessible(page, 'the form builder');
    await page.getByRole('button', { name: 'Deploy team-survey' }).click();
    // Deploy is a change request: checked by the pipeline, merged by the low tier's rule, then shipped.
    await page
      .getByTestId('change-status')
      .getByText(/Change #1 /)
      .waitFor();
    const progress = page.getByTestId('build-progress');
    await progress.getByText(/Done: version 0\.1\.0 is running/).waitFor({ timeout: 90_000 });
    assert.match(
      (await page.getByTestId('change-status').textContent()) ?? '',
      /Change #1 was merged \(low tier, checks passed\)/,
    );
    for (const step of [
      'Run the tests',
      'Scan for known vulnerabilities',
      'Sign and publish',
      'Start it behind sign-in',
    ])
      assert.match(
        (await progress.getByRole('listitem').filter({ hasText: step }).textContent()) ?? '',
        /✓/,
        step,
      );
    await accessible(page, 'the app page after deploying');
    await shot(page, '06-deployed');

    // Open it: the app's own host signs alice in through the platform, and shows her questions.
    await page.getByRole('link', { name: 'Open team-survey' }).click();
    await page.getByRole('heading', { name: 'team-survey' }).waitFor();
    assert.match(new URL(page.url()).hostname, /^team-survey\.apps\.localhost$/);
    const labels = await page.locator('form label').allTextContents();
    assert.deepEqual(
      labels.map((l) => l.trim()),
      ['Which course would help you most?', 'Anything else?', 'Team', 'Budget per person'],
    );
    await page.getByLabel('Which course would help you most?').selectOption('Negotiation');
    await page.getByLabel('Team').fill('Treasury');
    await page.getByLabel('Budget per person').fill('1 250,5');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('Thank you, your answer is saved.').waitFor();
    await shot(page, '07-app-in-use');
    // The app checks each answer's kind itself, whatever the browser let through.
    const appCookie = (await context.cookies(page.url())).map((c) => `${c.name}=${c.value}`).join('; ');
    const refused = await viaGateway(
      server,
      'team-survey',
      '/submit',
      {
        cookie: appCookie,
        origin: new URL(page.url()).origin,
        'content-type': 'application/x-www-form-urlencoded',
      },
      {
        method: 'POST',
        body: 'which_course_would_help_you_most=Knitting&team=Treasury&budget_per_person=12.345',
      },
    );
    assert.equal(refused.status, 400, refused.body);
    assert.match(refused.body, /must be one of: Negotiation, Excel, Public speaking/);
    assert.match(refused.body, /Budget per person must be an amount/);
    // The answers are the owner's: a colleague the app lets in is refused both the table and the export.
    for (const path of ['/answers', '/export.csv']) {
      const other = await viaGateway(server, 'team-survey', path, { authorization: `Bearer ${tokens.dave}` });
      assert.equal(other.status, 403, `${path}: ${other.body}`);
      assert.doesNotMatch(other.body, /Treasury/);
    }
    // Its owner sees the answers as a table on the app, with the spreadsheet beside it.
    await page.getByRole('link', { name: 'See the answers (1)' }).click();
    await page.getByRole('heading', { name: 'Answers to team-survey' }).waitFor();
    assert.deepEqual(
      await page
        .getByRole('row')
        .nth(1)
        .getByRole('cell')
        .allTextContents()
        .then((c) => c.slice(0, 5)),
      ['Negotiation', '', 'Treasury', '1250.50', 'alice@example.com'],
    );
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(page.url().replace(/\/answers$/, '/'));
    const phoneOverflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
    assert.ok(Number(phoneOverflow) <= 0, `the form is ${phoneOverflow}px wider than a phone`);
    await page.setViewportSize({ width: 1280, height: 900 });
    // The owner reaches the answers from the console: the link opens the app's export, with her session.
    await page.goto(`${server.url}/apps/team-survey`);
    assert.match(
      (await page.getByRole('link', { name: 'See the answers' }).getAttribute('href')) ?? '',
      /^http:\/\/team-survey\.apps\.localhost:\d+\/answers$/,
    );
    const csv = page.getByRole('link', { name: 'Download the answers (CSV)' });
    const href = (await csv.getAttribute('href')) ?? '';
    assert.match(href, /^http:\/\/team-survey\.apps\.localhost:\d+\/export\.csv$/);
    // (What the browser sends there: her session on the app's own host.)
    const cookie = (await context.cookies(href)).map((c) => `${c.name}=${c.value}`).join('; ');
    const exported = await viaGateway(server, 'team-survey', '/export.csv', { cookie });
    assert.equal(exported.status, 200, exported.body);
    assert.match(exported.body, /"Negotiation","","Treasury","1250.50","alice@example.com"/);

    // The API holds what the console showed.
    const app = await call(server, 'GET', '/api/v1/apps/team-survey', { token: tokens.alice });
    assert.equal(app.status, 200);
    assert.equal(app.body.tier, 'low');
    assert.equal(app.body.state, 'approved');
    assert.deepEqual(app.body.manifest.template, { name: 'form', version: '1.2.0' });
    assert.deepEqual(app.body.manifest.dataClasses, ['internal']);
    const changes = await call(server, 'GET', '/api/v1/apps/team-survey/changes', { token: tokens.alice });
    assert.equal(changes.body.items.length, 1);
    assert.equal(changes.body.items[0].state, 'merged');
    assert.equal(changes.body.items[0].release.state, 'passed');

    // The change as a reviewer reads it: the questions in the code's diff, the registered answers unchanged.
    await page.goto(`${server.url}/apps/team-survey/changes/1`);
    await page
      .getByRole('heading', { level: 1, name: /Change #1: Deploy 0\.1\.0 from the console/ })
      .waitFor();
    await page.getByText('Unchanged: the change keeps the answers that were approved.').waitFor();
    assert.match(
      (await page.locator('pre.diff-patch').textContent()) ?? '',
      /\+.*Which course would help you most\?/,
    );
    await accessible(page, 'a change request');
    await shot(page, '07b-change-request');

    // Phone width: nothing runs off the side of the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: 'team-survey' }).waitFor();
    // (the app's own pages are not the console's: errors are counted from here)
    const overflow = await page.evaluate(() => {
      const g = globalThis as unknown as {
        innerWidth: number;
        document: { documentElement: { scrollWidth: number } };
      };
      return g.document.documentElement.scrollWidth - g.innerWidth;
    });
    assert.ok(overflow <= 0, `the catalog is ${overflow}px wider than a phone`);
    await shot(page, '08-catalog-phone');
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });

  test('bob reviews a high-tier change with its diff and policy results side by side, and approves', async () => {
    const alice = tokens.alice;
    assert.equal(
      (await call(server, 'POST', '/api/v1/apps', { token: alice, body: bankReconciliation() })).status,
      201,
    );
    for (const reviewer of [tokens.bob, tokens.erin])
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
            token: reviewer,
            body: { decision: 'approve' },
          })
        ).status,
        200,
      );
    // A new host to send data to is a risk-relevant change: the app goes back to review.
    const changed = await call(server, 'POST', '/api/v1/apps', {
      token: alice,
      // (Without personal data: the privacy pack sends personal data only to approved hosts, and a
      // registration that a deploy would refuse is refused at once.)
      body: bankReconciliation({
        dataClasses: ['internal', 'financial'],
        integrations: {
          egress: ['api.bank.example.com', 'sftp.partner.example.net'],
          connectors: ['ledger-api'],
        },
      }),
    });
    assert.equal(changed.body.app?.state, 'pending_review', changed.text);

    const { context, page, errors } = await signedIn('bob@example.com');
    await page.getByRole('link', { name: 'Reviews' }).click();
    const review = page.getByRole('article', { name: /bank-reconciliation/ });
    await review.waitFor();
    const diff = review.getByRole('table', { name: /Changed since revision 1/ });
    await diff.getByRole('cell', { name: 'api.bank.example.com, sftp.partner.example.net' }).waitFor();
    await review.getByText('No version has been built yet').waitFor();
    const network = review.getByRole('row', { name: /microapp\.network\.deny/ });
    assert.match((await network.textContent()) ?? '', /Passed: nothing denied/);
    await accessible(page, 'the reviews inbox');
    await shot(page, '09-reviews');

    await review.getByRole('button', { name: 'Approve bank-reconciliation' }).click();
    await review.getByRole('status').filter({ hasText: 'Approved.' }).waitFor();
    const app = await call(server, 'GET', '/api/v1/apps/bank-reconciliation', { token: alice });
    const mine = app.body.approval.reviews.filter(
      (r: { reviewer: string; revision: number }) => r.reviewer === 'bob@example.com' && r.revision === 2,
    );
    assert.equal(mine.length, 1, 'the approval was recorded by the API as bob, for revision 2');
    assert.deepEqual(app.body.approval.missing, [{ specialty: 'compliance' }]);
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });

  test('a medium-risk form waits for a reviewer: bob approves the change in the console, and it goes live', async () => {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: tokens.alice,
      body: {
        name: 'claims-form',
        owner: 'alice@example.com',
        purpose: 'Collect travel expense claims for the monthly close',
        dataClasses: ['internal', 'confidential'],
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: 'form', version: '1.1.0' },
      },
    });
    assert.equal(reg.body.app.tier, 'medium', reg.text);
    const approved = await call(server, 'POST', '/api/v1/apps/claims-form/reviews', {
      token: tokens.bob,
      body: { decision: 'approve' },
    });
    assert.equal(approved.status, 200, approved.text);

    const owner = await signedIn('alice@example.com');
    await owner.page.goto(`${server.url}/apps/claims-form`);
    await owner.page.getByRole('button', { name: 'Deploy claims-form' }).click();
    const status = owner.page.getByTestId('change-status');
    await status
      .getByText(/passed its checks and waits for a reviewer to approve it/)
      .waitFor({ timeout: 90_000 });
    assert.equal(
      await owner.page.getByTestId('build-progress').count(),
      0,
      'nothing ships before the review',
    );

    // Bob hears of it in the console: the bell counts it, the notification opens the change.
    const reviewer = await signedIn('bob@example.com');
    await reviewer.page.getByRole('link', { name: /^Notifications, \d+ unread$/ }).click();
    await reviewer.page.getByRole('heading', { level: 1, name: 'Notifications' }).waitFor();
    const notice = reviewer.page.getByRole('article', {
      name: 'claims-form: change #1 waits for your review',
    });
    await notice.getByText(/passed its checks and needs a reviewer \(medium tier\)/).waitFor();
    await accessible(reviewer.page, 'the notifications page');
    await shot(reviewer.page, '09a-notifications');
    await notice.getByRole('button', { name: 'Open' }).click();
    // Opened is read: the bell no longer counts it.
    await reviewer.page.getByRole('link', { name: 'Notifications', exact: true }).waitFor();
    await reviewer.page
      .getByRole('heading', { level: 1, name: /Change #1: Deploy 0\.1\.0 from the console/ })
      .waitFor();
    await reviewer.page
      .getByText('medium tier: merged once the checks pass and a reviewer approves')
      .waitFor();
    await accessible(reviewer.page, 'a change request waiting for review');
    await shot(reviewer.page, '09b-change-review');
    await reviewer.page.getByLabel('Comment (required to ask for changes)').fill('The questions read well');
    await reviewer.page.getByRole('button', { name: 'Approve this change' }).click();
    await reviewer.page
      .getByRole('status')
      .filter({ hasText: /Recorded\. This change is now merged/ })
      .waitFor();

    // Alice's page was following the change: it shows the merged version going live.
    await owner.page
      .getByTestId('build-progress')
      .getByText(/Done: version 0\.1\.0 is running/)
      .waitFor({ timeout: 90_000 });
    const change = await call(server, 'GET', '/api/v1/apps/claims-form/changes/1', { token: tokens.alice });
    assert.equal(change.body.state, 'merged');
    assert.deepEqual(
      change.body.reviews.given.map((g: { reviewer: string; comment: string }) => [g.reviewer, g.comment]),
      [['bob@example.com', 'The questions read well']],
    );
    assert.deepEqual(owner.errors, [], 'console errors');
    assert.deepEqual(reviewer.errors, [], 'console errors');
    await owner.context.close();
    await reviewer.context.close();
  });

  test('alice answers a request for changes from her app page: prefilled answers, the comment as the call to action, and a complete diff for bob', async (t) => {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: tokens.alice,
      body: {
        name: 'trip-requests',
        owner: 'alice@example.com',
        purpose: 'Ask for approval before booking a business trip',
        dataClasses: ['internal', 'confidential'],
        audience: { department: 'finance', maxUsers: 300 },
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: 'form', version: '1.1.0' },
        secrets: ['TRAVEL_DESK_TOKEN'],
      },
    });
    assert.equal(reg.body.app?.state, 'pending_review', reg.text);
    const comment = 'Limit it to the travel team (40 people at most) and say who books the trip';
    const asked = await call(server, 'POST', '/api/v1/apps/trip-requests/reviews', {
      token: tokens.bob,
      body: { decision: 'request_changes', comment },
    });
    assert.equal(asked.status, 200, asked.text);

    const { context, page, errors } = await signedIn('alice@example.com');
    let actions = 0;
    const started = Date.now();
    await page.goto(`${server.url}/apps/trip-requests`);
    const standing = page.getByTestId('approval-standing');
    await standing.getByText('bob@example.com asked for changes').waitFor();
    assert.ok(((await standing.textContent()) ?? '').includes(comment), 'the comment is the call to action');
    await accessible(page, 'an app with changes requested');
    await standing.getByRole('link', { name: 'Change the answers' }).click();
    actions++;
    await page.getByRole('heading', { level: 1, name: 'Change trip-requests' }).waitFor();
    assert.ok(((await page.getByTestId('change-requested').textContent()) ?? '').includes(comment));
    const purpose = page.getByRole('textbox', { name: 'What is it for?' });
    assert.equal(await purpose.inputValue(), 'Ask for approval before booking a business trip', 'prefilled');
    await purpose.fill('Ask for approval before the travel desk books a business trip');
    actions++;
    await page.getByRole('button', { name: 'Next' }).click();
    actions++;
    assert.equal(await page.getByLabel('About how many people, at most?').inputValue(), '300');
    await page.getByLabel('About how many people, at most?').fill('40');
    actions++;
    for (const _ of ['audience', 'data', 'connections']) {
      await page.getByRole('button', { name: 'Next' }).click();
      actions++;
    }
    await page.locator('#expires').fill('2027-06-30');
    actions++;
    await page.getByRole('button', { name: 'Next' }).click();
    actions++;
    const changes = page.getByRole('table', { name: 'What changes' });
    await changes.waitFor();
    assert.deepEqual(
      await changes.locator('tbody th').allTextContents(),
      ['Purpose', 'Most users', 'Needed until'],
      'every answer changed, and nothing else',
    );
    await accessible(page, 'the change wizard');
    await shot(page, '05b-change-answers');
    await page.getByRole('button', { name: 'Send the changes' }).click();
    actions++;
    await page.getByRole('status').filter({ hasText: 'Changes sent (revision 2)' }).waitFor();
    t.diagnostic(
      `respond to review: ${actions} clicks and entries, ${Date.now() - started} ms in the browser`,
    );
    const app = await call(server, 'GET', '/api/v1/apps/trip-requests', { token: tokens.alice });
    assert.equal(app.body.state, 'pending_review');
    assert.equal(app.body.manifest.audience.maxUsers, 40);
    assert.deepEqual(
      app.body.manifest.secrets,
      ['TRAVEL_DESK_TOKEN'],
      'what the wizard does not ask is kept',
    );
    assert.deepEqual(app.body.manifest.template, { name: 'form', version: '1.1.0' });
    assert.equal(app.body.manifest.lifetime.expires, '2027-06-30');
    assert.deepEqual(errors, [], 'console errors');
    await context.close();

    // bob reads what changed since the revision he asked to change: never approved, and said so.
    const bob = await signedIn('bob@example.com');
    await bob.page.getByRole('link', { name: 'Reviews' }).click();
    const review = bob.page.getByRole('article', { name: /trip-requests/ });
    const diff = review.getByRole('table', {
      name: /Changed since revision 1 \(tier medium\), which was not approved: bob@example\.com asked for changes/,
    });
    await diff.waitFor();
    assert.deepEqual(await diff.locator('tbody th').allTextContents(), [
      'Purpose',
      'Most users',
      'Needed until',
    ]);
    assert.deepEqual(bob.errors, [], 'console errors');
    await bob.context.close();
  });

  test('carol reads the overview: the numbers the API gives, and a tier that leads to the catalog', async () => {
    const api = await call(server, 'GET', '/api/v1/overview', { token: tokens.carol });
    assert.equal(api.status, 200, api.text);
    const { context, page, errors } = await signedIn('carol@example.com');
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByText(`${api.body.apps.total} apps, ${api.body.apps.running} running live`).waitFor();
    const tiers = page.getByRole('table', { name: 'By risk tier' });
    for (const [tier, n] of Object.entries(api.body.apps.byTier as Record<string, number>))
      assert.match(
        (await tiers.getByRole('row', { name: new RegExp(`^${tier} `) }).textContent()) ?? '',
        new RegExp(`${n}$`),
      );
    assert.equal(
      await page
        .getByRole('table', { name: 'New apps registered each week (the last 12 weeks, weeks from Monday)' })
        .getByRole('row')
        .count(),
      12,
    );
    await accessible(page, 'the overview');
    await shot(page, '09c-overview');
    await tiers.getByRole('link', { name: 'high' }).click();
    await page.getByRole('heading', { level: 1, name: 'Catalog' }).waitFor();
    assert.equal(new URL(page.url()).search, '?tier=high');
    await page.getByRole('link', { name: 'bank-reconciliation' }).waitFor();
    // What runs, from the overview to the catalog filtered to it; each row says where the app is in its life.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('link', { name: `${api.body.apps.running} running live` }).click();
    await page.getByRole('heading', { level: 1, name: 'Catalog' }).waitFor();
    assert.equal(new URL(page.url()).search, '?running=yes');
    assert.equal(await page.getByLabel('Running').inputValue(), 'yes');
    const survey = page
      .getByRole('listitem')
      .filter({ has: page.getByRole('link', { name: 'team-survey' }) });
    await survey.getByText('running', { exact: true }).waitFor();
    assert.match((await survey.textContent()) ?? '', /last used \d{4}-\d{2}-\d{2}/);
    assert.match((await survey.textContent()) ?? '', /expires \d{4}-\d{2}-\d{2}/);
    assert.equal(
      await page.getByRole('listitem').filter({ hasText: 'not running' }).count(),
      0,
      'only running apps under this filter',
    );
    await page.getByLabel('Lifecycle').selectOption('stopped');
    await page.getByText('0 apps').waitFor();
    await accessible(page, 'the catalog filtered by lifecycle');
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
    // Creators have no overview: the link is not offered and the API refuses.
    assert.equal((await call(server, 'GET', '/api/v1/overview', { token: tokens.alice })).status, 403);
  });

  test('ivan verifies the audit chain and filters the log', async () => {
    const { context, page, errors } = await signedIn('ivan@example.com');
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    const verdict = page.getByTestId('verify-result');
    await verdict.waitFor();
    assert.match((await verdict.textContent()) ?? '', /The chain is intact: \d+ events checked/);
    await page.getByLabel('App').fill('bank-reconciliation');
    await page.getByLabel('Action, or a prefix ending in "."').fill('approval.');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText(/^\d+ events?/).waitFor();
    const actions = await page.locator('table.audit tbody tr td:nth-child(4)').allInnerTexts();
    assert.ok(actions.length >= 2, `approval events for bank-reconciliation: ${actions}`);
    assert.ok(
      actions.every((a) => a.startsWith('approval.')),
      actions.join(', '),
    );
    // The filtered events as a file to keep: every one, with its place in the chain.
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download these events (JSON lines)' }).click(),
    ]);
    assert.equal(file.suggestedFilename(), 'microapp-audit_app-bank-reconciliation_action-approval..jsonl');
    const kept = readFileSync(await file.path(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(kept.length, actions.length);
    assert.ok(
      kept.every((e: { action: string; hash: string }) => e.action.startsWith('approval.') && e.hash),
    );
    await page
      .getByRole('status')
      .filter({ hasText: `Downloaded ${actions.length} event` })
      .waitFor();
    await accessible(page, 'the audit explorer');
    await shot(page, '10-audit');
    // An auditor reads; the console offers no decision, and the API would refuse one.
    await page.getByRole('link', { name: 'Reviews' }).click();
    await page.getByRole('heading', { level: 1, name: 'Reviews' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /^Approve/ }).count(), 0);
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });

  test('carol reads a policy module, runs the tests, tries a decision and defines a connector', async () => {
    const { context, page, errors } = await signedIn('carol@example.com');
    await page.getByRole('link', { name: 'Policies' }).click();
    await page.getByRole('button', { name: 'network/network.rego' }).click();
    const source = page.getByTestId('rego-source');
    await source.getByText('package', { exact: true }).first().waitFor();
    assert.match((await source.textContent()) ?? '', /package microapp\.network[\s\S]*egress denied/);
    await page.getByRole('button', { name: 'Run the tests' }).click();
    const result = page.getByTestId('test-result');
    await result.waitFor();
    const [, passed, total] = /(\d+) of (\d+) tests passed/.exec((await result.textContent()) ?? '') ?? [];
    assert.ok(Number(total) > 20 && passed === total, `${passed} of ${total}`);
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await page
      .getByTestId('decision')
      .getByText(/egress denied: host unsafe\.example\.org is blacklisted/)
      .waitFor();
    await accessible(page, 'the policies page');
    await shot(page, '11-policies');

    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByLabel('Connector id').fill('ledger');
    await page.getByLabel('Base URL').fill('https://ledger.corp.example.com/api');
    await page.getByLabel('Allowed path prefixes (comma-separated)').fill('/entries, /accounts');
    await page.getByLabel(/^Credential/).fill('console-canary-credential-9e1');
    await page.getByRole('checkbox', { name: 'POST' }).check();
    await page.getByRole('checkbox', { name: 'financial' }).check();
    await page.getByRole('button', { name: 'Save the connector' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved ledger' }).waitFor();
    await page
      .getByRole('row', { name: /ledger/ })
      .getByRole('cell', { name: 'set', exact: true })
      .waitFor();
    assert.equal(
      await page.getByLabel(/^Credential/).inputValue(),
      '',
      'the credential field is emptied after saving',
    );
    assert.doesNotMatch(await page.content(), /console-canary-credential-9e1/);
    const api = await call(server, 'GET', '/api/v1/connectors', { token: tokens.carol });
    assert.deepEqual(api.body.items[0].methods, ['GET', 'POST']);
    assert.deepEqual(api.body.items[0].paths, ['/accounts', '/entries']);
    // Blocked domains: a new policy revision, with the reason.
    await page.getByLabel('Blocked domains, one per line').fill('share.example.net\nPaste.Example.org');
    await page.getByLabel('Why (kept with the change)').fill('No file sharing or paste sites');
    await page.getByRole('button', { name: 'Save the blocked domains' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Saved as policy revision \d+: 2 blocked/ })
      .waitFor();
    assert.deepEqual(
      (await call(server, 'GET', '/api/v1/blocked-domains', { token: tokens.dave })).body.domains,
      ['paste.example.org', 'share.example.net'],
    );
    await page.getByRole('row', { name: /microapp-creators creator/ }).waitFor();
    // A new advisory snapshot, uploaded from the page.
    const osvZip = join(work, 'osv.zip');
    writeFileSync(
      osvZip,
      zipSync({
        'GHSA-console.json': new TextEncoder().encode(
          JSON.stringify({
            id: 'GHSA-console',
            affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.2'] }],
          }),
        ),
      }),
    );
    await page.getByLabel('OSV data (.zip)').setInputFiles(osvZip);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Imported 1 record \(/ })
      .waitFor();
    // Merged into the record the build server imported first: two in all.
    await page.getByText(/2 OSV records, imported by carol@example\.com/).waitFor();
    await page.getByText('No app is exempted: every app is judged by its use.').waitFor();
    await accessible(page, 'the admin page');
    await shot(page, '12-admin');

    // An admin's controls on an app: exempt it from inactivity checks, and graduate it to a team.
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: tokens.dave,
      body: {
        name: 'lunch-vote',
        owner: 'dave@example.com',
        purpose: 'Vote on where the team has lunch',
        dataClasses: ['internal'],
      },
    });
    assert.equal(reg.status, 201, reg.text);
    await page.goto(`${server.url}/apps/lunch-vote`);
    await page.getByLabel('Exempt from inactivity checks, because').fill('Used only at the yearly offsite');
    await page.getByRole('button', { name: 'Exempt' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'lunch-vote is exempt from inactivity checks' })
      .waitFor();
    await page.getByLabel('Graduate to the engineering team').fill('payments-eng');
    await page.getByLabel('Team lead who will own it (e-mail)').fill('dave@example.com');
    await page.getByRole('button', { name: 'Graduate' }).click();
    await page.getByRole('status').filter({ hasText: 'lunch-vote graduated to payments-eng' }).waitFor();
    const lifecycle = await call(server, 'GET', '/api/v1/apps/lunch-vote/lifecycle', { token: tokens.carol });
    assert.equal(lifecycle.body.graduatedTo, 'payments-eng');
    assert.equal(lifecycle.body.exemption?.reason, 'Used only at the yearly offsite');
    await page.goto(`${server.url}/admin`);
    await page
      .getByRole('row', {
        name: /lunch-vote dave@example\.com Used only at the yearly offsite carol@example\.com/,
      })
      .waitFor();
    await page.goto(`${server.url}/apps/lunch-vote`);
    await page.getByRole('heading', { name: 'Policy decisions' }).waitFor();
    await page.getByText('microapp.risk.assessment').first().waitFor();
    await page.getByLabel('E-mail to check').fill('frank@example.com');
    await page.getByRole('button', { name: 'Check access' }).click();
    await page.getByRole('status').filter({ hasText: 'frank@example.com may not use lunch-vote' }).waitFor();
    await accessible(page, 'an admin on an app page');
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });

  test('policy speaks before the reviewers: dave reads carol’s reason for a blocked host in the wizard, and bob sees a host blocked since registration in his inbox', async () => {
    // carol blocked share.example.net and paste.example.org in the test before, with her reason.
    const { context, page, errors } = await signedIn('dave@example.com');
    await page.getByRole('link', { name: 'New app' }).click();
    await page.getByRole('radio', { name: /Form/ }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('textbox', { name: 'What should the app be called?' }).fill('handover-notes');
    await page.getByRole('button', { name: 'Next' }).click();
    await page
      .getByRole('textbox', { name: 'What is it for?' })
      .fill('Collect handover notes between shifts');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('checkbox', { name: /Internal information/ }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    const risk = page.getByRole('complementary', { name: 'Risk so far' });
    await risk.getByText("The organization's policy allows this.").waitFor();
    await page.getByLabel(/Web services it calls/).fill('notes.share.example.net');
    // Said on the question that gave the answer, with who blocked it and why.
    const verdict = page.locator('form').getByTestId('policy-verdict');
    await verdict.getByText("The organization's policy refuses this.").waitFor();
    const said = (await verdict.textContent()) ?? '';
    assert.match(
      said,
      /notes\.share\.example\.net is blocked by your organization \(everything under share\.example\.net\)/,
    );
    assert.match(
      said,
      /carol@example\.com blocked it on \d{4}-\d{2}-\d{2}: “No file sharing or paste sites”/,
    );
    await risk
      .getByText("The organization's policy refuses this: the reasons are beside the question.")
      .waitFor();
    await accessible(page, 'the wizard with a blocked host');
    await shot(page, '10b-new-app-blocked-host');
    // Registering anyway is refused with the same reason, and nothing is registered.
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Register the app' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /No file sharing or paste sites/ })
      .waitFor();
    assert.equal(
      (await call(server, 'GET', '/api/v1/apps/handover-notes', { token: tokens.dave })).status,
      404,
    );
    // Taking the host back clears it.
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByLabel(/Web services it calls/).fill('');
    await risk.getByText("The organization's policy allows this.").waitFor();
    assert.equal(await page.locator('form').getByTestId('policy-verdict').count(), 0);
    // The refused registration is the one failed request the browser logs.
    assert.deepEqual(
      errors.filter((e) => !/status of 403 \(Forbidden\) \(http:\/\/[^)]+\/api\/v1\/apps\)$/.test(e)),
      [],
      'console errors',
    );
    await context.close();

    // A host blocked after an app registered: the reviewer's inbox asks the policy now, as the deploy would.
    const m = {
      name: 'drop-sync',
      owner: 'dave@example.com',
      purpose: 'Copy confidential minutes to the partner drop site',
      dataClasses: ['confidential'],
      audience: { maxUsers: 400 },
      integrations: { egress: ['files.drop.example.com'] },
    };
    const registered = await call(server, 'POST', '/api/v1/apps', { token: tokens.dave, body: m });
    assert.equal(registered.status, 201, registered.text);
    assert.equal(registered.body.app.state, 'pending_review');
    const blocked = (await call(server, 'GET', '/api/v1/blocked-domains', { token: tokens.dave })).body
      .domains;
    const block = (domains: string[], message: string) =>
      call(server, 'PUT', '/api/v1/blocked-domains', { token: tokens.carol, body: { domains, message } });
    assert.equal(
      (await block([...blocked, 'drop.example.com'], 'The drop site is being retired')).status,
      200,
    );
    const bob = await signedIn('bob@example.com');
    await bob.page.getByRole('link', { name: 'Reviews' }).click();
    const review = bob.page.getByRole('article', { name: /drop-sync/ });
    await review.getByText("The organization's policy refuses this.").waitFor();
    assert.match(
      (await review.getByTestId('policy-verdict').textContent()) ?? '',
      /files\.drop\.example\.com is blocked by your organization[\s\S]*“The drop site is being retired”/,
    );
    await accessible(bob.page, 'the reviews inbox with a blocked host');
    assert.deepEqual(bob.errors, [], 'console errors');
    await bob.context.close();
    assert.equal((await block(blocked, 'drop site check done')).status, 200);
  });

  test('frank, outside finance, is not left at a dead end: he asks for access to a finance app, and alice hears of it', async () => {
    const { context, page, errors } = await signedIn('frank@example.com');
    // The rules are for those who keep or apply them: a creator has no Policies page in the menu.
    await page.getByRole('link', { name: 'Catalog' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Policies' }).count(), 0);
    // Where an app's refusal page sends him.
    await page.goto(`${server.url}/apps/team-survey?ask=1`);
    await page.getByRole('heading', { level: 1, name: 'No app called team-survey' }).waitFor();
    const reason = page.getByRole('textbox', { name: 'Why do you need team-survey?' });
    assert.equal(
      await page.evaluate<string>('document.activeElement?.id ?? ""'),
      'reason',
      'the form has the focus',
    );
    await reason.fill('I run the marketing training budget and need the answers');
    await accessible(page, 'asking for access');
    await page.getByRole('button', { name: 'Ask the owner' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'its owner has been asked, with your reason' })
      .waitFor();
    const told = (
      await call(server, 'GET', '/api/v1/notifications', { token: tokens.alice })
    ).body.items.filter((n: { kind: string }) => n.kind === 'access_requested');
    assert.equal(told.length, 1);
    assert.match(told[0].body, /I run the marketing training budget/);
    // The app's own 404 (the page's question) is the one failed request the browser logs.
    assert.deepEqual(
      errors.filter(
        (e) => !/status of 404 \(Not Found\) \(http:\/\/[^)]+\/api\/v1\/apps\/team-survey\)$/.test(e),
      ),
      [],
      'console errors',
    );
    await context.close();
  });

  test('alice sets a secret she never sees again, decommissions her app and restores it', async () => {
    const { context, page, errors } = await signedIn('alice@example.com');
    await page.goto(`${server.url}/apps/bank-reconciliation`);
    const secret = page.getByLabel(/^LEDGER_READ_TOKEN/);
    await secret.fill('s3cret-ledger-token-canary');
    await page.getByRole('button', { name: 'Save LEDGER_READ_TOKEN' }).click();
    await page.getByRole('status').filter({ hasText: 'LEDGER_READ_TOKEN is set (version 1)' }).waitFor();
    assert.equal(await secret.inputValue(), '');
    assert.doesNotMatch(await page.content(), /s3cret-ledger-token-canary/);
    await accessible(page, 'the manage section');
    // The access policy's answer, for herself (reviewers, admins and auditors may ask for anyone).
    await page.getByRole('button', { name: 'Check my access' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'alice@example.com may use bank-reconciliation' })
      .waitFor();
    assert.equal(await page.getByLabel('E-mail to check').count(), 0, 'a creator checks only herself');

    // Try a version in preview (its own host and data, for her and reviewers), then open it.
    await page.goto(`${server.url}/apps/team-survey`);
    await page.locator('summary').filter({ hasText: '0.1.0 by alice' }).click();
    await page.getByRole('button', { name: 'Check the signatures of 0.1.0' }).click();
    const verified = page.getByTestId('verification-0.1.0');
    await verified.getByText('artifact signature').waitFor();
    assert.doesNotMatch((await verified.textContent()) ?? '', /Failed/);
    await page.getByText("No third-party components: nothing but the app's own code.").waitFor();
    await page.getByRole('button', { name: 'Try 0.1.0 in preview' }).click();
    await page.getByRole('status').filter({ hasText: '0.1.0 is running in preview' }).waitFor();
    await page.getByRole('row', { name: /0\.1\.0 preview running alice@example\.com/ }).waitFor();
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page
      .getByTestId('logs-preview')
      .getByText(/listening on/)
      .waitFor();
    await accessible(page, 'versions and deployments');
    await shot(page, '13-versions');
    await page.getByRole('link', { name: '0.1.0' }).last().click();
    await page.getByRole('heading', { name: 'team-survey' }).waitFor();
    assert.equal(new URL(page.url()).hostname, 'team-survey--preview.apps.localhost');
    await page.goto(`${server.url}/apps/team-survey`);
    await page.getByRole('button', { name: 'Decommission…' }).click();
    await page.getByLabel('Why is team-survey retired?').fill('The survey closed at the end of the quarter');
    await page.getByRole('button', { name: 'Decommission team-survey' }).click();
    await page.getByRole('status').filter({ hasText: 'team-survey is decommissioned' }).waitFor();
    await page.getByRole('button', { name: 'Restore team-survey' }).click();
    await page.getByRole('status').filter({ hasText: 'team-survey is restored' }).waitFor();
    const lifecycle = await call(server, 'GET', '/api/v1/apps/team-survey/lifecycle', {
      token: tokens.alice,
    });
    assert.equal(lifecycle.body.stage, 'active');
    const events = await call(server, 'GET', '/api/v1/audit/events?app=team-survey&action=lifecycle.', {
      token: tokens.ivan,
    });
    const actions = events.body.items.map((e: { action: string }) => e.action);
    assert.ok(
      actions.includes('lifecycle.decommissioned') && actions.includes('lifecycle.restored'),
      actions.join(),
    );
    await shot(page, '14-manage');
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });
  test('a notification leads to the part of the console that answers it: alice opens an idle warning and renews from there', async () => {
    // Nobody uses team-survey for 61 days: the lifecycle warns its owner.
    server.internals.clock.advance(61 * 24 * 3600 * 1000);
    await server.internals.jobs.runDue();
    const { context, page, errors } = await signedIn('alice@example.com');
    await page.getByRole('link', { name: /^Notifications, \d+ unread$/ }).click();
    const warning = page.getByRole('article', { name: /^team-survey has not been used for 61 days/ });
    await warning.waitFor();
    // Its action is the console's own page, not a command to type.
    assert.doesNotMatch((await warning.textContent()) ?? '', /microapp renew/);
    await accessible(page, 'the notifications');
    await warning.getByRole('button', { name: 'Open' }).click();
    await page.waitForURL(`${server.url}/apps/team-survey#renew`);
    const why = page.getByLabel('Still needed? Say why, to renew it');
    await page.waitForFunction(() => {
      const g = globalThis as unknown as { document: { activeElement: { id?: string } | null } };
      return g.document.activeElement?.id === 'purpose';
    });
    await why.fill('The survey runs again for the next quarter');
    await page.getByRole('button', { name: 'Renew', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Renewal of team-survey requested' }).waitFor();
    const lifecycle = await call(server, 'GET', '/api/v1/apps/team-survey/lifecycle', {
      token: tokens.alice,
    });
    assert.equal(lifecycle.body.stage, 'active', JSON.stringify(lifecycle.body));
    assert.deepEqual(errors, [], 'console errors');
    await context.close();
  });
  test('what a notification asks of others is on the app page too: bob approves a high-tier renewal, carol gives the app a new owner', async () => {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: tokens.alice,
      body: {
        name: 'payroll-check',
        owner: 'alice@example.com',
        purpose: 'Check the payroll run against the HR records before it is paid',
        dataClasses: ['internal', 'financial', 'pii'],
        audience: { department: 'finance', maxUsers: 10 },
      },
    });
    assert.equal(reg.body.app?.tier, 'high', reg.text);
    for (const who of [tokens.bob, tokens.erin])
      await call(server, 'POST', '/api/v1/apps/payroll-check/reviews', {
        token: who,
        body: { decision: 'approve' },
      });
    const asked = await call(server, 'POST', '/api/v1/apps/payroll-check/renewal', {
      token: tokens.alice,
      body: { purpose: 'Payroll checks continue this year' },
    });
    assert.equal(asked.body.status, 'pending_review', asked.text);
    const told = (await call(server, 'GET', '/api/v1/notifications', { token: tokens.bob })).body.items.find(
      (n: { kind: string; app: string }) => n.kind === 'renewal_review' && n.app === 'payroll-check',
    );
    assert.equal(told.action, `${server.url}/apps/payroll-check#renew-review`);

    // Bob follows it: the app page opens at the request, with its approval.
    const bob = await signedIn('bob@example.com');
    await bob.page.goto(told.action);
    await bob.page
      .getByText('alice@example.com asked to renew payroll-check: “Payroll checks continue this year”.')
      .waitFor();
    await bob.page.getByRole('button', { name: 'Approve the renewal' }).click();
    await bob.page
      .getByRole('status')
      .filter({ hasText: 'The renewal of payroll-check is approved.' })
      .waitFor();
    const lifecycle = await call(server, 'GET', '/api/v1/apps/payroll-check/lifecycle', {
      token: tokens.alice,
    });
    assert.equal(lifecycle.body.renewalRequested, null);
    assert.deepEqual(bob.errors, [], 'console errors');
    await bob.context.close();

    // Alice, its owner, is not offered the approval of her own renewal.
    const again = await call(server, 'POST', '/api/v1/apps/payroll-check/renewal', {
      token: tokens.alice,
      body: { purpose: 'Payroll checks continue next year too' },
    });
    assert.equal(again.body.status, 'pending_review', again.text);
    const alice = await signedIn('alice@example.com');
    await alice.page.goto(`${server.url}/apps/payroll-check#renew-review`);
    await alice.page.getByText(/A reviewer other than its owner approves it\./).waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Approve the renewal' }).count(), 0);
    await alice.context.close();

    // Carol, an admin, gives it a new owner from the same page.
    const carol = await signedIn('carol@example.com');
    await carol.page.goto(`${server.url}/apps/payroll-check#owner`);
    await carol.page.getByLabel('Give it a new owner (e-mail)').fill('dave@example.com');
    await carol.page.getByRole('button', { name: 'Change the owner' }).click();
    await carol.page
      .getByRole('status')
      .filter({ hasText: 'dave@example.com owns payroll-check now' })
      .waitFor();
    await accessible(carol.page, 'the app page with its administration');
    const moved = await call(server, 'GET', '/api/v1/apps/payroll-check', { token: tokens.carol });
    assert.equal(moved.body.owner, 'dave@example.com');
    assert.deepEqual(carol.errors, [], 'console errors');
    await carol.context.close();
  });
});
