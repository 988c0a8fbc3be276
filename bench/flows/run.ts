// Two everyday flows in the console, in Debian's chromium, counted and timed as a person would do them:
//   1. an expense form: from "New app" to its live page taking an answer (the wizard, Deploy, then the app);
//   2. answering a request for changes: from the app page with the reviewer's comment to the answers sent.
// Counted: each click and each field filled (what a person does), not keystrokes. Timed: from the first
// action to the flow's end, so the pipeline's own time is inside the first. Beside each, the same work
// through the API (the baseline): what the console adds to it is the difference.
//   npx tsx bench/flows/run.ts [--quick] [--runs 1]
import type { Locator, Page } from 'playwright-core';
import { startConsoleRig } from '../../packages/console/test/console-harness.ts';
import { call, viaGateway } from '../../packages/server/test/harness.ts';
import { BenchFailure, benchArgs, median, runBench } from '../lib/bench.ts';

const { number, command } = benchArgs(
  import.meta.filename,
  'Clicks, entries and time of two console flows, beside the same work through the API.',
  { runs: { default: '3', quick: '1', help: 'times each flow is done (each with a new app)' } },
);
const runs = number('runs');

/** What a person does on a page: each click and each field filled counts one. */
function person(page: Page) {
  let actions = 0;
  return {
    get actions() {
      return actions;
    },
    async click(l: Locator) {
      actions++;
      await l.click();
    },
    async fill(l: Locator, text: string) {
      actions++;
      await l.fill(text);
    },
    page,
  };
}

