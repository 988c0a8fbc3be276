import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { compileBodySchema } from '../../api/validators.ts';
import { AppError } from '../../errors.ts';
import { Manifest } from '../catalog/manifest-schema.ts';
import { renderTemplate } from '../catalog/template-files.ts';
import { listTemplates } from '../catalog/templates.ts';
import type { AgentSession, CallFacts } from './agent-gate.ts';
import { answer, appName, instruction, type McpDeps, outcomeAnswer, visibleApp } from './mcp-common.ts';

type ManifestValue = import('@sinclair/typebox').Static<typeof Manifest>;

const checkManifest = compileBodySchema(Manifest);

/** The manifest an agent sent, checked as the REST API checks it; a clear message when it is not valid. */
function manifestOf(value: unknown): ManifestValue {
  if (checkManifest(value)) return value as ManifestValue;
  const problems = (checkManifest.errors ?? [])
    .slice(0, 10)
    .map((e) => `${e.instancePath || '/'} ${e.message}`)
    .join('; ');
  throw new AppError(
    'validation_failed',
    `the manifest does not match its schema (read the resource microapp://schema/manifest): ${problems}`,
  );
}

const added = (now: string[] | undefined, before: string[] | undefined) =>
  (now ?? []).filter((x) => !(before ?? []).includes(x)).sort();

/** What registering this manifest would change, as the `microapp.agents` policy reads it. */
async function registrationFacts(
  deps: McpDeps,
  session: AgentSession,
  manifest: ManifestValue,
): Promise<CallFacts> {
  const before = await visibleApp(deps, session, manifest.name);
  const assessed = await deps.catalog.assess(session.principal, manifest);
  const m = before?.manifest;
  return {
    app: before ? { exists: true, tier: before.tier, dataClasses: before.manifest.dataClasses } : null,
    proposed: { tier: assessed.tier, dataClasses: manifest.dataClasses },
    change: {
      dataClasses: added(manifest.dataClasses, m?.dataClasses),
      egress: added(manifest.integrations?.egress, m?.integrations?.egress),
      connectors: added(manifest.integrations?.connectors, m?.integrations?.connectors),
      secrets: added(manifest.secrets, m?.secrets),
    },
  };
}

