// Calls go to http://connector.<name>/... through the platform's egress broker, which checks the
// call against the approved manifest and adds the connector's credentials. The app holds no secret.
import { request as httpRequest } from 'node:http';

/** The broker's address, from the runtime (HTTP_PROXY), e.g. http://127.0.0.1:3128. */
export function brokerFromEnv(env = process.env) {
  const raw = env.MICROAPP_EGRESS_PROXY ?? env.HTTP_PROXY ?? env.http_proxy;
  return raw ? new URL(raw) : null;
}

/** GET a connector path through the broker; resolves to { status, json }. */
export function connectorGet(broker, connector, path, { timeoutMs = 10_000 } = {}) {
  if (!/^[a-z0-9-]+$/.test(connector)) throw new Error('connector names are DNS labels');
  if (!path.startsWith('/')) throw new Error('paths start with /');
  const target = `http://connector.${connector}${path}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: broker.hostname,
        port: broker.port || 80,
        method: 'GET',
        path: target,
        headers: { host: `connector.${connector}`, accept: 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
          if (body.length > 1_000_000) req.destroy(new Error('response too large'));
        });
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(body);
          } catch {}
          resolve({ status: res.statusCode ?? 0, json, text: body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('the connector did not answer in time')));
    req.on('error', reject);
    req.end();
  });
}

/** Keeps only the fields the page shows: data minimization. */
export function summarize(records, limit = 20) {
  return (Array.isArray(records) ? records : [])
    .slice(0, limit)
    .map((r) => ({ id: String(r.id ?? ''), date: String(r.date ?? ''), amount: Number(r.amount ?? 0) }));
}
