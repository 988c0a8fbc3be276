import { isIP } from 'node:net';

/** A host name as the broker compares it: lower case, no trailing dot, no brackets, no port. */
export function normalizeHost(raw: string): { host: string; port: number | null } | null {
  let value = raw.trim().toLowerCase();
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) {
    value = bracketed[1]!;
    port = bracketed[2] ? Number(bracketed[2]) : null;
  } else {
    const m = /^([^:]+):(\d+)$/.exec(value);
    if (m) {
      value = m[1]!;
      port = Number(m[2]);
    }
  }
  value = value.replace(/\.+$/, '');
  if (!value || (port !== null && (port < 1 || port > 65535))) return null;
  // Internationalized names are compared in their ASCII (punycode) form.
  try {
    if (!isIP(value)) value = new URL(`http://${value}`).hostname;
  } catch {
    return null;
  }
  return { host: value, port };
}

const v4 = (a: string) => a.split('.').map(Number) as [number, number, number, number];

/**
 * Whether an address is on the public internet. Loopback, private (RFC 1918, unique local), link-local
 * (which holds the cloud metadata service, 169.254.169.254), carrier-grade NAT, unspecified, multicast,
 * broadcast, documentation and IPv4-mapped or -translated forms of any of these are not: the broker never
 * connects to them, whatever name resolved to them (Smokescreen's rule).
 */
export function isPublicAddress(address: string): boolean {
  const kind = isIP(address);
  if (kind === 4) {
    const [a, b, c] = v4(address);
    if (a === 0 || a === 10 || a === 127 || a >= 224) return false;
    if (a === 100 && b >= 64 && b <= 127) return false;
    if (a === 169 && b === 254) return false;
    if (a === 172 && b >= 16 && b <= 31) return false;
    if (a === 192 && b === 168) return false;
    if (a === 192 && b === 0 && (c === 0 || c === 2)) return false;
    if (a === 198 && (b === 18 || b === 19)) return false;
    if (a === 198 && b === 51 && c === 100) return false;
    if (a === 203 && b === 0 && c === 113) return false;
    return true;
  }
  if (kind === 6) {
    const lower = address.toLowerCase();
    const mapped =
      /^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped) return isPublicAddress(mapped[1]!);
    if (lower === '::' || lower === '::1') return false;
    const first = Number.parseInt(lower.split(':')[0] || '0', 16);
    if ((first & 0xfe00) === 0xfc00) return false; // unique local fc00::/7
    if ((first & 0xffc0) === 0xfe80) return false; // link-local fe80::/10
    if ((first & 0xff00) === 0xff00) return false; // multicast
    if (lower.startsWith('64:ff9b:')) return false; // NAT64 can reach IPv4 private space
    if (lower.startsWith('2001:db8:') || lower.startsWith('2001:0db8:')) return false; // documentation
    return true;
  }
  return false;
}