/** Templates, scaffolding, assessment and registration: the tools that shape an app before it is built. */
export function registerAppTools(server: McpServer, deps: McpDeps, session: AgentSession) {
  const person = session.principal;

  server.registerTool(
    'list_templates',
    {
      title: 'List app templates',
      description:
        "Lists the organization's vetted app templates (name, version, what each is for). Start every new app from one of them with scaffold_app.",
      inputSchema: { instruction },
      annotations: { readOnlyHint: true },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          { tool: 'list_templates', app: null, input: {}, instruction: args.instruction, facts: {} },
          async () =>
            listTemplates(deps.templatesDir).map((t) => ({
              name: t.name,
              version: t.version,
              title: t.title,
              description: t.description,
            })),
        ),
        (templates) => answer({ templates }),
      ),
  );

  server.registerTool(
    'scaffold_app',
    {
      title: 'Scaffold an app from a template',
      description: `Returns the files of a new app made from a vetted template, with its microapp.yaml filled in (owner ${person.email}). Nothing is registered or written on the platform: edit the files, then call assess_manifest and register_app with the manifest, and build_app with the files.`,
      inputSchema: {
        template: z.string().max(63).describe('A template name from list_templates'),
        name: appName,
        instruction,
      },
      annotations: { readOnlyHint: true },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'scaffold_app',
            app: args.name,
            input: { template: args.template, name: args.name },
            instruction: args.instruction,
            facts: {},
          },
          async () => {
            const made = renderTemplate(deps.templatesDir, args.template, {
              name: args.name,
              owner: person.email,
              department: person.department,
            });
            if (!made)
              throw new AppError(
                'not_found',
                `there is no template ${args.template}; list_templates names them: ${listTemplates(
                  deps.templatesDir,
                )
                  .map((t) => t.name)
                  .join(', ')}`,
              );
            return { template: `${made.template.name} ${made.template.version}`, files: made.files };
          },
        ),
        (out) =>
          answer(
            out,
            `Scaffolded ${args.name} from ${out.template}: ${Object.keys(out.files).length} files (in structuredContent.files). microapp.yaml:\n${out.files['microapp.yaml'] ?? ''}`,
          ),
      ),
  );

  server.registerTool(
    'assess_manifest',
    {
      title: 'Assess a manifest without registering it',
      description:
        "Scores a microapp.yaml manifest (as a JSON object) with the organization's risk policy without writing anything: the tier (low, medium, high), the reasons, the reviews it would need, and whether registering it would wait for the person you act for.",
      inputSchema: {
        manifest: z.record(z.unknown()).describe('The manifest, as a JSON object'),
        instruction,
      },
      annotations: { readOnlyHint: true },
    },
    async (args) => {
      let facts: CallFacts = {};
      let manifest: ManifestValue | null = null;
      try {
        manifest = manifestOf(args.manifest);
        facts = await registrationFacts(deps, session, manifest);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
      }
      return outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'assess_manifest',
            app: manifest?.name ?? null,
            input: { manifest: args.manifest },
            instruction: args.instruction,
            facts,
          },
          async () => {
            const m = manifestOf(args.manifest);
            const a = await deps.catalog.assess(person, m);
            const verdict = await deps.gate.decide(session, 'register_app', facts);
            const policy = a.policy.denials.map((d) =>
              d.blocked ? `${d.message} (blocked by ${d.blocked.by}: ${d.blocked.reason})` : d.message,
            );
            return {
              tier: a.tier,
              score: a.score,
              reasons: a.factors.map((f) => `${f.points >= 0 ? '+' : ''}${f.points} ${f.explanation}`),
              requiredReviews: a.requiredReviews,
              meaning: a.meaning,
              registering: policy.length
                ? { would: 'be refused by the organization policy', reasons: policy }
                : verdict.refuse.length
                  ? { would: 'be refused', reasons: verdict.refuse }
                  : verdict.ask.length
                    ? { would: `wait for ${person.email} to approve`, reasons: verdict.ask }
                    : { would: 'go ahead', reasons: [] },
            };
          },
        ),
        (out) => answer(out),
      );
    },
  );

  server.registerTool(
    'register_app',
    {
      title: 'Register an app (or change its manifest)',
      description: `Registers an app in the catalog with its microapp.yaml manifest (a JSON object), or registers a changed manifest of an app ${person.email} owns. Low-tier apps are approved at once; medium and high wait for reviewers (people). Adding personal or other sensitive data, an outside host, a connector or a secret waits for ${person.email} to approve first.`,
      inputSchema: {
        manifest: z.record(z.unknown()).describe('The manifest, as a JSON object'),
        instruction,
      },
    },
    async (args) => {
      let facts: CallFacts = {};
      let name: string | null = null;
      try {
        const m = manifestOf(args.manifest);
        name = m.name;
        facts = await registrationFacts(deps, session, m);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
      }
      return outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'register_app',
            app: name,
            input: { manifest: args.manifest },
            instruction: args.instruction,
            facts,
          },
          async () => {
            const outcome = await deps.catalog.register(person, manifestOf(args.manifest), session.ctx);
            if (outcome.kind === 'denied')
              throw new AppError(
                'policy_denied',
                `policy revision ${outcome.revision} denied the registration: ${outcome.denials.map((d) => d.message).join('; ')}`,
              );
            return outcome;
          },
        ),
        (outcome) => {
          const app = outcome.app;
          const missing = app.approval.missing.map((s) =>
            s.specialty ? `${s.specialty} review` : 'a review',
          );
          const next =
            app.state === 'approved'
              ? `Approved. Build it with build_app (name ${app.name}).`
              : `It waits for reviewers (${missing.join(', ') || 'none'}); people decide, you cannot. Read app_status later.`;
          return answer(
            {
              outcome: outcome.kind,
              name: app.name,
              state: app.state,
              tier: app.tier,
              score: app.assessment.score,
              missingReviews: missing,
              next,
            },
            `${outcome.kind === 'created' ? 'Registered' : outcome.kind === 'updated' ? 'Updated' : 'Unchanged:'} ${app.name}: ${app.state}, ${app.tier} tier (score ${app.assessment.score}). ${next}`,
          );
        },
      );
    },
  );
}
