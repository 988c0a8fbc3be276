import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Runs git for a stand-in host, with no configuration of the machine's. */
export const runGit = (cwd: string, args: string[], input?: Buffer, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: cwd,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: 'GitHub',
        GIT_AUTHOR_EMAIL: 'noreply@github.invalid',
        GIT_COMMITTER_NAME: 'GitHub',
        GIT_COMMITTER_EMAIL: 'noreply@github.invalid',
        ...env,
      },
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    // A command that does not read its input may exit before it is written.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });

/**
 * Git's smart HTTP for a stand-in host's repositories under `root`, through `git http-backend` as CGI;
 * the password of HTTP Basic must be `token`, whatever the user name.
 */
export async function serveGit(
  root: string,
  token: string,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  path: string,
) {
  const auth = req.headers.authorization ?? '';
  const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
  if (decoded.slice(decoded.indexOf(':') + 1) !== token) {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' });
    res.end();
    return;
  }
  const [pathInfo, query = ''] = path.split('?');
  const r = await runGit(root, ['http-backend'], body, {
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: pathInfo!,
    QUERY_STRING: query,
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: String(req.headers['content-type'] ?? ''),
    CONTENT_LENGTH: String(body.length),
    REMOTE_USER: 'x-access-token',
    ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
  });
  const split = r.stdout.indexOf('\r\n\r\n');
  const head = r.stdout.subarray(0, split).toString('latin1').split('\r\n');
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of head) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') status = Number.parseInt(value, 10);
    else if (name) headers[name] = value;
  }
  res.writeHead(status, headers);
  res.end(r.stdout.subarray(split + 4));
}
