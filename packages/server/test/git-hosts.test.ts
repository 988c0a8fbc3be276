import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { type GitHost, GitHostError } from '../src/modules/repos/hosts/git-host.ts';
import { gitHubHost } from '../src/modules/repos/hosts/github.ts';
import { gitLabHost } from '../src/modules/repos/hosts/gitlab.ts';
import { startContractServer } from './contract-server.ts';

/**
 * The GitHub and GitLab clients against recorded contracts of the hosts' public REST documentation
 * (test/contracts/*.json): every request the client makes must be one the contract describes, with its
 * headers and body fields, and each recorded answer must read back as the platform expects. Verified by
 * contract only: no test here talks to github.com or a GitLab instance.
 */
const url = 'https://microapp.example.com/apps/expense-claims/changes/1';

for (const host of ['github', 'gitlab'] as const) {
  describe(`${host} by its recorded contract`, () => {
    let contract: Awaited<ReturnType<typeof startContractServer>>;
    let client: GitHost;
    before(async () => {
      contract = await startContractServer(`${host}.json`);
      client =
        host === 'github'
          ? gitHubHost({
              apiUrl: contract.url,
              owner: 'acme-apps',
              templates: { form: 'acme/microapp-template-form' },
              token: 'ghp_contract',
            })
          : gitLabHost({
              apiUrl: contract.url,
              namespaceId: 42,
              templates: { form: 7 },
              token: 'glpat-contract',
            });
    });
    after(async () => {
      await contract.close();
    });

    test('a repository from the template, a change, its check, its merge and its files', async () => {
      const repo = await client.createRepository({
        name: 'expense-claims',
        description: 'Collect expense claims for the monthly close',
        template: 'form',
      });
      assert.equal(repo.defaultBranch, 'main');
      assert.match(repo.cloneUrl, /\/acme-apps\/expense-claims\.git$/);
      const opened = await client.openChange(repo, {
        branch: 'cost-centre',
        title: 'Ask for the cost centre',
        body: 'Opened by microapp',
      });
      assert.equal(opened.state, 'open');
      assert.match(opened.head, /^[0-9a-f]{40}$/);
      await client.reportCheck(repo, {
        commit: opened.head,
        state: host === 'github' ? 'passed' : 'failed',
        description: 'manifest, install, test, sbom, scan, licenses, policy',
        url,
      });
      const merged = await client.merge(
        repo,
        { number: opened.number, head: opened.head },
        'Merge change #1',
      );
      assert.match(merged.commit, /^[0-9a-f]{40}$/);
      assert.notEqual(merged.commit, opened.head, 'a merge commit');
      assert.equal((await client.getChange(repo, opened.number)).state, 'merged');
      const archive = await client.archive(repo, opened.head);
      // Both hosts pack a commit under one top-level folder (`NAME-SHORTSHA/`), which a build strips.
      assert.match(gunzipSync(archive).toString('latin1'), /expense-claims-6dcb09b\/README\.md/);
      assert.deepEqual(contract.violations, []);
    });

    test('a change the host cannot merge, or whose head moved, is refused with the reason', async () => {
      const repo = {
        id: host === 'github' ? 'acme-apps/expense-claims' : '3',
        cloneUrl: '',
        webUrl: '',
        defaultBranch: 'main',
      };
      const base = host === 'github' ? 1348 : 13;
      await assert.rejects(
        client.merge(repo, { number: base, head: '1'.repeat(40) }, 'Merge'),
        (e: unknown) =>
          e instanceof GitHostError && e.kind === 'not_mergeable' && /cannot merge/.test(e.message),
      );
      await assert.rejects(
        client.merge(repo, { number: base + 1, head: '2'.repeat(40) }, 'Merge'),
        (e: unknown) =>
          e instanceof GitHostError && e.kind === 'head_moved' && /check it again/.test(e.message),
      );
      assert.deepEqual(contract.violations, []);
    });

    test('a wrong token is said to be the token, and the contract catches a client that strays', async () => {
      const wrong =
        host === 'github'
          ? gitHubHost({ apiUrl: contract.url, owner: 'acme-apps', templates: {}, token: 'ghp_wrong' })
          : gitLabHost({ apiUrl: contract.url, namespaceId: 42, templates: {}, token: 'glpat-wrong' });
      const repo = {
        id: host === 'github' ? 'acme-apps/expense-claims' : '3',
        cloneUrl: '',
        webUrl: '',
        defaultBranch: 'main',
      };
      await assert.rejects(wrong.getChange(repo, host === 'github' ? 1347 : 12), GitHostError);
      assert.equal(contract.violations.length, 1);
      assert.match(contract.violations[0]!, /header (authorization|private-token)/);
      contract.violations.length = 0;
      await assert.rejects(
        wrong.createRepository({ name: 'x', description: 'x', template: 'tracker' }),
        /no (GitHub template repository|GitLab template project) is set for the tracker template/,
      );
    });

    test('every recorded contract was exercised', () => {
      const spec = JSON.parse(
        readFileSync(join(import.meta.dirname, 'contracts', `${host}.json`), 'utf8'),
      ) as {
        contracts: { name: string }[];
      };
      for (const c of spec.contracts) assert.ok(contract.served.includes(c.name), `not exercised: ${c.name}`);
    });
  });
}
