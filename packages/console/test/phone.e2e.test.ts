// The console on a phone (390 px wide, as an iPhone 12 to 15): catalog rows whose names and purposes wrap
// are measured, not clipped into a fixed 72 px and drawn over each other; the app page does not run off
// the side of the screen; checkboxes are big enough for a thumb. Element boxes are checked, not guessed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, lunchPoll } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

const phone = { width: 390, height: 844 };
const longPurpose =
  'Collects the monthly travel and expense claims of the treasury team, with receipts, cost centres and the approving manager, so that finance can reconcile them before the books close';

/** How many pixels the page is wider than the screen (0 or less when it fits). */
const widerThanScreen = 'document.documentElement.scrollWidth - document.documentElement.clientWidth';

type Box = {
  top: number;
  bottom: number;
  left: number;
  right: number;
  scrollHeight: number;
  clientHeight: number;
};

describe('the console at phone width', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig();
    for (let i = 0; i < 6; i++) {
      const registered = await call(rig.server, 'POST', '/api/v1/apps', {
        token: rig.tokens.alice,
        body: lunchPoll({
          name: `treasury-expense-claims-quarterly-${i}`,
          owner: 'alice@example.com',
          purpose: longPurpose,
          audience: { department: 'finance' },
          // A host name has no place to break: on a phone it must wrap, not widen the page.
          integrations: {
            egress: ['reconciliation-settlement-gateway.treasury-services.eu-central-1.example.com'],
          },
        }),
      });
      assert.equal(registered.status, 201, registered.text);
    }
  });
  after(() => rig?.stop());

  test('catalog rows that wrap are as tall as their content and never overlap', async () => {
    const { context, page, errors } = await rig.signedIn('alice@example.com');
    await page.setViewportSize(phone);
    await page.goto(`${rig.server.url}/?q=treasury-expense`);
    await page.getByRole('link', { name: 'treasury-expense-claims-quarterly-5' }).waitFor();
    // (Run in the page: the test's own TypeScript has no DOM types, so the page code is given as text.)
    const boxes = await page.evaluate<Box[]>(`[...document.querySelectorAll('li.catalog-row')].map((row) => {
      const r = row.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, scrollHeight: row.scrollHeight, clientHeight: row.clientHeight };
    })`);
    assert.equal(boxes.length, 6, 'every app has a row');
    boxes.sort((a, b) => a.top - b.top);
    for (const [i, box] of boxes.entries()) {
      assert.ok(
        box.scrollHeight <= box.clientHeight + 1,
        `row ${i} clips its content (${box.scrollHeight}px in ${box.clientHeight}px)`,
      );
      assert.ok(box.bottom - box.top > 72, `row ${i} wraps on a phone, so it is taller than a desktop row`);
      const next = boxes[i + 1];
      if (next)
        assert.ok(
          box.bottom <= next.top + 0.5,
          `row ${i} (bottom ${box.bottom}) overlaps row ${i + 1} (top ${next.top})`,
        );
    }
    const overflow = await page.evaluate<number>(widerThanScreen);
    assert.ok(overflow <= 0, `the catalog is ${overflow}px wider than the phone`);
    await rig.accessible(page, 'the catalog at phone width');
    await rig.shot(page, '30-catalog-phone-rows');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the app page fits the width of the phone', async () => {
    const { context, page, errors } = await rig.signedIn('alice@example.com');
    await page.setViewportSize(phone);
    await page.goto(`${rig.server.url}/apps/treasury-expense-claims-quarterly-0`);
    await page.getByRole('heading', { level: 1, name: 'treasury-expense-claims-quarterly-0' }).waitFor();
    const wide = await page.evaluate<string[]>(`(() => {
      const limit = document.documentElement.clientWidth;
      return [...document.querySelectorAll('main *')]
        .filter((el) => el.getBoundingClientRect().right > limit + 1 && !el.closest('.table-scroll, pre'))
        .slice(0, 5)
        .map((el) => el.tagName.toLowerCase() + '.' + el.className + ': ' + Math.round(el.getBoundingClientRect().right) + 'px');
    })()`);
    assert.deepEqual(wide, [], 'elements reaching past the right edge of a 390 px screen');
    const overflow = await page.evaluate<number>(widerThanScreen);
    assert.ok(overflow <= 0, `the app page is ${overflow}px wider than the phone`);
    await rig.shot(page, '31-app-page-phone');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('checkboxes in the new-app wizard are at least 24 px square', async () => {
    const { context, page, errors } = await rig.signedIn('alice@example.com');
    await page.setViewportSize(phone);
    await page.goto(`${rig.server.url}/new`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    const boxes = await page.evaluate<{ name: string; width: number; height: number }[]>(
      `[...document.querySelectorAll('input[type="checkbox"], input[type="radio"]')]
        .filter((i) => i.offsetParent !== null)
        .map((i) => { const r = i.getBoundingClientRect(); return { name: i.name || i.id, width: r.width, height: r.height }; })`,
    );
    assert.ok(boxes.length > 0, 'the first step has choices to make');
    for (const b of boxes)
      assert.ok(
        b.width >= 24 && b.height >= 24,
        `${b.name} is ${b.width}x${b.height}px, smaller than a thumb's 24 px`,
      );
    assert.deepEqual(errors, []);
    await context.close();
  });
});
