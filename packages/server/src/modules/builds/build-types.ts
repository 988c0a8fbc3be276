import type { BuildsTable } from '../../db/schema.ts';
import type { FormField } from './form-fields.ts';

export type BuildStep = {
  step: string;
  status: 'passed' | 'failed' | 'skipped';
  durationMs: number;
  detail: string;
  next?: string;
};

export type BuildView = {
  id: string;
  app: string;
  requestedBy: string;
  source: 'template' | 'upload' | 'commit';
  /** A build of a repository commit: which one, and whether it published (a change request's check does not). */
  commit: { sha: string; ref: string; change: number | null; publish: boolean } | null;
  state: 'queued' | 'running' | 'passed' | 'failed';
  deploy: boolean;
  steps: BuildStep[];
  /** How many steps the pipeline has, for progress. */
  total: number;
  version: string | null;
  digest: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Where the app answers, once the build deployed it. */
  url: string | null;
  /** The form builder's questions this build used (template builds of a form). */
  fields: FormField[] | null;
};

export type BuildRequest =
  | { kind: 'template'; fields?: FormField[]; deploy: boolean }
  | { kind: 'upload'; archive: Buffer; deploy: boolean }
  | {
      kind: 'commit';
      /** The commit's files (`git archive`), unpacked like an upload. */
      archive: Buffer;
      commit: string;
      ref: string;
      repository: string;
      /** The change request it belongs to. */
      change: number;
      /** False for a change request's check: the pipeline stops before signing. */
      publish: boolean;
      deploy: boolean;
    };

/** What a commit build keeps in its settings (and the provenance of what it publishes names). */
export type CommitSource = {
  commit: string;
  ref: string;
  repository: string;
  change: number;
  publish: boolean;
};

/** What a build keeps of its request: a form's questions, the agent session that asked, the commit. */
export function buildSettings(input: BuildRequest, agentDelegation: string | undefined) {
  return {
    ...(input.kind === 'template' && input.fields ? { fields: input.fields } : {}),
    // A build an agent asked for: the version it publishes carries the agent session's record.
    ...(agentDelegation ? { agentDelegation } : {}),
    ...(input.kind === 'commit'
      ? {
          source: {
            commit: input.commit,
            ref: input.ref,
            repository: input.repository,
            change: input.change,
            publish: input.publish,
          } satisfies CommitSource,
        }
      : {}),
  };
}

/** The audit trail's summary of a build request. */
export function requestSummary(
  id: string,
  input: BuildRequest,
  template: { name: string; version: string } | undefined,
) {
  return {
    build: id,
    source:
      input.kind === 'template'
        ? `template ${template?.name} ${template?.version}`
        : input.kind === 'commit'
          ? `commit ${input.commit} (${input.ref}, change #${input.change})`
          : 'upload',
    ...(input.kind === 'commit' ? { commit: input.commit, publish: input.publish } : {}),
    deploy: input.deploy,
    ...(input.kind === 'template' && input.fields ? { formFields: input.fields.map((f) => f.id) } : {}),
    ...(input.kind !== 'template' ? { archiveBytes: input.archive.length } : {}),
  };
}

/** The pipeline's steps (`microapp ci`); a build adds its source step, and a deploy when asked. */
export const pipelineSteps = 10;

/** A build as the API shows it. */
export function buildView(row: BuildsTable, appUrl: (site: string) => string): BuildView {
  const settings = JSON.parse(row.settings) as { fields?: FormField[]; source?: CommitSource };
  return {
    id: row.id,
    app: row.app_name,
    requestedBy: row.requested_by,
    source: row.source as BuildView['source'],
    state: row.state as BuildView['state'],
    deploy: Boolean(Number(row.deploy)),
    steps: JSON.parse(row.steps) as BuildStep[],
    // The source step, the pipeline's own, and the deploy when asked.
    total: 1 + pipelineSteps + (Number(row.deploy) ? 1 : 0),
    version: row.version,
    digest: row.digest,
    error: row.error,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    url: row.state === 'passed' && Number(row.deploy) ? appUrl(row.app_name) : null,
    fields: settings.fields ?? null,
    commit: settings.source
      ? {
          sha: settings.source.commit,
          ref: settings.source.ref,
          change: settings.source.change ?? null,
          publish: settings.source.publish,
        }
      : null,
  };
}
