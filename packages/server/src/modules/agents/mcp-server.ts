import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { Manifest } from '../catalog/manifest-schema.ts';
import { renderTemplate } from '../catalog/template-files.ts';
import { listTemplates } from '../catalog/templates.ts';
import type { AgentSession } from './agent-gate.ts';
import { registerAppTools } from './mcp-app-tools.ts';
import type { McpDeps } from './mcp-common.ts';
import { registerRunTools } from './mcp-run-tools.ts';

/** A vetted prompt template, as the organization's policy data lists it (data.microapp.config.agents.prompts). */
type VettedPrompt = { title?: string; description?: string; arguments?: string[]; text: string };

/** The packs that apply to every app, and those a data class brings in. */
const packsFor = (dataClasses: string[]) => [
  'risk',
  'approval',
  'deploy',
  'network',
  'access',
  'dlp',
  'agents',
  ...(dataClasses.includes('financial') ? ['finance'] : []),
  ...(dataClasses.includes('pii') ? ['privacy'] : []),
  ...(dataClasses.includes('health') ? ['healthcare'] : []),
];

const instructions = (email: string) =>
  `You build small internal apps on microapp, the organization's governed app platform, for ${email}. ` +
  'Start from a template (list_templates, scaffold_app), check the manifest (assess_manifest), register it (register_app), ' +
  'build it (build_app) and try it in preview (deploy_app). Some calls wait for the person to approve (adding personal data, ' +
  'an outside host, a connector or a secret, a deploy to live, a decommission): tell them, and call checkpoint_status. ' +
  'You never approve apps, read secrets or change policy; a refusal says why and what to do instead.';

/**
 * The MCP server one agent request talks to: tools, resources and prompts bound to the agent's session.
 * Made per request (the endpoint is stateless), so nothing of one agent's session reaches another's.
 */
export async function createAgentMcpServer(
  deps: McpDeps,
  session: AgentSession,
  version: string,
): Promise<McpServer> {
  const server = new McpServer(
    { name: 'microapp', version },
    { capabilities: { logging: {} }, instructions: instructions(session.principal.email) },
  );
  registerAppTools(server, deps, session);
  registerRunTools(server, deps, session);

  const json = (uri: string, value: unknown) => ({
    contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
  });

  server.registerResource(
    'manifest-schema',
    'microapp://schema/manifest',
    {
      title: 'The microapp.yaml schema',
      description: 'JSON Schema of an app manifest, as register_app checks it',
      mimeType: 'application/json',
    },
    (uri) => json(uri.href, { $schema: 'http://json-schema.org/draft-07/schema#', ...Manifest }),
  );

  server.registerResource(
    'template-files',
    new ResourceTemplate('microapp://templates/{template}', {
      list: () => ({
        resources: listTemplates(deps.templatesDir).map((t) => ({
          uri: `microapp://templates/${t.name}`,
          name: t.name,
          title: t.title,
          description: t.description,
          mimeType: 'application/json',
        })),
      }),
    }),
    {
      title: "A template's files",
      description: 'Every file of a vetted template, placeholders filled for you',
      mimeType: 'application/json',
    },
    (uri, vars) => {
      const made = renderTemplate(deps.templatesDir, String(vars.template), {
        name: 'my-app',
        owner: session.principal.email,
        department: session.principal.department,
      });
      if (!made) throw new AppError('not_found', `there is no template ${String(vars.template)}`);
      return json(uri.href, made.files);
    },
  );

  server.registerResource(
    'app-policies',
    new ResourceTemplate('microapp://apps/{name}/policies', { list: undefined }),
    {
      title: 'The policies that apply to an app',
      description:
        "The Rego modules that decide an app's risk, reviews, deploys, egress, data and agents' calls",
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const app = await deps.catalog.get(session.principal, String(vars.name));
      const active = await deps.engine.current();
      const packs = packsFor(app.manifest.dataClasses);
      const modules = active.set.modules
        .filter(
          (m) =>
            !m.file.includes('_test') &&
            packs.some((p) => m.file.startsWith(`${p}/`) || m.file.startsWith('org/')),
        )
        .map((m) => ({ file: m.file, source: m.source }));
      return json(uri.href, { app: app.name, revision: active.revision, modules });
    },
  );

  const active = await deps.engine.current();
  const config = (
    active.set.data as { microapp?: { config?: { agents?: { prompts?: Record<string, VettedPrompt> } } } }
  ).microapp?.config?.agents?.prompts;
  for (const [name, p] of Object.entries(config ?? {})) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name) || typeof p?.text !== 'string') continue;
    const args = (p.arguments ?? []).filter((a) => /^[a-zA-Z]\w{0,30}$/.test(a));
    server.registerPrompt(
      name,
      {
        title: p.title ?? name,
        description: p.description ?? 'A prompt template the organization vetted',
        argsSchema: Object.fromEntries(args.map((a) => [a, z.string().max(2000).optional()])),
      },
      (values: Record<string, string | undefined>) => ({
        messages: [
          {
            role: 'user',
            content: {
              type: 'text',
              text: p.text.replace(/\{\{(\w+)\}\}/g, (all, k: string) => values[k] ?? all),
            },
          },
        ],
      }),
    );
  }
  return server;
}
