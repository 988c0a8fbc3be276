// The builtins that lean on libraries (GraphQL, X.509, SigV4, JSON Schema), tested against oracles that
// are not our own code: AWS's published test vector, certificates made by @peculiar/x509, graphql-js.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { describe, test } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { compile, RegoError } from '../src/index.ts';

const one = (query: string, input?: unknown, modules: string[] = []) => {
  const policy = compile(modules.map((source, i) => ({ file: `m${i}.rego`, source })));
  const rows = policy.query(`x := ${query}`, { input, strictBuiltinErrors: true });
  return rows[0]?.x;
};

describe('graphql', () => {
  const schema = 'type Query { employee(id: String!): Employee } type Employee { id: String! salary: Int! }';

  test('a query is checked against its schema as graphql-js checks it', () => {
    assert.equal(
      one('graphql.is_valid(input.q, input.s)', { q: '{ employee(id: "a") { salary } }', s: schema }),
      true,
    );
    assert.equal(
      one('graphql.is_valid(input.q, input.s)', { q: '{ employee { salary } }', s: schema }),
      false,
    );
    assert.throws(
      () => one('graphql.parse(input.q, input.s)', { q: '{ employee(id: "a") { bonus } }', s: schema }),
      /Cannot query field "bonus" on type "Employee" in GraphQL query string at location 1:23/,
    );
  });

  test('an AST object with a name that is not a GraphQL name is refused, not spliced into a document', () => {
    // Were names copied into text as they are, this field (which alone fails validation: it has no
    // selection) would turn into a valid query with arguments and a selection the AST never held.
    const ast = {
      Operations: [
        {
          Operation: 'query',
          Name: '',
          SelectionSet: [{ Alias: 'e', Name: 'employee(id: "a") { salary }' }],
        },
      ],
    };
    assert.equal(one('graphql.is_valid(input.ast, input.s)', { ast, s: schema }), false);
    const [valid] = one('graphql.parse_and_verify(input.ast, input.s)', { ast, s: schema }) as unknown[];
    assert.equal(valid, false);
  });

  test('a schema document is not a query, and a query is not a schema', () => {
    assert.throws(() => one('graphql.parse_query(input)', schema), RegoError);
    assert.throws(() => one('graphql.parse_schema(input)', '{ employee { id } }'), RegoError);
  });
});

describe('providers.aws.sign_req', () => {
  test("signs AWS's own get-vanilla test vector to AWS's published signature", () => {
    const signed = one('providers.aws.sign_req(input.req, input.config, 1440938160000000000)', {
      req: { method: 'GET', url: 'https://example.amazonaws.com/' },
      config: {
        aws_access_key: 'AKIDEXAMPLE',
        aws_secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        aws_service: 'service',
        aws_region: 'us-east-1',
      },
    }) as { headers: Record<string, string> };
    assert.equal(
      signed.headers.Authorization,
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;x-amz-date,Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });
});

describe('json.match_schema', () => {
  test('errors name the field and say what was wrong', () => {
    const [ok, errors] = one('json.match_schema(input.doc, input.schema)', {
      doc: { user: { age: -1 } },
      schema: { properties: { user: { properties: { age: { minimum: 0 } }, required: ['name'] } } },
    }) as [boolean, { field: string; type: string }[]];
    assert.equal(ok, false);
    assert.deepEqual(errors.map((e) => [e.field, e.type]).sort(), [
      ['user', 'required'],
      ['user.age', 'number_gte'],
    ]);
  });
});

describe('crypto.x509', () => {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const day = 86_400_000;
  async function chain() {
    const rootKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=Test Root, O=microapp',
      notBefore: new Date(Date.now() - day),
      notAfter: new Date(Date.now() + 10 * day),
      keys: rootKeys,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'CN=app.example.com',
      issuer: root.subject,
      notBefore: new Date(Date.now() - day),
      notAfter: new Date(Date.now() + 5 * day),
      publicKey: leafKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'app.example.com' },
          { type: 'url', value: 'spiffe://example.com/app' },
        ]),
      ],
    });
    return { root: root.toString('pem'), leaf: leaf.toString('pem') };
  }

  test('a chain made by a CA verifies, leaf first, with the fields Go names', async () => {
    const { root, leaf } = await chain();
    const [valid, certs] = one('crypto.x509.parse_and_verify_certificates(input)', `${root}\n${leaf}`) as [
      boolean,
      { Subject: { CommonName: string }; DNSNames: string[]; URIStrings: string[]; IsCA: boolean }[],
    ];
    assert.equal(valid, true);
    assert.deepEqual(
      certs.map((c) => c.Subject.CommonName),
      ['app.example.com', 'Test Root'],
    );
    assert.deepEqual(certs[0]!.DNSNames, ['app.example.com']);
    assert.deepEqual(certs[0]!.URIStrings, ['spiffe://example.com/app']);
    assert.equal(certs[1]!.IsCA, true);
  });

  test('a chain does not verify with its certificates swapped, after it expires, or for another host', async () => {
    const { root, leaf } = await chain();
    assert.deepEqual(one('crypto.x509.parse_and_verify_certificates(input)', `${leaf}\n${root}`), [
      false,
      [],
    ]);
    const later = (Date.now() + 7 * day) * 1_000_000;
    assert.deepEqual(
      one('crypto.x509.parse_and_verify_certificates_with_options(input.c, {"CurrentTime": input.t})', {
        c: `${root}\n${leaf}`,
        t: later,
      }),
      [false, []],
    );
    const [forHost] = one(
      'crypto.x509.parse_and_verify_certificates_with_options(input, {"DNSName": "other.example.com"})',
      `${root}\n${leaf}`,
    ) as [boolean];
    assert.equal(forHost, false);
  });

  test('a certificate that is not one is a builtin error, not a crash', () => {
    assert.throws(
      () => one('crypto.x509.parse_certificates(input)', Buffer.from('junk').toString('base64')),
      RegoError,
    );
  });
});
