import { AppError } from '../errors.ts';

/**
 * A token bucket per caller, for endpoints whose cost the caller controls (policy evaluations, tests and
 * pushes): `burst` requests at once, then `perSecond` more each second. In memory, per replica: it keeps
 * one person from starving everyone else on a replica, not an exact count across replicas.
 * @example const limit = perCallerLimit({ burst: 20, perSecond: 2 }); limit(principal.userId, 'policy evaluations');
 */
export function perCallerLimit(options: { burst: number; perSecond: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (caller: string, what: string) => {
    const t = now();
    if (buckets.size > 10_000)
      for (const [k, b] of buckets)
        if (t - b.at > (options.burst / options.perSecond) * 1000) buckets.delete(k);
    const b = buckets.get(caller) ?? { tokens: options.burst, at: t };
    b.tokens = Math.min(options.burst, b.tokens + ((t - b.at) / 1000) * options.perSecond);
    b.at = t;
    buckets.set(caller, b);
    if (b.tokens < 1) {
      const wait = Math.ceil((1 - b.tokens) / options.perSecond);
      throw new AppError(
        'rate_limited',
        `too many ${what} from you in a short time; wait ${wait} s and try again (at most ${options.perSecond} a second after a burst of ${options.burst})`,
      );
    }
    b.tokens -= 1;
  };
}
