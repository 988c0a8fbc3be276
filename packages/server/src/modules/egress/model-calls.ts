import type { ModelApi } from '../connectors/connector-service.ts';
import { redactor } from '../runtime/redact.ts';
import type { BrokeredApp, Refusal } from './egress-types.ts';

/** A call to a model API as the broker sees it: the wire format and the model the body names. */
export type ModelCall = { api: ModelApi; model: string | null };

/** What the answer says it used. */
export type TokenUsage = { input: number; output: number };

/** The most of an answer the broker keeps to count its tokens; a longer one is passed on uncounted. */
export const maxCountedAnswer = 5 * 1024 * 1024;

/**
 * The checks on a call to a model connector, before DLP: the body is JSON naming a model the organization
 * approved for every data class of the app (the `microapp.models` pack), and carries none of the app's own
 * secrets, in any form the log redaction knows (plain, base64, hex, URL or JSON escapes).
 */
export async function checkModelCall(
  deps: {
    refuseModel?: (input: { model: string | null; dataClasses: string[]; app: string }) => Promise<string[]>;
    secretsOf?: (app: BrokeredApp) => Record<string, string> | undefined;
  },
  app: BrokeredApp,
  api: ModelApi,
  asked: string,
  method: string,
  body: Buffer,
): Promise<Refusal | { call: ModelCall }> {
  const refuse = (reason: string, status = 403): Refusal => ({ allowed: false, status, host: asked, reason });
  if (method !== 'POST') return { call: { api, model: null } };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return refuse(`a call to the model API ${asked} must have a JSON body`, 400);
  }
  const model =
    parsed && typeof parsed === 'object' && typeof (parsed as { model?: unknown }).model === 'string'
      ? (parsed as { model: string }).model
      : null;
  const refusals = deps.refuseModel
    ? await deps.refuseModel({ model, dataClasses: app.manifest.dataClasses, app: app.name })
    : [];
  if (refusals.length) return refuse(`policy: ${refusals.join('; ')}`);
  const secrets = deps.secretsOf?.(app);
  if (secrets && Object.keys(secrets).length) {
    const text = body.toString('utf8');
    const redacted = redactor(secrets)(text);
    if (redacted !== text) {
      const names = Object.keys(secrets).filter((n) => redacted.includes(`[redacted:${n}]`));
      return refuse(
        `the request to ${asked} carries the app's secret${names.length === 1 ? '' : 's'} ${names.join(', ') || '(one of them)'}; a model is never sent a credential`,
      );
    }
  }
  return { call: { api, model } };
}

const numberAt = (o: unknown, ...path: string[]): number | null => {
  let v: unknown = o;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
};

/**
 * The tokens one JSON object of an answer reports (a whole answer, or one event of a stream): OpenAI's chat
 * and embeddings (`prompt_tokens`, `completion_tokens`), its responses API and Anthropic's messages
 * (`input_tokens`, `output_tokens`), and Anthropic's stream, whose `message_start` carries them under `message`.
 */
function usageIn(o: unknown): Partial<TokenUsage> {
  const first = (...paths: string[][]) => {
    for (const p of paths) {
      const n = numberAt(o, ...p);
      if (n !== null) return n;
    }
    return null;
  };
  const input = first(
    ['usage', 'prompt_tokens'],
    ['usage', 'input_tokens'],
    ['message', 'usage', 'input_tokens'],
  );
  const output = first(
    ['usage', 'completion_tokens'],
    ['usage', 'output_tokens'],
    ['message', 'usage', 'output_tokens'],
  );
  return { ...(input !== null ? { input } : {}), ...(output !== null ? { output } : {}) };
}

/** The tokens an answer used, from its JSON body or its server-sent events; null when it does not say. */
export function tokenUsage(contentType: string | undefined, answer: Buffer): TokenUsage | null {
  const text = answer.toString('utf8');
  const found: Partial<TokenUsage> = {};
  const take = (o: unknown) => {
    const u = usageIn(o);
    if (u.input !== undefined) found.input = Math.max(found.input ?? 0, u.input);
    if (u.output !== undefined) found.output = Math.max(found.output ?? 0, u.output);
  };
  if ((contentType ?? '').includes('text/event-stream')) {
    for (const line of text.split('\n')) {
      const data = /^data:\s?(.*)$/.exec(line.trimEnd())?.[1];
      if (!data || data === '[DONE]') continue;
      try {
        take(JSON.parse(data));
      } catch {}
    }
  } else {
    try {
      take(JSON.parse(text));
    } catch {
      return null;
    }
  }
  return found.input === undefined && found.output === undefined
    ? null
    : { input: found.input ?? 0, output: found.output ?? 0 };
}
