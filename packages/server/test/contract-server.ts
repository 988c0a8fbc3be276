import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

type Contract = {
  name: string;
  doc: string;
  request: { method: string; path: string; body?: Record<string, unknown>; anyAuth?: boolean };
  response: { status: number; headers?: Record<string, string>; body?: unknown; bodyBase64?: string };
};

/**
 * A loopback HTTP server that answers only the requests a recorded contract describes (method, path,
 * the host's required headers, and every body field the contract names, with its value); anything else
 * is answered 501 and kept as a violation, so a test sees exactly where the client left the contract.
 */
export async function startContractServer(file: string): Promise<{
  url: string;
  violations: string[];
  served: string[];
  close: () => Promise<void>;
}> {
  const spec = JSON.parse(readFileSync(join(import.meta.dirname, 'contracts', file), 'utf8')) as {
    headers: Record<string, string>;
    contracts: Contract[];
  };
  const violations: string[] = [];
  const served: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const contract = spec.contracts.find((c) => c.request.method === req.method && c.request.path === path);
      const problems: string[] = [];
      if (!contract) problems.push(`no contract for ${req.method} ${path}`);
      else {
        if (!contract.request.anyAuth)
          for (const [name, value] of Object.entries(spec.headers))
            if (req.headers[name] !== value)
              problems.push(`${contract.name}: header ${name} is ${req.headers[name] ?? 'missing'}`);
        if (contract.request.body) {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            problems.push(`${contract.name}: the body is not JSON`);
          }
          if (req.headers['content-type'] !== 'application/json')
            problems.push(`${contract.name}: content-type ${req.headers['content-type']}`);
          for (const [k, v] of Object.entries(contract.request.body))
            if (JSON.stringify(body[k]) !== JSON.stringify(v))
              problems.push(
                `${contract.name}: body.${k} is ${JSON.stringify(body[k])}, the contract says ${JSON.stringify(v)}`,
              );
        }
      }
      if (problems.length || !contract) {
        violations.push(...problems);
        res.writeHead(501, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: problems.join('; ') }));
        return;
      }
      served.push(contract.name);
      const { status, headers = {}, body, bodyBase64 } = contract.response;
      const out = bodyBase64
        ? Buffer.from(bodyBase64, 'base64')
        : body === undefined
          ? Buffer.alloc(0)
          : Buffer.from(JSON.stringify(body));
      res.writeHead(status, {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      });
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    violations,
    served,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
