import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli, exec, importAdvisories } from './cli-harness.ts';

/** The DSSE pre-authentication encoding that a DSSE signature covers. */
function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

describe('anyone can verify a published artifact offline, with standard tools', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  let pulled: string;
  let artifact: string;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-verify-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    const app = join(dir, 'poll');
    assert.equal((await cli(env, 'init', app, '-t', 'form', '--department', 'finance')).code, 0);
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
    const ci = await cli(env, 'ci', '--dir', app);
    assert.equal(ci.code, 0, ci.stderr);
    pulled = join(dir, 'pulled');
    const pull = await cli(env, 'artifacts', 'pull', 'poll', '--out', pulled, '--json');
    assert.equal(pull.code, 0, pull.stderr);
    artifact = JSON.parse(pull.stdout).file;
    const key = await fetch(`${server.url}/api/v1/keys/signing.pub`);
    writeFileSync(join(dir, 'signing.pub'), await key.text());
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('apps show lists the version with its scan; the bundles name the platform key', async () => {
    const show = JSON.parse((await cli(env, 'apps', 'show', 'poll', '--json')).stdout);
    assert.equal(show.versions[0].version, '0.1.0');
    assert.equal(show.versions[0].scan.passed, true);
    const bundle = JSON.parse(readFileSync(join(pulled, 'artifact.sigstore.json'), 'utf8'));
    assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    const keys = (await (await fetch(`${server.url}/api/v1/keys`)).json()) as {
      items: { keyid: string; publicKey: string }[];
    };
    assert.equal(bundle.verificationMaterial.publicKey.hint, keys.items[0]!.keyid);
    assert.ok(!JSON.stringify(keys).includes('PRIVATE'), 'only public keys are served');
  });

  test('microapp verify accepts it, and rejects a tampered artifact and a wrong key', async () => {
    // Published from `microapp ci` on the creator's machine: the provenance names a client build, not the
    // platform, and a check that asks for the platform builder fails.
    const builder = `${server.url}/builders/client/v1`;
    const platformOnly = await cli(
      env,
      'verify',
      artifact,
      '--key',
      join(dir, 'signing.pub'),
      '--bundles',
      pulled,
      '--builder',
      `${server.url}/builders/platform/v1`,
    );
    assert.notEqual(platformOnly.code, 0, 'a client build is not passed off as a platform build');
    assert.match(platformOnly.stdout + platformOnly.stderr, /built by .*\/builders\/client\/v1/);
    const ok = await cli(
      env,
      'verify',
      artifact,
      '--key',
      join(dir, 'signing.pub'),
      '--bundles',
      pulled,
      '--builder',
      builder,
    );
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /ok {3}provenance attestation: SLSA provenance v1/);
    assert.match(ok.stdout, /ok {3}sbom attestation: https:\/\/cyclonedx.org\/bom/);
    assert.match(ok.stdout, /Verified\./);

    const tampered = join(dir, 'tampered.tar.gz');
    const bytes = readFileSync(artifact);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    writeFileSync(tampered, bytes);
    const bad = await cli(env, 'verify', tampered, '--key', join(dir, 'signing.pub'), '--bundles', pulled);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /NOT verified/);

    const other = join(dir, 'other.pub');
    assert.equal(
      (
        await exec('openssl', [
          'ecparam',
          '-name',
          'prime256v1',
          '-genkey',
          '-noout',
          '-out',
          join(dir, 'other.key'),
        ])
      ).code,
      0,
    );
    assert.equal(
      (await exec('openssl', ['ec', '-in', join(dir, 'other.key'), '-pubout', '-out', other])).code,
      0,
    );
    const wrong = await cli(env, 'verify', artifact, '--key', other, '--bundles', pulled);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /not by the key given/);
  });

  test('the openssl recipe from docs/supply-chain.md accepts the artifact and rejects tampering and a wrong key', async () => {
    const bundle = JSON.parse(readFileSync(join(pulled, 'artifact.sigstore.json'), 'utf8'));
    const sig = join(dir, 'artifact.sig');
    writeFileSync(sig, Buffer.from(bundle.messageSignature.signature, 'base64'));
    const verify = (file: string, key: string, signature = sig) =>
      exec('openssl', ['dgst', '-sha256', '-verify', key, '-signature', signature, file]);
    const ok = await verify(artifact, join(dir, 'signing.pub'));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /Verified OK/);
    assert.equal((await verify(join(dir, 'tampered.tar.gz'), join(dir, 'signing.pub'))).code, 1);
    assert.equal((await verify(artifact, join(dir, 'other.pub'))).code, 1);

    // The provenance attestation: the DSSE signature covers PAE(payloadType, payload).
    const prov = JSON.parse(readFileSync(join(pulled, 'provenance.sigstore.json'), 'utf8'));
    const payload = Buffer.from(prov.dsseEnvelope.payload, 'base64');
    const paeFile = join(dir, 'provenance.pae');
    const dsseSig = join(dir, 'provenance.sig');
    writeFileSync(paeFile, pae(prov.dsseEnvelope.payloadType, payload));
    writeFileSync(dsseSig, Buffer.from(prov.dsseEnvelope.signatures[0].sig, 'base64'));
    assert.match((await verify(paeFile, join(dir, 'signing.pub'), dsseSig)).stdout, /Verified OK/);
    const statement = JSON.parse(payload.toString('utf8'));
    const digest = (await exec('openssl', ['dgst', '-sha256', '-r', artifact])).stdout.split(' ')[0];
    assert.equal(statement.subject[0].digest.sha256, digest, 'the provenance subject is this artifact');
    // A tampered payload no longer verifies.
    const forged = Buffer.from(
      JSON.stringify({
        ...statement,
        predicate: { ...statement.predicate, runDetails: { builder: { id: 'https://evil.example.com' } } },
      }),
    );
    writeFileSync(paeFile, pae(prov.dsseEnvelope.payloadType, forged));
    assert.equal((await verify(paeFile, join(dir, 'signing.pub'), dsseSig)).code, 1);
  });
});
