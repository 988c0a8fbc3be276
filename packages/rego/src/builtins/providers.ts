/**
 * providers.aws.sign_req: AWS Signature Version 4 for a request object in http.send's shape, computed
 * as OPA computes it (the same canonical request, so the same signature for the same inputs).
 */
import { createHash, createHmac } from 'node:crypto';
import { BigNum, RObject, toJSON, type Value } from '../value.ts';
import { def, obj, operandError, typeError } from './registry.ts';

/** The request keys http.send accepts; sign_req checks requests as strictly. */
const requestKeys = new Set([
  'method',
  'url',
  'body',
  'raw_body',
  'headers',
  'enable_redirect',
  'force_json_decode',
  'force_yaml_decode',
  'tls_use_system_certs',
  'tls_ca_cert',
  'tls_ca_cert_file',
  'tls_ca_cert_env_variable',
  'tls_client_cert',
  'tls_client_cert_file',
  'tls_client_cert_env_variable',
  'tls_client_key',
  'tls_client_key_file',
  'tls_client_key_env_variable',
  'tls_insecure_skip_verify',
  'tls_server_name',
  'timeout',
  'cache',
  'force_cache',
  'force_cache_duration_seconds',
  'raise_error',
  'caching_mode',
  'max_retry_attempts',
  'cache_ignored_headers',
]);
const configKeys = ['aws_access_key', 'aws_region', 'aws_secret_access_key', 'aws_service'];
/** Headers a proxy may change on the way, left out of the signature as the AWS SDK leaves them out. */
const ignoredHeaders = new Set(['authorization', 'user-agent', 'x-amzn-trace-id']);

const setText = (names: string[]) => `{${names.map((n) => JSON.stringify(n)).join(', ')}}`;
const text = (v: Value | undefined) => (typeof v === 'string' ? v : '');

/** The path as Go's URL.EscapedPath gives it: as written when that is valid escaping, else escaped. */
function escapedPath(path: string): string {
  if (/^([A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/.test(path)) return path;
  return encodeURI(decodeURIComponent(path.replace(/%(?![0-9A-Fa-f]{2})/g, '%25')));
}

/** Host, path and raw query of a URL, split as Go's url.Parse splits them. */
function splitUrl(url: string): { host: string; path: string; query: string } {
  const noFragment = url.split('#')[0]!;
  const q = noFragment.indexOf('?');
  const beforeQuery = q >= 0 ? noFragment.slice(0, q) : noFragment;
  const query = q >= 0 ? noFragment.slice(q + 1) : '';
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/]*)(.*)$/.exec(beforeQuery);
  if (!m) return { host: '', path: beforeQuery.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, ''), query };
  const authority = m[1]!;
  return { host: authority.slice(authority.lastIndexOf('@') + 1), path: m[2]!, query };
}

/** JSON as Go's json.Marshal writes it: compact, with <, > and & escaped. */
const goJson = (v: Value) =>
  JSON.stringify(toJSON(v)).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function pad(n: number, width = 2) {
  return String(n).padStart(width, '0');
}

def('providers.aws.sign_req', 3, (args) => {
  const req = obj(args, 0);
  const config = obj(args, 1);
  const missingConfig = configKeys.filter((k) => config.get(k) === undefined);
  if (missingConfig.length)
    throw typeError(`operand 2 missing required AWS config parameters(s): ${setText(missingConfig)}`);
  const badConfig = configKeys.filter((k) => typeof config.get(k) !== 'string');
  if (badConfig.length)
    throw typeError(`operand 2 invalid values for required AWS config parameters(s): ${setText(badConfig)}`);
  const t = args[2]!;
  if (typeof t !== 'number' && !(t instanceof BigNum)) throw operandError(2, 'number', t);
  const ns = t instanceof BigNum ? t.big : Number.isInteger(t) ? BigInt(t) : null;
  if (ns === null) throw typeError('operand 3 could not convert time_ns value into a unix timestamp');

  const keys = [...req.sortedEntries()].map(([k]) => k);
  const missing = ['method', 'url'].filter((k) => req.get(k) === undefined);
  if (missing.length)
    throw typeError(`operand 1 missing required request parameters(s): ${setText(missing)}`);
  const unknown = keys.filter((k) => typeof k !== 'string' || !requestKeys.has(k));
  if (unknown.length)
    throw typeError(
      `operand 1 invalid request parameters(s): ${setText(unknown.map((k) => String(toJSON(k))))}`,
    );
  const headersValue = req.get('headers');
  if (headersValue !== undefined && !(headersValue instanceof RObject))
    throw operandError(0, 'object', headersValue);
  const invalid = ['method', 'url'].filter((k) => typeof req.get(k) !== 'string');
  if (invalid.length)
    throw typeError(`operand 1 invalid values for required request parameters(s): ${setText(invalid)}`);
  const disable = config.get('disable_payload_signing');
  if (disable !== undefined && typeof disable !== 'boolean')
    throw typeError("operand 2 invalid value for 'disable_payload_signing' in AWS config");

  const service = text(config.get('aws_service'));
  const region = text(config.get('aws_region'));
  const token = text(config.get('aws_session_token'));
  const method = text(req.get('method'));
  const url = splitUrl(text(req.get('url')));
  const rawBody = req.get('raw_body');
  const body = req.get('body');
  const payload = rawBody !== undefined ? text(rawBody) : body !== undefined ? goJson(body) : '';
  const contentSha = disable === true ? 'UNSIGNED-PAYLOAD' : sha256(payload);

  const d = new Date(Number(ns / 1_000_000n));
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
  const stamp = `${date}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;

  const awsHeaders: Record<string, string> = { host: url.host, 'x-amz-date': stamp };
  if (service === 's3' || service === 'glacier') awsHeaders['x-amz-content-sha256'] = contentSha;
  if (token) awsHeaders['x-amz-security-token'] = token;

  const original = new Map<string, string>();
  const toSign = new Map<string, string>(Object.entries(awsHeaders));
  for (const [k, v] of headersValue instanceof RObject ? headersValue.sortedEntries() : []) {
    const name = typeof k === 'string' ? k : '';
    const value = typeof v === 'string' ? v : '';
    original.set(name, value);
    if (!ignoredHeaders.has(name.toLowerCase())) toSign.set(name.toLowerCase(), value);
  }
  const ordered = [...toSign.keys()].sort();
  const signedHeaders = ordered.join(';');
  const canonical = [
    method,
    escapedPath(url.path),
    url.query,
    ...ordered.map((k) => `${k}:${toSign.get(k)}`),
    '',
    signedHeaders,
    contentSha,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${sha256(canonical)}`;
  let key = hmac(`AWS4${text(config.get('aws_secret_access_key'))}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = hmac(key, stringToSign).toString('hex');

  const headers = new RObject();
  for (const [k, v] of original) headers.set(k, v);
  headers.set(
    'Authorization',
    `AWS4-HMAC-SHA256 Credential=${text(config.get('aws_access_key'))}/${scope},SignedHeaders=${signedHeaders},Signature=${signature}`,
  );
  for (const [k, v] of Object.entries(awsHeaders)) headers.set(k, v);
  const out = new RObject();
  for (const [k, v] of req.sortedEntries()) out.set(k, v);
  out.set('headers', headers);
  return out;
});
