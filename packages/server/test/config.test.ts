import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('server configuration', () => {
  test('without --dev the server refuses to start until SSO is configured, and says how', () => {
    assert.throws(
      () => loadConfig({}, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        for (const want of [
          'MICROAPP_OIDC_ISSUER',
          'MICROAPP_OIDC_CLIENT_ID',
          'MICROAPP_OIDC_CLIENT_SECRET',
          'MICROAPP_OIDC_GROUP_ROLES',
          '--dev',
        ])
          assert.match(error.message, new RegExp(want));
        return true;
      },
    );
  });

  test('a company’s templates folder is taken when it holds templates, and refused with what it needs when not', () => {
    assert.equal(loadConfig({ dev: true }, {}).templatesDir, null, 'the shipped templates by default');
    const dir = mkdtempSync(join(tmpdir(), 'microapp-templates-'));
    try {
      const bare = () => loadConfig({ dev: true }, { MICROAPP_TEMPLATES_DIR: dir });
      assert.throws(
        bare,
        /MICROAPP_TEMPLATES_DIR \(.*\) must be a folder of templates, each a folder with its template.json, beside their _shared folder/,
      );
      mkdirSync(join(dir, 'expenses'));
      writeFileSync(join(dir, 'expenses', 'template.json'), '{}');
      assert.throws(bare, /beside their _shared folder/, 'the shared files are needed too');
      mkdirSync(join(dir, '_shared'));
      assert.equal(bare().templatesDir, dir);
      assert.throws(
        () => loadConfig({ dev: true }, { MICROAPP_TEMPLATES_DIR: join(dir, 'missing') }),
        /MICROAPP_TEMPLATES_DIR/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the Kubernetes driver’s namespaces and image: defaults, overrides, and a clear refusal', () => {
    const defaults = loadConfig({ dev: true }, {}).kubernetes;
    assert.equal(defaults.namespace, 'microapps');
    assert.equal(defaults.runtimeImage, null, 'no image until one pinned by digest is set');
    const pinned = `registry.example.com/node@sha256:${'ab'.repeat(32)}`;
    const set = loadConfig(
      { dev: true },
      { MICROAPP_KUBERNETES_NAMESPACE: 'apps-prod', MICROAPP_KUBERNETES_RUNTIME_IMAGE: pinned },
    );
    assert.equal(set.kubernetes.namespace, 'apps-prod');
    assert.equal(set.kubernetes.runtimeImage, pinned);
    assert.equal(set.kubernetes.artifactUrl, 'https://microapp.microapp-system.svc');
    assert.throws(
      () =>
        loadConfig(
          { dev: true },
          { MICROAPP_KUBERNETES_NAMESPACE: 'Apps_Prod', MICROAPP_KUBERNETES_RUNTIME_IMAGE: 'node; rm -rf /' },
        ),
      /MICROAPP_KUBERNETES_NAMESPACE must be a Kubernetes namespace name[\s\S]*MICROAPP_KUBERNETES_RUNTIME_IMAGE must be an image pinned by digest/,
    );
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_KUBERNETES_SERVICE_URL: 'https://{site}.example.com/path' }),
      /MICROAPP_KUBERNETES_SERVICE_URL is where the gateway reaches an app's Service/,
    );
  });

  test('shipping only merged changes is on or off, off by default', () => {
    assert.equal(loadConfig({ dev: true }, {}).shipOnlyMergedChanges, false);
    assert.equal(
      loadConfig({ dev: true }, { MICROAPP_SHIP_ONLY_MERGED_CHANGES: 'ON' }).shipOnlyMergedChanges,
      true,
    );
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_SHIP_ONLY_MERGED_CHANGES: 'yes' }),
      /MICROAPP_SHIP_ONLY_MERGED_CHANGES must be on or off, got "yes"/,
    );
  });

  test("the registry's CA bundle must be a readable PEM file; a good one is kept", () => {
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_NPM_CA_FILE: '/nonexistent/ca.pem' }),
      /MICROAPP_NPM_CA_FILE: \/nonexistent\/ca\.pem cannot be read \(ENOENT\)/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'microapp-ca-'));
    writeFileSync(join(dir, 'notes.txt'), 'the CA is on the wiki\n');
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_NPM_CA_FILE: join(dir, 'notes.txt') }),
      /holds no PEM certificate/,
    );
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    assert.equal(loadConfig({ dev: true }, { MICROAPP_NPM_CA_FILE: pem }).npmCaFile, pem);
    rmSync(dir, { recursive: true, force: true });
  });

  test('repositories are shared through the database and the blob store by default only with a registry', () => {
    assert.equal(loadConfig({ dev: true }, {}).gitStore, 'folder');
    const registry = { MICROAPP_BLOB_REGISTRY: 'https://registry.internal/microapp' };
    assert.equal(loadConfig({ dev: true }, registry).gitStore, 'shared');
    assert.equal(loadConfig({ dev: true }, { ...registry, MICROAPP_GIT_STORE: 'folder' }).gitStore, 'folder');
    assert.equal(loadConfig({ dev: true }, { MICROAPP_GIT_STORE: 'shared' }).gitStore, 'shared');
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_GIT_STORE: 'nfs' }),
      /MICROAPP_GIT_STORE is shared \(repositories in the database and the blob store.*got "nfs"/,
    );
  });

  test('a file holding a credential that other users can read stops the start, naming the setting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'microapp-key-files-'));
    const loose = join(dir, 'loose');
    writeFileSync(loose, 'a-credential-value\n', { mode: 0o644 });
    for (const [env, variable] of [
      [
        { MICROAPP_NPM_REGISTRY: 'https://npm.corp.example.com/', MICROAPP_NPM_TOKEN_FILE: loose },
        'MICROAPP_NPM_TOKEN_FILE',
      ],
      [
        {
          MICROAPP_BLOB_REGISTRY: 'https://registry.internal/microapp',
          MICROAPP_BLOB_REGISTRY_USERNAME: 'microapp',
          MICROAPP_BLOB_REGISTRY_PASSWORD_FILE: loose,
        },
        'MICROAPP_BLOB_REGISTRY_PASSWORD_FILE',
      ],
      [
        { MICROAPP_VAULT_ADDR: 'https://vault.example.com:8200', MICROAPP_VAULT_TOKEN_FILE: loose },
        'MICROAPP_VAULT_TOKEN_FILE',
      ],
    ] as const)
      assert.throws(
        () => loadConfig({ dev: true }, env),
        (e: Error) =>
          new RegExp(
            `${variable} .*loose can be read or written by other users \\(mode 0644\\): chmod 600`,
          ).test(e.message) && !e.message.includes('a-credential-value'),
        variable,
      );
    rmSync(dir, { recursive: true, force: true });
  });

  test("the registry's token: a file for a named registry, one token on one line, never printed", () => {
    const dir = mkdtempSync(join(tmpdir(), 'microapp-npm-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'npm_Secret-Value-123\n', { mode: 0o600 });
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_NPM_TOKEN_FILE: file }),
      (e: Error) =>
        /MICROAPP_NPM_TOKEN_FILE needs MICROAPP_NPM_REGISTRY/.test(e.message) &&
        !e.message.includes('npm_Secret-Value-123'),
    );
    const registry = { MICROAPP_NPM_REGISTRY: 'https://npm.corp.example.com/' };
    assert.throws(
      () => loadConfig({ dev: true }, { ...registry, MICROAPP_NPM_TOKEN_FILE: join(dir, 'missing') }),
      /MICROAPP_NPM_TOKEN_FILE: .*missing cannot be read \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'two'), 'npm_Secret-Value-123 and a note\n', { mode: 0o600 });
    assert.throws(
      () => loadConfig({ dev: true }, { ...registry, MICROAPP_NPM_TOKEN_FILE: join(dir, 'two') }),
      (e: Error) => /must hold one token on one line/.test(e.message) && !e.message.includes('npm_Secret'),
    );
    const c = loadConfig({ dev: true }, { ...registry, MICROAPP_NPM_TOKEN_FILE: file });
    assert.equal(c.npmTokenFile, file);
    assert.ok(!JSON.stringify(c).includes('npm_Secret-Value-123'), 'the configuration keeps the path only');
    rmSync(dir, { recursive: true, force: true });
  });

  test('OTLP: an endpoint and headers; a bad one is refused without printing header values', () => {
    const c = loadConfig(
      { dev: true },
      { MICROAPP_OTLP_ENDPOINT: 'http://collector:4318', MICROAPP_OTLP_HEADERS: 'x-api-key=k%3D1,team=ops' },
    );
    assert.deepEqual(c.otlp, {
      endpoint: 'http://collector:4318',
      headers: { 'x-api-key': 'k=1', team: 'ops' },
    });
    assert.equal(loadConfig({ dev: true }, {}).otlp.endpoint, null, 'off unless configured');
    assert.throws(
      () =>
        loadConfig(
          { dev: true },
          { MICROAPP_OTLP_ENDPOINT: 'collector:4318', MICROAPP_OTLP_HEADERS: 'secret-key-value' },
        ),
      (e: unknown) => {
        assert.match(String(e), /MICROAPP_OTLP_ENDPOINT must be the collector's URL/);
        assert.match(String(e), /MICROAPP_OTLP_HEADERS is name=value pairs/);
        assert.doesNotMatch(String(e), /secret-key-value/);
        return true;
      },
    );
  });

  test('a complete OIDC configuration is accepted; the client secret is not in any error', () => {
    const env = {
      MICROAPP_OIDC_ISSUER: 'https://login.example.com',
      MICROAPP_OIDC_CLIENT_ID: 'microapp',
      MICROAPP_OIDC_CLIENT_SECRET: 's3cr3t-value',
      MICROAPP_OIDC_GROUP_ROLES:
        '{"finance-builders":{"roles":["creator"]},"secops":{"roles":["reviewer"],"specialties":["security"]}}',
      DATABASE_URL: 'postgres://db.example.com/microapp',
      MICROAPP_KEK: Buffer.alloc(32, 7).toString('base64'),
    };
    const config = loadConfig({ port: 9000 }, env);
    assert.equal(config.oidc?.groupRoles.secops?.specialties[0], 'security');
    assert.equal(config.database.kind, 'postgres');
    assert.equal(config.port, 9000);
    assert.equal(config.host, '127.0.0.1', 'listens on loopback unless told otherwise');
    assert.throws(
      () => loadConfig({}, { ...env, MICROAPP_OIDC_GROUP_ROLES: '{"x":{"roles":["superuser"]}}' }),
      (e: Error) => /unknown role "superuser"/.test(e.message) && !e.message.includes('s3cr3t-value'),
    );
  });

  test('settings that used to fail silently stop the start and say what is wrong', () => {
    const sso = {
      MICROAPP_OIDC_ISSUER: 'https://login.example.com',
      MICROAPP_OIDC_CLIENT_ID: 'microapp',
      MICROAPP_OIDC_CLIENT_SECRET: 's3cr3t-value',
      MICROAPP_OIDC_GROUP_ROLES: '{"finance-builders":{"roles":["creator"]}}',
      MICROAPP_KEK: Buffer.alloc(32, 7).toString('base64'),
    };
    // An unknown database scheme is not SQLite in disguise; the password is not printed.
    assert.throws(
      () => loadConfig({}, { ...sso, DATABASE_URL: 'mysql://app:hunter2pass@db/microapp' }),
      (e: Error) =>
        /DATABASE_URL must be postgres:\/\/.* got a URL starting "mysql:"/.test(e.message) &&
        !e.message.includes('hunter2pass'),
    );
    assert.equal(loadConfig({ dev: true }, { DATABASE_URL: 'sqlite:/tmp/x.sqlite' }).database.kind, 'sqlite');
    // Development mode (no password) never takes over a server set up for single sign-on.
    assert.throws(
      () => loadConfig({}, { ...sso, MICROAPP_DEV: '1' }),
      /MICROAPP_DEV=1 would run a server configured for single sign-on/,
    );
    assert.throws(
      () => loadConfig({ dev: true }, sso),
      /--dev would run a server configured for single sign-on/,
    );
    assert.equal(loadConfig({}, sso).dev, false);
    // The public address must be one people can open.
    for (const bad of [
      'microapp.example.com',
      'ftp://microapp.example.com',
      'https://u:p@microapp.example.com',
      'https://x.example.com/?a=1',
    ])
      assert.throws(
        () => loadConfig({ dev: true }, { MICROAPP_PUBLIC_URL: bad }),
        /MICROAPP_PUBLIC_URL must be the address people open/,
        bad,
      );
    assert.equal(
      loadConfig({ dev: true }, { MICROAPP_PUBLIC_URL: 'https://microapp.example.com' }).publicUrl,
      'https://microapp.example.com',
    );
  });

  test('bad ports and settings are named', () => {
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_PORT: 'eighty' }),
      /MICROAPP_PORT must be a port number/,
    );
    assert.throws(() => loadConfig({ dev: true }, { MICROAPP_SESSION_TTL_HOURS: '-1' }), /SESSION_TTL/);
  });

  test('--dev needs nothing else', () => {
    const config = loadConfig({ dev: true, dataDir: '/tmp/x' }, {});
    assert.equal(config.database.kind, 'sqlite');
    assert.equal(config.oidc, null);
    assert.equal(config.port, 8080);
  });
});
