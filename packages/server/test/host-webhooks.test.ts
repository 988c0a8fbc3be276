import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { parseDelivery, verifyDelivery } from '../src/modules/repos/host-webhooks.ts';

const secret = 'whsec-0123456789-abcdefghij';
const head = 'a'.repeat(40);

/**
 * What the platform takes from a git host's webhook, from GitHub's and GitLab's documented payloads
 * (pull_request; Merge Request Hook): only a delivery carrying the shared secret, only pull (merge)
 * request events, and only what such an event must hold. Both hosts' flows run end to end against
 * stand-ins in repos-hosted.e2e.test.ts.
 */
describe('git host webhooks', () => {
  const github = {
    action: 'synchronize',
    number: 7,
    pull_request: {
      head: { ref: 'cost-centre', sha: head },
      base: { ref: 'main' },
      title: 'Ask for the cost centre',
      html_url: 'https://github.com/acme-apps/expense-claims/pull/7',
      merged: false,
    },
    repository: { full_name: 'acme-apps/expense-claims' },
    sender: { login: 'octocat' },
  };
  const gitlab = {
    object_kind: 'merge_request',
    user: { username: 'jdoe' },
    project: { id: 42, path_with_namespace: 'apps/expense-claims' },
    object_attributes: {
      iid: 3,
      action: 'update',
      source_branch: 'cost-centre',
      target_branch: 'main',
      last_commit: { id: head },
      title: 'Ask for the cost centre',
      url: 'https://gitlab.example.com/apps/expense-claims/-/merge_requests/3',
    },
  };

  test('GitHub: the HMAC of the exact bytes, or nothing', () => {
    const body = Buffer.from(JSON.stringify(github));
    const sign = (b: Buffer, key = secret) => `sha256=${createHmac('sha256', key).update(b).digest('hex')}`;
    assert.equal(verifyDelivery('github', secret, { 'x-hub-signature-256': sign(body) }, body), true);
    for (const signature of [
      undefined,
      '',
      sign(body, 'another-secret-0123456789'),
      sign(Buffer.from(`${body} `)),
      sign(body).toUpperCase(),
      sign(body).slice(0, -1),
    ])
      assert.equal(
        verifyDelivery(
          'github',
          secret,
          signature === undefined ? {} : { 'x-hub-signature-256': signature },
          body,
        ),
        false,
        String(signature),
      );
    // GitLab's header means nothing to GitHub's check.
    assert.equal(verifyDelivery('github', secret, { 'x-gitlab-token': secret }, body), false);
  });

  test('GitLab: its token, compared whole', () => {
    const body = Buffer.from(JSON.stringify(gitlab));
    assert.equal(verifyDelivery('gitlab', secret, { 'x-gitlab-token': secret }, body), true);
    for (const token of [undefined, '', secret.slice(0, -1), `${secret}x`, secret.toUpperCase()])
      assert.equal(
        verifyDelivery('gitlab', secret, token === undefined ? {} : { 'x-gitlab-token': token }, body),
        false,
      );
  });

  test('pull and merge request events read the same, whichever host sent them', () => {
    const fromGitHub = parseDelivery('github', { 'x-github-event': 'pull_request' }, github);
    const fromGitLab = parseDelivery('gitlab', { 'x-gitlab-event': 'Merge Request Hook' }, gitlab);
    assert.deepEqual(
      { ...fromGitHub, repoId: null, number: null, url: null, sender: null },
      { ...fromGitLab, repoId: null, number: null, url: null, sender: null },
    );
    assert.equal(fromGitHub?.action, 'updated');
    assert.equal(fromGitHub?.repoId, 'acme-apps/expense-claims');
    assert.equal(fromGitLab?.repoId, '42');
    assert.equal(fromGitLab?.number, 3);
    const merged = parseDelivery(
      'github',
      { 'x-github-event': 'pull_request' },
      { ...github, action: 'closed', pull_request: { ...github.pull_request, merged: true } },
    );
    assert.equal(merged?.action, 'merged');
    const mergedLab = parseDelivery(
      'gitlab',
      { 'x-gitlab-event': 'Merge Request Hook' },
      { ...gitlab, object_attributes: { ...gitlab.object_attributes, action: 'merge' } },
    );
    assert.equal(mergedLab?.action, 'merged');
  });

  test('other events, and payloads without what an event must hold, are not acted on', () => {
    assert.equal(parseDelivery('github', { 'x-github-event': 'push' }, github), null);
    assert.equal(parseDelivery('github', { 'x-github-event': 'ping' }, { zen: 'hi' }), null);
    assert.equal(parseDelivery('gitlab', { 'x-gitlab-event': 'Push Hook' }, gitlab), null);
    const broken = (patch: Record<string, unknown>) =>
      parseDelivery(
        'github',
        { 'x-github-event': 'pull_request' },
        {
          ...github,
          pull_request: { ...github.pull_request, ...patch },
        },
      );
    assert.equal(broken({ head: { ref: 'cost-centre', sha: 'not-a-sha' } }), null);
    assert.equal(broken({ head: { ref: '../../etc', sha: head } }), null);
    assert.equal(broken({ head: { ref: 'a b', sha: head } }), null);
    assert.equal(broken({ base: {} }), null);
    assert.equal(
      parseDelivery('github', { 'x-github-event': 'pull_request' }, { ...github, action: 'labeled' }),
      null,
    );
    assert.equal(parseDelivery('github', { 'x-github-event': 'pull_request' }, null), null);
    assert.equal(parseDelivery('github', { 'x-github-event': 'pull_request' }, 'text'), null);
  });

  test('MICROAPP_GIT_HOST and its settings: taken when whole, refused with every problem named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'microapp-githost-'));
    try {
      const token = join(dir, 'token');
      const hook = join(dir, 'hook');
      writeFileSync(token, 'ghp_0123456789abcdef\n', { mode: 0o600 });
      writeFileSync(hook, `${secret}\n`, { mode: 0o600 });
      assert.equal(loadConfig({ dev: true }, {}).gitHost, null, 'the platform’s own git server by default');
      const env = {
        MICROAPP_GIT_HOST: 'github',
        MICROAPP_GIT_HOST_OWNER: 'acme-apps',
        MICROAPP_GIT_HOST_TEMPLATES: 'form=acme/microapp-template-form, dashboard=acme/dash',
        MICROAPP_GIT_HOST_TOKEN_FILE: token,
        MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: hook,
      };
      const taken = loadConfig({ dev: true }, env).gitHost;
      assert.equal(taken?.kind, 'github');
      assert.equal(taken?.settings.apiUrl, 'https://api.github.com');
      assert.deepEqual(taken?.kind === 'github' && taken.settings.templates, {
        form: 'acme/microapp-template-form',
        dashboard: 'acme/dash',
      });
      assert.equal(taken?.webhookSecret, secret);
      const refused = (more: Record<string, string>, ...want: RegExp[]) =>
        assert.throws(
          () => loadConfig({ dev: true }, { ...env, ...more }),
          (e: unknown) => e instanceof ConfigError && want.every((w) => w.test(e.message)),
        );
      refused({ MICROAPP_GIT_HOST: 'bitbucket' }, /MICROAPP_GIT_HOST must be platform, github or gitlab/);
      refused(
        { MICROAPP_GIT_HOST_API_URL: 'http://github.internal/api/v3' },
        /must use https for a host on another machine/,
      );
      refused({ MICROAPP_GIT_HOST_TEMPLATES: 'form' }, /"form" is not TEMPLATE=OWNER\/REPOSITORY/);
      refused(
        { MICROAPP_GIT_HOST: 'gitlab' },
        /MICROAPP_GIT_HOST_API_URL must be the GitLab API/,
        /id \(a number\)/,
      );
      refused({ MICROAPP_GIT_HOST_TOKEN_FILE: join(dir, 'missing') }, /MICROAPP_GIT_HOST_TOKEN_FILE/);
      writeFileSync(join(dir, 'short'), 'too-short', { mode: 0o600 });
      refused({ MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: join(dir, 'short') }, /at least 20 characters/);
      chmodSync(token, 0o644);
      refused({}, /MICROAPP_GIT_HOST_TOKEN_FILE/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
