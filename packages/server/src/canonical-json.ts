import canonicalizeModule from 'canonicalize';

// canonicalize is CommonJS with an ES-style declaration; at run time the default import is the function itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** RFC 8785 (JCS) canonical JSON: sorted keys, no white space, one spelling per number. */
export function canonicalJson(value: unknown): string {
  const out = canonicalize(value);
  if (out === undefined) throw new Error('value cannot be represented as canonical JSON');
  return out;
}