async function until<T>(what: string, probe: () => Promise<T | null>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got !== null) return got;
    if (Date.now() > end) throw new BenchFailure(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

await runBench(async () => {
  const rig = await startConsoleRig();
  const { server, tokens } = rig;
  const form = { expense: [] as number[], api: [] as number[], actions: 0 };
  const review = { ui: [] as number[], api: [] as number[], actions: 0 };
  try {
    for (let run = 0; run < runs; run++) {
      // 1. The expense form, as alice does it.
      const name = `expense-claims-${run}`;
      const { context, page } = await rig.signedIn('alice@example.com');
      const p = person(page);
      const started = Date.now();
      await p.click(page.getByRole('link', { name: 'New app' }));
      await p.click(page.getByRole('radio', { name: /Form/ }));
      await p.click(page.getByRole('button', { name: 'Next' }));
      await p.fill(page.getByRole('textbox', { name: 'What should the app be called?' }), name);
      await p.click(page.getByRole('button', { name: 'Next' }));
      await p.fill(
        page.getByRole('textbox', { name: 'What is it for?' }),
        'Collect travel expense claims for the monthly close',
      );
      await p.click(page.getByRole('button', { name: 'Next' }));
      await p.click(page.getByRole('button', { name: 'Next' })); // who uses it: her department, prefilled
      // (the Form template declares the internal information its code keeps: already ticked)
      await page
        .getByRole('checkbox', { name: /Internal information/ })
        .isChecked()
        .then((ticked) => {
          if (!ticked) throw new BenchFailure('the wizard did not offer the template’s data class');
        });
      await p.click(page.getByRole('button', { name: 'Next' }));
      await p.click(page.getByRole('button', { name: 'Next' })); // connections: none
      await p.click(page.getByRole('button', { name: 'Next' })); // how long: the tier's default
      await p.click(page.getByRole('button', { name: 'Register the app' }));
      await page.getByRole('heading', { level: 1, name }).waitFor();
      await p.click(page.getByRole('button', { name: `Deploy ${name}` }));
      await page
        .getByTestId('build-progress')
        .getByText(/Done: version \S+ is running/)
        .waitFor({ timeout: 180_000 });
      await p.click(page.getByRole('link', { name: `Open ${name}` }));
      await page.getByRole('heading', { name }).waitFor();
      for (const field of await page.locator('form textarea').all())
        await p.fill(field, 'Taxi to the airport');
      await p.click(page.getByRole('button', { name: 'Send' }));
      await page.getByText('Thank you, your answer is saved.').waitFor();
      form.expense.push(Date.now() - started);
      form.actions = p.actions;
      await context.close();

      // The same work through the API: register, build and deploy from the template, answer once.
      const apiName = `expense-api-${run}`;
      const apiStarted = Date.now();
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: tokens.alice,
        body: {
          name: apiName,
          owner: 'alice@example.com',
          purpose: 'Collect travel expense claims for the monthly close',
          dataClasses: ['internal'],
          audience: { department: 'finance' },
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.1.0' },
        },
      });
      if (reg.status !== 201) throw new BenchFailure(`registration: ${reg.status} ${reg.text}`);
      const build = await call(server, 'POST', `/api/v1/apps/${apiName}/builds`, {
        token: tokens.alice,
        body: { deploy: true },
      });
      if (build.status !== 202) throw new BenchFailure(`build: ${build.status} ${build.text}`);
      await until('the API build to go live', async () => {
        const b = await call(server, 'GET', `/api/v1/apps/${apiName}/builds/${build.body.id}`, {
          token: tokens.alice,
        });
        if (b.body.state === 'failed') throw new BenchFailure(`the API build failed: ${b.text}`);
        return b.body.state === 'passed' && b.body.url ? true : null;
      });
      const page0 = await viaGateway(server, apiName, '/', { authorization: `Bearer ${tokens.alice}` });
      const fields = [...page0.body.matchAll(/<textarea[^>]*\sname="([^"]+)"/g)].map((m) => m[1]!);
      const sent = await viaGateway(
        server,
        apiName,
        '/submit',
        { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/x-www-form-urlencoded' },
        {
          method: 'POST',
          body: new URLSearchParams(
            fields.map((f): [string, string] => [f, 'Taxi to the airport']),
          ).toString(),
        },
      );
      if (sent.status !== 200) throw new BenchFailure(`the API answer: ${sent.status} ${sent.body}`);
      form.api.push(Date.now() - apiStarted);

      // 2. A request for changes, answered from the app page.
      const asked = `trip-requests-${run}`;
      const manifest = {
        name: asked,
        owner: 'alice@example.com',
        purpose: 'Ask for approval before booking a business trip',
        dataClasses: ['internal', 'confidential'],
        audience: { department: 'finance', maxUsers: 300 },
      };
      if (
        (await call(server, 'POST', '/api/v1/apps', { token: tokens.alice, body: manifest })).status !== 201
      )
        throw new BenchFailure('the medium-tier app did not register');
      const changes = await call(server, 'POST', `/api/v1/apps/${asked}/reviews`, {
        token: tokens.bob,
        body: { decision: 'request_changes', comment: 'Limit it to the travel team, 40 people at most' },
      });
      if (changes.status !== 200) throw new BenchFailure(`request for changes: ${changes.text}`);
      const owner = await rig.signedIn('alice@example.com');
      await owner.page.goto(`${server.url}/apps/${asked}`);
      await owner.page.getByTestId('approval-standing').waitFor();
      const q = person(owner.page);
      const answering = Date.now();
      await q.click(owner.page.getByRole('link', { name: 'Change the answers' }));
      await q.fill(
        owner.page.getByRole('textbox', { name: 'What is it for?' }),
        'Ask for approval before the travel desk books a business trip',
      );
      await q.click(owner.page.getByRole('button', { name: 'Next' }));
      await q.fill(owner.page.getByLabel('About how many people, at most?'), '40');
      for (let i = 0; i < 4; i++) await q.click(owner.page.getByRole('button', { name: 'Next' }));
      await q.click(owner.page.getByRole('button', { name: 'Send the changes' }));
      await owner.page.getByRole('status').filter({ hasText: 'Changes sent (revision 2)' }).waitFor();
      review.ui.push(Date.now() - answering);
      review.actions = q.actions;
      await owner.context.close();
      // Through the API: the changed manifest, registered again.
      const apiAnswering = Date.now();
      const again = await call(server, 'POST', '/api/v1/apps', {
        token: tokens.alice,
        body: {
          ...manifest,
          purpose: 'Ask for approval before the travel desk books a business trip',
          audience: { department: 'finance', maxUsers: 40 },
        },
      });
      if (again.status !== 200) throw new BenchFailure(`re-registration: ${again.status} ${again.text}`);
      review.api.push(Date.now() - apiAnswering);
    }
  } finally {
    await rig.stop();
  }
  const s = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
  console.log(`node ${process.version}; ${runs} run(s) of each flow, medians; chromium headless, 1280x900`);
  console.log(`reproduce with: ${command}\n`);
  console.log(
    `  expense form, New app to an answer on its live page   ${form.actions} clicks and entries   ${s(median(form.expense))}   the API doing the same ${s(median(form.api))}   ratio ${(median(form.expense) / median(form.api)).toFixed(2)}x`,
  );
  console.log(
    `  a request for changes, answered from the app page     ${review.actions} clicks and entries   ${s(median(review.ui))}   the API doing the same ${s(median(review.api))}   ratio ${(median(review.ui) / median(review.api)).toFixed(2)}x`,
  );
});
