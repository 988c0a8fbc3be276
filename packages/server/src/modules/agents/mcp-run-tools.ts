import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { create as createTar } from 'tar';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { BuildView } from '../builds/build-types.ts';
import type { AgentSession, CallFacts } from './agent-gate.ts';
import { answer, appName, instruction, type McpDeps, outcomeAnswer, visibleApp } from './mcp-common.ts';

/** What an agent may upload as an app's source: text files, within these bounds. */
export const sourceLimits = { files: 500, bytes: 5 * 1024 * 1024 };
const safePath = /^(?!.*(?:^|\/)\.\.?(?:\/|$))(?!\/)[A-Za-z0-9._@+-]+(?:\/[A-Za-z0-9._@+-]+)*$/;

/** The files as the source archive a build takes (tar.gz), after checking every path and the sizes. */
async function archiveOf(files: Record<string, string>): Promise<Buffer> {
  const names = Object.keys(files).sort();
  if (names.length === 0 || names.length > sourceLimits.files)
    throw new AppError('bad_request', `send 1 to ${sourceLimits.files} files`);
  let bytes = 0;
  for (const n of names) {
    if (!safePath.test(n) || n.length > 300 || n.split('/').includes('node_modules'))
      throw new AppError(
        'bad_request',
        `file path ${JSON.stringify(n)} must be relative, inside the app, without . or .. parts, and not under node_modules (dependencies come from the lockfile)`,
      );
    bytes += Buffer.byteLength(files[n]!);
  }
  if (bytes > sourceLimits.bytes)
    throw new AppError('payload_too_large', `the files hold ${bytes} bytes; at most ${sourceLimits.bytes}`);
  const dir = mkdtempSync(join(tmpdir(), 'microapp-agent-source-'));
  try {
    for (const n of names) {
      mkdirSync(dirname(join(dir, 'src', n)), { recursive: true });
      writeFileSync(join(dir, 'src', n), files[n]!);
    }
    await createTar(
      { gzip: true, cwd: join(dir, 'src'), file: join(dir, 'source.tar.gz'), portable: true },
      names,
    );
    return readFileSync(join(dir, 'source.tar.gz'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The app's facts for the policy, or none when the person cannot see it (the call then fails plainly). */
async function appFacts(deps: McpDeps, session: AgentSession, name: string): Promise<CallFacts> {
  const app = await visibleApp(deps, session, name);
  return app ? { app: { exists: true, tier: app.tier, dataClasses: app.manifest.dataClasses } } : {};
}

const buildSummary = (b: BuildView) => ({
  id: b.id,
  state: b.state,
  version: b.version,
  error: b.error,
  steps: b.steps.map((s) => `${s.step}: ${s.status}${s.next ? ` (${s.next})` : ''}`),
});

/** Build, deploy, status, logs, decommission, escalation and checkpoint status. */
export function registerRunTools(server: McpServer, deps: McpDeps, session: AgentSession) {
  const person = session.principal;
  const pollMs = deps.buildPollMs ?? 1000;

  server.registerTool(
    'build_app',
    {
      title: 'Build an app on the platform',
      description:
        "Runs the platform pipeline on an approved app (install from the lockfile, tests, SBOM, vulnerability scan, policy checks, signature, provenance) and publishes a signed version. Send the app's files (text, paths relative to the app folder, with package.json and package-lock.json), or none to build the app from its template. Reports progress while it runs; takes a minute or more.",
      inputSchema: {
        name: appName,
        files: z
          .record(z.string())
          .optional()
          .describe('The source files: path → content. Omit to build from the template.'),
        instruction,
      },
    },
    async (args, extra) => {
      const input = { name: args.name, ...(args.files ? { files: args.files } : {}) };
      const progressToken = extra._meta?.progressToken;
      const progress = async (n: number, total: number, message: string) => {
        if (progressToken !== undefined)
          await extra
            .sendNotification({
              method: 'notifications/progress',
              params: { progressToken, progress: n, total, message },
            })
            .catch(() => {});
      };
      return outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'build_app',
            app: args.name,
            input,
            instruction: args.instruction,
            facts: await appFacts(deps, session, args.name),
          },
          async () => {
            const request = args.files
              ? { kind: 'upload' as const, archive: await archiveOf(args.files), deploy: false }
              : { kind: 'template' as const, deploy: false };
            let build = await deps.builds.request(person, args.name, request, session.ctx);
            const deadline = Date.now() + 20 * 60_000;
            let reported = -1;
            while (
              (build.state === 'queued' || build.state === 'running') &&
              Date.now() < deadline &&
              !extra.signal.aborted
            ) {
              if (build.steps.length !== reported) {
                reported = build.steps.length;
                const last = build.steps.at(-1);
                await progress(
                  build.steps.length,
                  build.total,
                  last ? `${last.step}: ${last.status}` : build.state,
                );
              }
              await new Promise((r) => setTimeout(r, pollMs));
              build = await deps.builds.get(person, args.name, build.id);
            }
            await progress(build.total, build.total, build.state);
            return buildSummary(build);
          },
        ),
        (b) =>
          answer(
            b,
            b.state === 'passed'
              ? `Built ${args.name} ${b.version}. Deploy it with deploy_app (environment preview).`
              : `The build ${b.id} ${b.state}: ${b.error ?? 'still running; read app_status'}\n${b.steps.join('\n')}`,
            b.state === 'failed',
          ),
      );
    },
  );

  server.registerTool(
    'deploy_app',
    {
      title: 'Deploy a version',
      description: `Runs a published version of an approved app. environment "preview" is for ${person.email} and reviewers to try; "live" is for the app's audience and is refused unless the delegation allows it for the app's tier (and then waits for ${person.email}).`,
      inputSchema: {
        name: appName,
        version: z
          .string()
          .regex(/^\d+\.\d+\.\d+(?:[-+][\w.-]+)?$/)
          .describe('A version build_app published'),
        environment: z.enum(['preview', 'live']).default('preview'),
        instruction,
      },
    },
    async (args) => {
      const facts = { ...(await appFacts(deps, session, args.name)), environment: args.environment };
      return outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'deploy_app',
            app: args.name,
            input: { name: args.name, version: args.version, environment: args.environment },
            instruction: args.instruction,
            facts,
          },
          () => deps.deployments.deploy(person, args.name, args.version, session.ctx, args.environment),
        ),
        (d) => {
          const url = deps.appUrl(args.environment === 'live' ? args.name : `${args.name}--preview`);
          return answer(
            { deployment: d.id, version: d.version, environment: args.environment, state: d.state, url },
            `${args.name} ${d.version} runs in ${args.environment} at ${url}`,
          );
        },
      );
    },
  );

  server.registerTool(
    'app_status',
    {
      title: "Read an app's status",
      description:
        'Where an app stands: its state and tier, the reviews it still waits for, its last builds, where it runs, and what to do next.',
      inputSchema: { name: appName, instruction },
      annotations: { readOnlyHint: true },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'app_status',
            app: args.name,
            input: { name: args.name },
            instruction: args.instruction,
            facts: {},
          },
          async () => {
            const app = await deps.catalog.get(person, args.name);
            const builds = (await deps.builds.list(person, args.name)).slice(0, 3).map(buildSummary);
            const running = (await deps.deployments.history(person, args.name))
              .filter((d) => d.state === 'running' || d.state === 'idle')
              .map((d) => ({ environment: d.env, version: d.version, url: d.url }));
            const missing = app.approval.missing.map((s) =>
              s.specialty ? `${s.specialty} review` : 'a review',
            );
            const next =
              app.state === 'approved'
                ? running.length
                  ? 'It runs; change it with register_app and build_app.'
                  : 'Build it (build_app), then deploy_app to preview.'
                : app.state === 'pending_review'
                  ? `Reviewers decide (${missing.join(', ')}); tell ${person.email} it waits.`
                  : `It is ${app.state.replace('_', ' ')}; ${person.email} or a reviewer can say what is next.`;
            return {
              name: app.name,
              state: app.state,
              tier: app.tier,
              score: app.assessment.score,
              missingReviews: missing,
              builds,
              running,
              next,
            };
          },
        ),
        (out) => answer(out),
      ),
  );

  server.registerTool(
    'app_logs',
    {
      title: "Read an app's logs",
      description:
        'The last lines an app printed in an environment (secrets redacted), to find why it failed.',
      inputSchema: {
        name: appName,
        environment: z.enum(['preview', 'live']).default('preview'),
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
            tool: 'app_logs',
            app: args.name,
            input: { name: args.name, environment: args.environment },
            instruction: args.instruction,
            facts: {},
          },
          () => deps.deployments.logs(person, args.name, { env: args.environment, limit: 200 }),
        ),
        (out) => answer(out as unknown as Record<string, unknown>),
      ),
  );

  server.registerTool(
    'decommission_app',
    {
      title: 'Decommission an app',
      description: `Stops an app for good, revokes its credentials and archives it. Always waits for ${person.email} to approve.`,
      inputSchema: { name: appName, reason: z.string().min(3).max(500), instruction },
      annotations: { destructiveHint: true },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'decommission_app',
            app: args.name,
            input: { name: args.name, reason: args.reason },
            instruction: args.instruction,
            facts: await appFacts(deps, session, args.name),
          },
          async () => {
            await deps.lifecycle.decommissionNow(person, args.name, args.reason, session.ctx);
            return { name: args.name, decommissioned: true };
          },
        ),
        (out) => answer(out, `${args.name} is decommissioned and archived.`),
      ),
  );

  server.registerTool(
    'request_escalation',
    {
      title: 'Ask the person for something this delegation does not allow',
      description: `Asks ${person.email} for something beyond what you may do (a deploy to live, a higher tier, more builds today), with your reasons. They answer in the console; call checkpoint_status to read the answer. An approval does not change the delegation: it tells you the person agrees, and they act.`,
      inputSchema: {
        name: appName.optional(),
        request: z.string().min(10).max(1000).describe('What you ask for and why, for a person to read'),
        instruction,
      },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          {
            tool: 'request_escalation',
            app: args.name ?? null,
            input: { name: args.name ?? null, request: args.request },
            instruction: args.instruction,
            facts: { request: args.request },
          },
          async () => ({ approved: true }),
        ),
        () => answer({ status: 'approved' }, `${person.email} approved your request.`),
      ),
  );

  server.registerTool(
    'checkpoint_status',
    {
      title: 'Read the answer to a request waiting for the person',
      description: `Whether ${person.email} approved or refused a call that waited for them (the checkpoint id a tool returned). Once approved, make the same call again with the same arguments.`,
      inputSchema: { checkpoint: z.string().regex(/^chk_[0-9a-z]{20}$/) },
      annotations: { readOnlyHint: true },
    },
    async (args) =>
      outcomeAnswer(
        deps,
        await deps.gate.run(
          session,
          { tool: 'checkpoint_status', app: null, input: { checkpoint: args.checkpoint }, facts: {} },
          async () => {
            const c = await deps.checkpoints.get(person, args.checkpoint);
            if (c.delegation !== person.agent!.delegationId)
              throw new AppError('not_found', `no request ${args.checkpoint} of yours`);
            return c;
          },
        ),
        (c) =>
          answer(
            {
              checkpoint: c.id,
              state: c.state,
              tool: c.tool,
              app: c.app,
              decidedBy: c.decidedBy,
              note: c.note,
            },
            c.state === 'approved'
              ? `Approved by ${c.decidedBy}. Make the same ${c.tool} call again with the same arguments.`
              : c.state === 'pending'
                ? `Still waiting for ${c.person}.`
                : `${c.state}${c.decidedBy ? ` by ${c.decidedBy}` : ''}${c.note ? `: ${c.note}` : ''}.`,
          ),
      ),
  );
}
