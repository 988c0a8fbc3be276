/**
 * Where apps answer: `SITE.DOMAIN`, where SITE is the app's name (live) or `NAME--preview`, and DOMAIN is
 * MICROAPP_APPS_DOMAIN or, by default, `apps.` followed by the platform's own host name
 * (`apps.localhost` for a local platform). The scheme and port are the platform's.
 */
export function createAppHosts(deps: { domain: string | null; platformUrl: () => string | null }) {
  // The platform's URL is known once it listens: a request in the moment before is for the platform.
  const platformUrl = () => deps.platformUrl();
  const domain = () => {
    if (deps.domain) return deps.domain;
    const url = platformUrl();
    return url ? `apps.${new URL(url).hostname}` : null;
  };
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

  /** The site a Host header names, or null when it is not an app host. */
  function siteOf(host: string | undefined): string | null {
    if (!host) return null;
    const name = host.toLowerCase().replace(/:\d+$/, '');
    const apps = domain();
    if (!apps) return null;
    const suffix = `.${apps}`;
    if (!name.endsWith(suffix)) return null;
    const site = name.slice(0, -suffix.length);
    return label.test(site) ? site : null;
  }

  /** The address a site answers at, for links and redirects. */
  function urlOf(site: string): string {
    const u = new URL(platformUrl() ?? 'http://localhost');
    return `${u.protocol}//${site}.${domain()}${u.port ? `:${u.port}` : ''}/`;
  }

  return { siteOf, urlOf, domain };
}

export type AppHosts = ReturnType<typeof createAppHosts>;
