import { request as httpRequest, STATUS_CODES } from 'node:http';
import { request as httpsRequest } from 'node:https';

export type Reply = { status: number; statusText: string; body: Buffer };

/**
 * One HTTP request with Node's own HTTP client. The CLI's API calls go through here rather than fetch():
 * Node 20's fetch loads and compiles undici and its WebAssembly parser on first use, which costs a
 * short command more than the request does (about 100 ms here, `bench/cli`).
 */
export function send(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string | Buffer },
): Promise<Reply> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(target, { method: init.method, headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve({
          status,
          statusText: res.statusMessage || STATUS_CODES[status] || '',
          body: Buffer.concat(chunks),
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
