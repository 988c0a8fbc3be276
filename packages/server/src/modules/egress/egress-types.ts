import type { Manifest } from '../catalog/manifest-schema.ts';
import type { DlpFinding } from './dlp.ts';

/** The app a broker socket belongs to: the socket itself says who is calling, no header can. */
export type BrokeredApp = {
  name: string;
  appId: string;
  version: string;
  manifest: Manifest;
  department: string | null;
  tier: string;
  owner: string;
};

export type EgressDecision =
  | {
      allowed: true;
      host: string;
      port: number;
      address: string;
      scheme: 'http' | 'https';
      /** What the app asked for: a host, or `connector.ID`. */
      target: string;
      /** The path and query upstream (a connector's base path comes first). */
      path: string;
      /** A connector's credential header, added by the broker only. */
      inject?: [string, string];
      /** The body to send instead of the app's: its personal data masked, uncompressed. */
      body?: Buffer;
      /** A call to a model connector: its wire format and model, so that the answer's tokens are counted. */
      model?: import('./model-calls.ts').ModelCall;
      /** What DLP masked or let through flagged (audited, and told to the app in a response header). */
      dlp?: { masked: DlpFinding[]; flagged: DlpFinding[] };
    }
  | { allowed: false; status: number; reason: string; host: string | null; findings?: DlpFinding[] };

export type Refusal = Extract<EgressDecision, { allowed: false }>;

/** A kind of personal data as people read it ("card number"). */
export const kindName = (kind: string) => kind.replace('_', ' ');

/** The largest request body the broker reads (and so DLP inspects). */
export const maxBody = 5 * 1024 * 1024;
