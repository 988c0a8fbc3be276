// Calls go to http://connector.<name>/... with fetch(). On the platform, every fetch() of the app goes to
// its egress broker, which checks the call against the approved manifest and adds the connector's
// credentials; the app holds no secret and knows no address. Off the platform there is no broker, and the
// call fails with a message that says so.

/** GET a connector path; resolves to { status, json, text }. `fetchImpl` is for tests. */
export async function connectorGet(connector, path, { timeoutMs = 10_000, fetchImpl = globalThis.fetch } = {}) {
  if (!/^[a-z0-9-]+$/.test(connector)) throw new Error('connector names are DNS labels');
  if (!path.startsWith('/')) throw new Error('paths start with /');
  let res;
  try {
    res = await fetchImpl(`http://connector.${connector}${path}`, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw Object.assign(
      new Error(
        `the ${connector} connector is reached through the platform's egress broker, which only a deployed app has (deploy it to preview to try it): ${error.message}`,
      ),
      { status: 503 },
    );
  }
  const text = (await res.text()).slice(0, 1_000_000);
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

/** Keeps only the fields the page shows: data minimization. */
export function summarize(records, limit = 20) {
  return (Array.isArray(records) ? records : [])
    .slice(0, limit)
    .map((r) => ({ id: String(r.id ?? ''), date: String(r.date ?? ''), amount: Number(r.amount ?? 0) }));
}
