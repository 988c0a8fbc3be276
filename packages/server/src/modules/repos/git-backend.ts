import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { Principal } from '../identity/principal.ts';
import { gitEnv } from './git.ts';

/** `git http-backend` behind the platform's git routes (git-http.ts): one CGI request at a time. */

/** Writes a request body to `file`, refusing one over the push limit. */
export async function receive(body: NodeJS.ReadableStream, file: string, maxPushBytes: number) {
  let received = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > maxPushBytes)
        done(
          new AppError(
            'payload_too_large',
            `the push is over ${Math.round(maxPushBytes / 1024 / 1024)} MB; push in smaller steps`,
          ),
        );
      else done(null, chunk);
    },
  });
  await pipeline(body, limit, createWriteStream(file, { mode: 0o600 }));
}

export type Held = { code: number | null; status: number; headers: Record<string, string>; body: Buffer[] };

/**
 * Runs `git http-backend` as CGI for one request, streaming both ways; with `hold`, git's answer is kept
 * (and returned, null when an error was already sent) for the caller to send.
 */
export function backend(
  deps: { dir: string; maxPushBytes: number },
  request: FastifyRequest,
  reply: FastifyReply,
  principal: Principal,
  repositoryId: string,
  path: string,
  query: string,
): Promise<FastifyReply>;
export function backend(
  deps: { dir: string; maxPushBytes: number },
  request: FastifyRequest,
  reply: FastifyReply,
  principal: Principal,
  repositoryId: string,
  path: string,
  query: string,
  hold: true,
): Promise<Held | null>;
export function backend(
  deps: { dir: string; maxPushBytes: number },
  request: FastifyRequest,
  reply: FastifyReply,
  principal: Principal,
  repositoryId: string,
  path: string,
  query: string,
  hold = false,
): Promise<FastifyReply | Held | null> {
  const headers = request.headers;
  const child = spawn('git', ['http-backend'], {
    env: gitEnv({
      GIT_PROJECT_ROOT: deps.dir,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repositoryId}.git/${path}`,
      REQUEST_METHOD: request.method,
      QUERY_STRING: query,
      CONTENT_TYPE: String(headers['content-type'] ?? ''),
      REMOTE_USER: principal.email,
      REMOTE_ADDR: request.ip,
      ...(headers['content-length'] ? { CONTENT_LENGTH: String(headers['content-length']) } : {}),
      ...(headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(headers['content-encoding']) } : {}),
      ...(headers['git-protocol'] ? { GIT_PROTOCOL: String(headers['git-protocol']).slice(0, 200) } : {}),
    }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  reply.hijack();
  const res = reply.raw;
  let head = Buffer.alloc(0);
  let started = false;
  let held: Held | null = null;
  let failed = false;
  let received = 0;
  let stderr = '';
  const fail = (status: number, message: string) => {
    failed = true;
    if (!started || held) {
      held = null;
      started = true;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${message}\n`);
    } else res.destroy();
    child.kill('SIGKILL');
  };
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString('utf8');
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) {
      if (held) held.body.push(chunk);
      else if (!failed) res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    const endLf = end < 0 ? head.indexOf('\n\n') : -1;
    if (end < 0 && endLf < 0) {
      if (head.length > 16_384) fail(502, 'the git server sent no headers');
      return;
    }
    const split = end >= 0 ? end : endLf;
    const lines = head.subarray(0, split).toString('latin1').split(/\r?\n/);
    let status = 200;
    const out: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'status') status = Number.parseInt(value, 10) || 502;
      else out[name] = value;
    }
    started = true;
    const rest = head.subarray(split + (end >= 0 ? 4 : 2));
    if (hold)
      held = { code: null, status, headers: { ...out, 'x-request-id': String(request.id) }, body: [rest] };
    else {
      res.writeHead(status, { ...out, 'x-request-id': String(request.id) });
      res.write(rest);
    }
  });
  const body = request.body as NodeJS.ReadableStream | undefined;
  if (body && typeof body.pipe === 'function') {
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > deps.maxPushBytes)
        fail(
          413,
          `the request is over ${Math.round(deps.maxPushBytes / 1024 / 1024)} MB; push in smaller steps`,
        );
    });
    body.pipe(child.stdin);
  } else child.stdin.end();
  child.stdin.on('error', () => {});
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (!started) fail(502, `the git server failed: ${stderr.trim().split('\n').pop() ?? code}`);
      else if (!hold) res.end();
      if (!hold) return resolve(reply);
      const answer = held as Held | null;
      if (answer) answer.code = code;
      resolve(failed ? null : answer);
    });
    child.on('error', () => fail(502, 'git is not installed on the platform (Debian package git)'));
  });
}
