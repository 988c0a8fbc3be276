import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { BuildService } from '../builds/build-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { LifecycleService } from '../lifecycle/lifecycle-service.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { DeploymentService } from '../runtime/deployment-service.ts';
import type { AgentGate, AgentSession, GateOutcome } from './agent-gate.ts';
import type { CheckpointService } from './checkpoint-service.ts';

/** What the MCP tools reach: the same services the REST API calls, as the agent's narrowed principal. */
export type McpDeps = {
  gate: Pick<AgentGate, 'run' | 'decide'>;
  checkpoints: Pick<CheckpointService, 'get'>;
  catalog: Pick<CatalogService, 'get' | 'assess' | 'register'>;
  builds: Pick<BuildService, 'request' | 'get' | 'list'>;
  deployments: Pick<DeploymentService, 'deploy' | 'logs' | 'history'>;
  lifecycle: Pick<LifecycleService, 'decommissionNow'>;
  engine: Pick<PolicyEngine, 'current'>;
  templatesDir: string;
  publicUrl: () => string;
  appUrl: (site: string) => string;
  /** How often a build's progress is looked at while a tool waits for it. */
  buildPollMs?: number;
};

/** Every tool takes an optional instruction: what the person asked, kept (redacted) with the call. */
export const instruction = z
  .string()
  .max(8000)
  .optional()
  .describe(
    "Optional: the person's request that led to this call, in their words. It is kept with the call for the audit trail, with personal data masked and credentials removed.",
  );

export const appName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,52}[a-z0-9])?$/)
  .describe('The app name: a DNS label (lower-case letters, digits, single hyphens), at most 54 characters');

/** A tool's answer: readable text for the model, and the same as structured content. */
export function answer(data: Record<string, unknown>, text?: string, isError = false): CallToolResult {
  return {
    content: [{ type: 'text', text: text ?? JSON.stringify(data, null, 2) }],
    structuredContent: data,
    ...(isError ? { isError: true } : {}),
  };
}

/** A gated call's outcome as the agent receives it: done, refused with reasons, or waiting for the person. */
export function outcomeAnswer<T>(
  deps: Pick<McpDeps, 'publicUrl'>,
  outcome: GateOutcome<T>,
  done: (output: T) => CallToolResult,
): CallToolResult {
  switch (outcome.kind) {
    case 'done':
      return done(outcome.output);
    case 'refused':
      return answer(
        { status: 'refused', reasons: outcome.reasons, checkpoint: outcome.checkpoint?.id ?? null },
        `Refused: ${outcome.reasons.join('; ')}. Do not retry the same call; change what you ask, or ask the person to do it themselves.`,
        true,
      );
    case 'waiting': {
      const url = `${deps.publicUrl()}/agents/requests/${outcome.checkpoint.id}`;
      return answer(
        {
          status: 'waiting_for_approval',
          checkpoint: outcome.checkpoint.id,
          person: outcome.checkpoint.person,
          reasons: outcome.checkpoint.reasons,
          url,
          expiresAt: outcome.checkpoint.expiresAt,
        },
        `Waiting for ${outcome.checkpoint.person} to approve: this call ${outcome.checkpoint.reasons.join('; ')}. They can answer at ${url} (or with \`microapp agents approve ${outcome.checkpoint.id}\`). Tell them, then call checkpoint_status with ${outcome.checkpoint.id}; once it is approved, make the same call again with the same arguments.`,
      );
    }
    case 'failed':
      return answer({ status: 'failed', error: outcome.message }, `Failed: ${outcome.message}`, true);
    default:
      return outcome satisfies never;
  }
}

/** The app as the agent's person sees it, or null when they cannot see one by that name. */
export async function visibleApp(deps: Pick<McpDeps, 'catalog'>, session: AgentSession, name: string) {
  try {
    return await deps.catalog.get(session.principal, name);
  } catch (error) {
    if (error instanceof AppError && (error.code === 'not_found' || error.code === 'forbidden')) return null;
    throw error;
  }
}

export type ToolRegistrar = (session: AgentSession) => void;
