import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from './src/app.js';
import { openStore } from './src/store.js';

const dataDir = process.env.MICROAPP_DATA_DIR ?? './data';
mkdirSync(dataDir, { recursive: true });
const store = openStore(join(dataDir, 'tracker.db'));
const app = buildApp({
  store,
  name: process.env.MICROAPP_APP ?? '{{name}}',
  owner: process.env.MICROAPP_OWNER ?? '{{owner}}',
});

// PORT is a unix socket path on the platform (or a TCP port when runtime.port is set), 3000 locally.
const port = process.env.PORT ?? '3000';
await app.listen(/^\d+$/.test(port) ? { port: Number(port), host: '127.0.0.1' } : { path: port });
console.log(`listening on ${port}`);
for (const signal of ['SIGTERM', 'SIGINT'])
  process.once(signal, async () => {
    await app.close();
    store.close();
  });
