import { createHash } from 'node:crypto';
import type { AuthorizationRequest } from './agent-oauth.ts';
import { defaultLimits, delegationDays } from './delegation-types.ts';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const scopeWords: Record<string, string> = {
  'apps:read': 'read the apps you can see, their code, status and logs',
  'apps:register': 'register apps you own and change their manifests',
  'apps:build': 'build your apps on the platform, and push changes to a branch of their repositories',
  'apps:deploy': 'deploy your apps to preview',
};

const style = `body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.5rem}ul{padding-left:1.25rem}fieldset{border:1px solid #bbb;border-radius:6px;margin:1rem 0}
button{font:inherit;padding:.6rem 1.2rem;margin-right:.75rem;border-radius:6px;border:1px solid #333;min-height:44px}
button.primary{background:#1d4ed8;color:#fff;border-color:#1d4ed8}.muted{color:#555}
label{display:block;margin:.4rem 0}input[type=checkbox],input[type=radio]{width:1.2rem;height:1.2rem}`;

/**
 * The content security policy of these pages: nothing loads, no script runs, only this page's own style
 * (by its hash) applies, and no other site may frame it (the consent must not be clickjacked).
 */
export const consentPagePolicy = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'; frame-ancestors 'none'`;

const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · microapp</title>
<style>${style}</style></head><body><main>${body}</main></body></html>`;

/** The consent page: who the agent is, what it may do for the person, and what always waits for them. */
export function consentPage(req: AuthorizationRequest, email: string, csrf: string, query: string): string {
  const c = req.client;
  const model = c.model ? esc(c.model) : 'a model it did not name';
  return page(
    `Allow ${c.name}?`,
    `<h1>Allow the agent <strong>${esc(c.name)}</strong> to act for you?</h1>
<p>${esc(c.name)}${c.version ? ` ${esc(c.version)}` : ''}, running on ${model}, asks to work on the platform as
<strong>${esc(email)}</strong>. Everything it does is recorded with its name beside yours.</p>
<h2>It may</h2>
<ul>${req.scopes.map((s) => `<li>${esc(scopeWords[s] ?? s)}</li>`).join('')}
<li>at most ${defaultLimits.registrationsPerDay} registrations and ${defaultLimits.buildsPerDay} builds a day</li></ul>
<h2>It waits for you before it</h2>
<ul><li>adds personal, financial, health or other sensitive data to an app</li>
<li>adds an outside host, a connector or a secret</li><li>works on an app above low risk</li>
<li>deploys to live, or decommissions an app</li>
<li>merges a change it pushed to an app's code</li></ul>
<h2>It never</h2>
<ul><li>approves apps, reads secrets or changes policy</li></ul>
<form method="post" action="/oauth/authorize?${esc(query)}">
<input type="hidden" name="csrf" value="${esc(csrf)}">
<fieldset><legend>How long</legend>
${delegationDays.map((d) => `<label><input type="radio" name="days" value="${d}"${d === 7 ? ' checked' : ''}> ${d === 1 ? '1 day' : `${d} days`}</label>`).join('\n')}
</fieldset>
<label><input type="checkbox" name="live_low" value="on"> Also let it deploy low-risk apps to live (each deploy still waits for you)</label>
<p class="muted">You can revoke this at any time on the Agents page or with <code>microapp agents revoke</code>.</p>
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}

/** A request that cannot be sent back to the agent (unknown client or redirect URI): said here. */
export function errorPage(message: string): string {
  return page('Agent sign-in refused', `<h1>This agent's request was refused</h1><p>${esc(message)}</p>`);
}
