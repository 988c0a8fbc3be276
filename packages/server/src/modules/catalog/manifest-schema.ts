import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../../api/schema-helpers.ts';

import { dataClasses } from './data-classes.ts';

export { type DataClass, dataClasses } from './data-classes.ts';

const dnsLabel = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const hostname =
  '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$';

/** A web origin: scheme, host and an optional port, nothing else. */
const webOrigin = '^https?://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$';

/** The app manifest (`microapp.yaml`); the server publishes it as JSON Schema at /api/v1/schemas/manifest.json. */
export const Manifest = Type.Object(
  {
    name: Type.String({
      // No `--`: `NAME--preview` is the host of the app's preview environment.
      pattern: '^(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
      maxLength: 54,
      description:
        'DNS label: lower-case letters, digits and single hyphens (at most 54, so NAME--preview fits), unique in the catalog',
      examples: ['bank-reconciliation'],
    }),
    owner: Type.String({ format: 'email', maxLength: 254, description: 'The accountable owner' }),
    purpose: Type.String({
      minLength: 10,
      maxLength: 2000,
      description: 'The business justification, in a sentence or two',
    }),
    dataClasses: Type.Array(StringEnum(dataClasses), {
      minItems: 1,
      uniqueItems: true,
      description: `What data the app handles: ${dataClasses.join(', ')}`,
    }),
    audience: Type.Optional(
      Type.Object(
        {
          department: Type.Optional(Type.String({ pattern: dnsLabel, maxLength: 63 })),
          maxUsers: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          /**
           * People outside the department who may use it too (work e-mails): how an owner answers a request
           * for access. A change to the list is a change to the audience, so it is reviewed again.
           */
          people: Type.Optional(
            Type.Array(Type.String({ pattern: '^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$', maxLength: 254 }), {
              maxItems: 100,
              uniqueItems: true,
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    integrations: Type.Optional(
      Type.Object(
        {
          egress: Type.Optional(
            Type.Array(Type.String({ pattern: hostname, maxLength: 253 }), {
              maxItems: 50,
              uniqueItems: true,
            }),
          ),
          connectors: Type.Optional(
            Type.Array(Type.String({ pattern: dnsLabel, maxLength: 63 }), {
              maxItems: 20,
              uniqueItems: true,
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    secrets: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }), { maxItems: 50, uniqueItems: true }),
    ),
    runtime: Type.Optional(
      Type.Object(
        {
          kind: Type.Literal('node'),
          entry: Type.Optional(
            Type.String({ pattern: '^(?!.*\\.\\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$', maxLength: 200 }),
          ),
          memoryMb: Type.Optional(Type.Integer({ minimum: 32, maximum: 8192 })),
          cpu: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 8 })),
          command: Type.Optional(
            Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
              minItems: 2,
              maxItems: 20,
              description:
                "The start command instead of entry: node, Node options (--name or --name=value), the app's file, its arguments; e.g. [node, --enable-source-maps, dist/server.js]",
            }),
          ),
          args: Type.Optional(
            Type.Array(Type.String({ maxLength: 200 }), {
              maxItems: 20,
              description: 'Arguments after the entry file (node ENTRY ARGS…), or after the command',
            }),
          ),
          env: Type.Optional(
            Type.Record(
              Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }),
              Type.String({ maxLength: 1000 }),
              {
                maxProperties: 50,
                additionalProperties: false,
                description:
                  'Settings that are not secret (secrets go through `microapp secrets`): upper-case names, not PORT, PATH, HOME, NODE_OPTIONS, LD_*, or MICROAPP_*',
              },
            ),
          ),
          port: Type.Optional(
            Type.Integer({
              minimum: 1024,
              maximum: 65535,
              description:
                'The TCP port the app listens on inside its sandbox (PORT is then this number); without it, PORT is a socket path',
            }),
          ),
          readiness: Type.Optional(
            Type.Object(
              {
                path: Type.Optional(
                  Type.String({
                    pattern: '^/[\x21-\x7e]{0,200}$',
                    description:
                      'Asked with GET: the app is ready once it answers with a status below 400 (default /, where any answer will do)',
                  }),
                ),
                timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 120 })),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    template: Type.Optional(
      Type.Object(
        {
          name: Type.String({ pattern: dnsLabel, maxLength: 63 }),
          version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$', maxLength: 32 }),
        },
        { additionalProperties: false, description: 'The vetted template the app was created from' },
      ),
    ),
    lifetime: Type.Optional(
      Type.Object({ expires: Type.String({ format: 'date' }) }, { additionalProperties: false }),
    ),
    web: Type.Optional(
      Type.Object(
        {
          acceptFrom: Type.Optional(
            Type.Array(Type.String({ pattern: webOrigin, maxLength: 300 }), {
              maxItems: 20,
              uniqueItems: true,
              description:
                "Other sites (origins such as https://intranet.example.com) whose pages may send this app forms and other changes with the user's session; by default only the app's own pages may",
            }),
          ),
          embedBy: Type.Optional(
            Type.Array(Type.String({ pattern: webOrigin, maxLength: 300 }), {
              maxItems: 20,
              uniqueItems: true,
              description:
                'Sites (origins) that may show this app in a frame; by default none but the app itself',
            }),
          ),
        },
        { additionalProperties: false, description: 'How browsers on other sites may use the app' },
      ),
    ),
  },
  { additionalProperties: false, title: 'microapp.yaml' },
);

export type Manifest = Static<typeof Manifest>;
