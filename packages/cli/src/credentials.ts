import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What the CLI keeps per server after `microapp login`. */
export type Credential = { token: string; email: string; expiresAt: string | null };
type Store = { servers: Record<string, Credential> };

export function configDir(env = process.env): string {
  return env.MICROAPP_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'microapp');
}

const storePath = () => join(configDir(), 'credentials.json');

function readStore(): Store {
  try {
    return JSON.parse(readFileSync(storePath(), 'utf8')) as Store;
  } catch {
    return { servers: {} };
  }
}

function writeStore(store: Store) {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(storePath(), `${JSON.stringify(store, null, 2)}\n`, { mode: 0o600 });
  chmodSync(storePath(), 0o600);
}

export function loadCredential(server: string): Credential | undefined {
  return readStore().servers[server];
}

export function saveCredential(server: string, credential: Credential) {
  const store = readStore();
  store.servers[server] = credential;
  writeStore(store);
}

export function forgetCredential(server: string): boolean {
  const store = readStore();
  if (!store.servers[server]) return false;
  delete store.servers[server];
  if (Object.keys(store.servers).length === 0) rmSync(storePath(), { force: true });
  else writeStore(store);
  return true;
}
