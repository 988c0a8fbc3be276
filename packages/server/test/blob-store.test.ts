import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blobRegistryFrom } from '../src/config-scale.ts';
import { type BlobStore, createFolderBlobStore, digestOf } from '../src/modules/blobs/blob-store.ts';
import { createOciBlobStore } from '../src/modules/blobs/oci-blob-store.ts';
import { referrersOf, startRegistry, type TestRegistry } from './oci-registry.ts';

const user = { name: 'microapp', password: 'registry-pass-1' };

/** The file the registry keeps a blob's bytes in (its filesystem driver's layout). */
function registryFileOf(root: string, digest: string) {
  const hex = digest.slice(7);
  return join(root, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

describe('the blob store', () => {
  let registry: TestRegistry;
  let dir: string;
  const stores: { name: string; store: () => BlobStore; tamper: (digest: string) => void }[] = [];
  before(async () => {
    registry = await startRegistry({ user });
    dir = mkdtempSync(join(tmpdir(), 'microapp-blobs-'));
    stores.push(
      {
        name: 'the data folder',
        store: () => createFolderBlobStore(dir),
        tamper: (digest) => {
          const file = join(dir, 'artifacts', 'sha256', `${digest.slice(7)}.tar.gz`);
          rmSync(file, { force: true });
          writeFileSync(file, 'swapped');
        },
      },
      {
        name: 'an OCI registry',
        store: () =>
          createOciBlobStore({
            url: `${registry.url}/microapp`,
            username: user.name,
            password: user.password,
          }),
        tamper: (digest) => writeFileSync(registryFileOf(registry.root, digest), 'swapped'),
      },
    );
  });
  after(async () => {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const kind of [0, 1])
    test(`${kind === 0 ? 'the data folder' : 'an OCI registry'}: stores by digest, once, and reads back only the same bytes`, async () => {
      const { store, tamper } = stores[kind]!;
      const blobs = store();
      await blobs.check();
      const bytes = Buffer.from(`artifact bytes ${kind} ${Date.now()}`);
      const digest = await blobs.put('artifact', bytes);
      assert.equal(digest, digestOf(bytes));
      assert.equal(
        await blobs.put('artifact', bytes),
        digest,
        'a second put of the same bytes is the same blob',
      );
      assert.equal(await blobs.has('artifact', digest), true);
      assert.deepEqual(await blobs.get('artifact', digest), bytes);
      // Kinds are kept apart: an archive is not an artifact.
      assert.equal(await blobs.has('archive', digest), false);
      await assert.rejects(blobs.get('archive', digest), /is not in the blob store/);
      // A digest is checked before it becomes a path or a URL.
      await assert.rejects(blobs.get('artifact', 'sha256:../../etc/passwd'), /not a sha256 digest/);

      tamper(digest);
      await assert.rejects(blobs.get('artifact', digest), /was changed in the blob store/);

      const archive = Buffer.from(`sealed ${kind}`);
      const sealed = await blobs.put('archive', archive);
      await blobs.remove('archive', sealed);
      assert.equal(await blobs.has('archive', sealed), false);
      await blobs.remove('archive', sealed);
    });

  test('the registry holds each blob as an OCI artifact manifest, tagged after its digest', async () => {
    const blobs = stores[1]!.store();
    const bytes = Buffer.from('an artifact to find by tag');
    const digest = await blobs.put('artifact', bytes);
    const auth = {
      authorization: `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`,
    };
    const res = await fetch(`${registry.url}/v2/microapp/artifacts/manifests/sha256-${digest.slice(7)}`, {
      headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.status, 200);
    const manifest = (await res.json()) as {
      artifactType: string;
      layers: { digest: string; size: number }[];
    };
    assert.equal(manifest.artifactType, 'application/vnd.microapp.artifact.v1');
    assert.deepEqual(
      manifest.layers.map((l) => [l.digest, l.size]),
      [[digest, bytes.length]],
    );
    // Without credentials the registry gives nothing away.
    const anonymous = await fetch(`${registry.url}/v2/microapp/artifacts/blobs/${digest}`);
    assert.equal(anonymous.status, 401);
  });

  test('an artifact’s Sigstore bundles are its OCI referrers: a client finds them from the artifact alone, by the fallback tag', async () => {
    const blobs = stores[1]!.store();
    const bytes = Buffer.from('an artifact with its signatures');
    const digest = await blobs.put('artifact', bytes);
    const signature = { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', note: 'signature' };
    const provenance = { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', note: 'provenance' };
    await blobs.attach!({ digest, size: bytes.length }, [{ name: 'artifact', bundle: signature }]);
    // A second call (the provenance, or a second replica publishing the same) adds to the list, once each.
    await blobs.attach!({ digest, size: bytes.length }, [
      { name: 'artifact', bundle: signature },
      { name: 'provenance', bundle: provenance },
    ]);

    // What a client knows: the artifact's manifest, by its tag; the referrers are tagged after its digest.
    const found = await referrersOf(registry, user, 'microapp/artifacts', digest);
    assert.deepEqual(
      found.items.map((r) => [r.artifactType, r.name]),
      [
        ['application/vnd.dev.sigstore.bundle.v0.3+json', 'artifact'],
        ['application/vnd.dev.sigstore.bundle.v0.3+json', 'provenance'],
      ],
    );
    for (const [i, want] of [signature, provenance].entries()) {
      assert.equal(found.items[i]!.subject, found.subject, 'each names the artifact as its subject');
      assert.deepEqual(JSON.parse(found.items[i]!.bytes), want);
    }
  });

  test('the empty descriptor every manifest names is looked up once, and stored again when the registry lost it', async () => {
    const store = createOciBlobStore({
      url: `${registry.url}/microapp`,
      username: user.name,
      password: user.password,
    });
    const emptyDigest = digestOf(Buffer.from('{}'));
    const real = globalThis.fetch;
    const seen: string[] = [];
    globalThis.fetch = (input, init) => {
      seen.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
      return real(input, init);
    };
    try {
      for (const n of [1, 2, 3]) await store.put('archive', Buffer.from(`archive ${n} ${Date.now()}`));
      assert.equal(seen.filter((s) => s.endsWith(`/blobs/${emptyDigest}`)).length, 1, seen.join('\n'));
      // The registry loses it (a garbage collection after every manifest naming it went, or by hand).
      const lost = await real(`${registry.url}/v2/microapp/archives/blobs/${emptyDigest}`, {
        method: 'DELETE',
        headers: {
          authorization: `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`,
        },
      });
      assert.equal(lost.status, 202);
      const bytes = Buffer.from(`archive after the loss ${Date.now()}`);
      const digest = await store.put('archive', bytes);
      assert.deepEqual(await store.get('archive', digest), bytes);
      assert.ok(seen.filter((s) => s.endsWith(`/blobs/${emptyDigest}`)).length > 1, 'looked up again');
    } finally {
      globalThis.fetch = real;
    }
  });

  test('a wrong registry password is refused, saying which settings to check', async () => {
    const wrong = createOciBlobStore({
      url: `${registry.url}/microapp`,
      username: user.name,
      password: 'nope',
    });
    await assert.rejects(
      wrong.check(),
      /MICROAPP_BLOB_REGISTRY_USERNAME and MICROAPP_BLOB_REGISTRY_PASSWORD/,
    );
    await assert.rejects(wrong.put('artifact', Buffer.from('x')), /refused/);
    assert.equal(readdirSync(registry.root).includes('data'), true);
  });

  test('the registry setting: https off loopback, no credentials in the address, a user for a password', () => {
    const problems: string[] = [];
    assert.equal(
      blobRegistryFrom({ MICROAPP_BLOB_REGISTRY: 'http://registry.internal/microapp' }, problems),
      null,
    );
    assert.equal(
      blobRegistryFrom({ MICROAPP_BLOB_REGISTRY: 'https://u:p@registry.internal/m' }, problems),
      null,
    );
    assert.equal(blobRegistryFrom({ MICROAPP_BLOB_REGISTRY: 'ftp://registry.internal/m' }, problems), null);
    blobRegistryFrom(
      { MICROAPP_BLOB_REGISTRY: 'https://registry.internal/m', MICROAPP_BLOB_REGISTRY_PASSWORD: 'secret-pw' },
      problems,
    );
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems[0]!, /must use https for a registry on another machine/);
    assert.match(problems[1]!, /must not hold credentials/);
    assert.ok(!problems.join('\n').includes('secret-pw'), 'a password is never repeated');
    const ok = blobRegistryFrom(
      {
        MICROAPP_BLOB_REGISTRY: 'https://registry.internal/microapp/',
        MICROAPP_BLOB_REGISTRY_USERNAME: 'svc',
        MICROAPP_BLOB_REGISTRY_PASSWORD: 'pw',
      },
      [],
    );
    assert.deepEqual(ok, { url: 'https://registry.internal/microapp', username: 'svc', password: 'pw' });
  });
});
