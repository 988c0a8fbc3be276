import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ReadCache } from '../db/read-cache.ts';
import { AppError } from '../errors.ts';
import { newId } from '../ids.ts';
import type { LoginService } from '../modules/identity/login-service.ts';
import { cookieBombResponse } from '../modules/runtime/browser-isolation.ts';
import type { TokenService } from '../modules/tokens/token-service.ts';
import { installAuth } from './auth-hook.ts';
import { installErrorHandling } from './error-handler.ts';
import { validatorCompiler } from './validators.ts';

export const bodyLimit = 1024 * 1024;

/** A request id taken from the caller: letters, digits and `._:-`, 8 to 128 of them. */
export const requestIdShape = /^[A-Za-z0-9._:-]{8,128}$/;

/** The bare HTTP application: parsing, validation, authentication, errors, headers and OpenAPI; no routes. */
export async function buildHttpApp(deps: {
  logger: FastifyBaseLogger;
  tokens: Pick<TokenService, 'authenticate'>;
  login: Pick<LoginService, 'sessionPrincipal'>;
  /** Tokens and sessions kept until they change (db/read-cache.ts); absent: read on every request. */
  cache?: ReadCache;
  version: string;
  gateway?: (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>;
  /**
   * The proxies in front of the platform (addresses or CIDRs, MICROAPP_TRUSTED_PROXIES): their
   * X-Forwarded-For names the client, which the audit trail then records. Nobody else's is believed.
   */
  trustedProxies?: string[];
  /** Served over HTTPS (the public URL says so): browsers are told to use nothing else (HSTS). */
  https?: boolean;
  /** A log line per request (MICROAPP_REQUEST_LOG=on); errors and refusals are logged either way. */
  requestLog?: boolean;
  /** Served over TLS with this certificate and key (PEM); plain HTTP without. */
  tls?: { cert: string; key: string } | null;
}): Promise<FastifyInstance> {
  // Over TLS the server is an https.Server; everything the platform does with it (upgrades, addresses,
  // closing) is the same on both, so it is typed as the plain one.
  const app = Fastify({
    ...(deps.tls ? { https: { ...deps.tls, minVersion: 'TLSv1.2' as const } } : {}),
    loggerInstance: deps.logger,
    // Two lines per request at info level cost the gateway a tenth of its time; asked for, they carry the
    // path without its query string (which may hold personal data, or a sign-in code).
    logController: new LogController({ disableRequestLogging: !deps.requestLog }),
    bodyLimit,
    // A request id the caller (a proxy, a client's tracing) sends is kept when it is a plain token, so one
    // id follows a request through every log; anything else gets one of ours. It is returned either way.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && requestIdShape.test(given) ? given : newId('request');
    },
    requestIdHeader: false,
    ...(deps.trustedProxies?.length ? { trustProxy: deps.trustedProxies } : {}),
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false } },
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      // Headers too large to read are most often a cookie bomb from an app under the same parent domain:
      // answer with a page that clears the cookies scripts can see, instead of a bare 431 forever.
      if (error.code === 'HPE_HEADER_OVERFLOW') socket.end(cookieBombResponse());
      else {
        const [status, label] =
          error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
        const body = JSON.stringify({ title: label, status, detail: 'the request could not be read' });
        socket.end(
          `HTTP/1.1 ${status} ${label}\r\ncontent-type: application/problem+json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        );
      }
    },
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);

  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string', bodyLimit },
    (_request, body, done) => {
      try {
        const value = parseYaml(body as string, {
          uniqueKeys: true,
          maxAliasCount: 100,
          schema: 'core',
          prettyErrors: true,
        });
        done(null, value);
      } catch (error) {
        const where =
          error instanceof YAMLParseError && error.linePos
            ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}`
            : '';
        done(
          new AppError(
            'bad_request',
            `the YAML body is not valid${where}: ${(error as Error).message.split('\n')[0]}`,
          ),
          undefined,
        );
      }
    },
  );

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'microapp API',
        version: deps.version,
        description:
          'Register, approve, build, run and retire governed micro apps. Errors are RFC 9457 problem+json.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API token (mat_…) from `microapp login` or POST /api/v1/tokens',
          },
          session: { type: 'apiKey', in: 'cookie', name: 'microapp_session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
  });

  installErrorHandling(app);
  // The app gateway answers requests for `{app}.apps.…` hosts before any platform route or rule.
  if (deps.gateway) {
    const gateway = deps.gateway;
    app.addHook('onRequest', async (request, reply) => {
      if (await gateway(request, reply)) return reply;
    });
  }
  installAuth(app, deps);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (deps.https) reply.header('strict-transport-security', 'max-age=31536000');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', reply.getHeader('cache-control') ?? 'no-store');
    // A page the server renders itself (the agent consent page) may set a stricter policy of its own.
    reply.header(
      'content-security-policy',
      reply.getHeader('content-security-policy') ?? "default-src 'self'; frame-ancestors 'none'",
    );
  });

  return app;
}
