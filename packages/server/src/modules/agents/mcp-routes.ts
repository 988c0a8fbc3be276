import type { FastifyInstance, FastifyReply } from 'fastify';
import { perCallerLimit } from '../../api/rate-limit.ts';
import { publicRoute } from '../identity/access.ts';
import { sessionOf } from './agent-gate.ts';
import type { AgentTokens } from './agent-tokens.ts';
import type { McpDeps } from './mcp-common.ts';

/**
 * The MCP SDK and the tools, loaded at the first agent request: a server no agent talks to does not pay
 * for them at start (a third of a second).
 */
let loaded: Promise<
  typeof import('./mcp-server.ts') & typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js')
> | null = null;
const mcpModules = () =>
  (loaded ??= Promise.all([
    import('./mcp-server.ts'),
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
  ]).then(([a, b]) => ({ ...a, ...b })));

/**
 * The MCP endpoint (Streamable HTTP, stateless): each POST is authenticated as an agent acting for a
 * person, then served by a server made for that request. Without a valid token the answer is 401 with
 * the protected resource metadata's address, which is how an MCP client starts its OAuth flow.
 */
export function registerMcpRoutes(
  app: FastifyInstance,
  deps: { tokens: Pick<AgentTokens, 'authenticate'>; mcp: McpDeps; publicUrl: () => string; version: string },
) {
  const limit = perCallerLimit({ burst: 60, perSecond: 10 });

  const challenge = (reply: FastifyReply, error: string | null, description: string) => {
    const metadata = `${deps.publicUrl()}/.well-known/oauth-protected-resource/mcp`;
    const parts = [`resource_metadata="${metadata}"`];
    if (error) parts.push(`error="${error}"`, `error_description="${description.replace(/["\\]/g, '')}"`);
    return reply
      .status(401)
      .header('www-authenticate', `Bearer ${parts.join(', ')}`)
      .type('application/problem+json; charset=utf-8')
      .send({ title: 'Authentication is required', status: 401, detail: description });
  };

  app.post(
    '/mcp',
    {
      config: { access: publicRoute('the MCP endpoint authenticates agent tokens itself') },
      schema: { hide: true },
      bodyLimit: 8 * 1024 * 1024,
    },
    async (request, reply) => {
      const header = request.headers.authorization;
      const bearer = header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
      if (!bearer) return challenge(reply, null, 'sign in: this endpoint needs an agent access token');
      const found = await deps.tokens.authenticate(bearer);
      if ('refused' in found) return challenge(reply, 'invalid_token', found.refused);
      limit(found.principal.agent!.delegationId, 'MCP calls');
      const session = sessionOf(found, request);
      const { createAgentMcpServer, StreamableHTTPServerTransport } = await mcpModules();
      const server = await createAgentMcpServer(deps.mcp, session, deps.version);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      reply.hijack();
      reply.raw.on('close', () => {
        transport.close().catch(() => {});
        server.close().catch(() => {});
      });
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    },
  );

  // Stateless: no server-initiated stream and no session to end (the transport specification allows 405).
  for (const method of ['GET', 'DELETE'] as const)
    app.route({
      method,
      url: '/mcp',
      config: { access: publicRoute('answers that the MCP endpoint is stateless') },
      schema: { hide: true },
      handler: async (_request, reply) =>
        reply
          .status(405)
          .header('allow', 'POST')
          .send({
            jsonrpc: '2.0',
            error: { code: -32000, message: 'this MCP endpoint is stateless: POST only' },
            id: null,
          }),
    });
}
