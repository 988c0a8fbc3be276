import { useEffect, useRef } from 'react';
import { api } from './api.ts';
import { AdminPage } from './pages/admin-page.tsx';
import { AgentRequestPage, AgentsPage } from './pages/agents-page.tsx';
import { AppPage } from './pages/app-page.tsx';
import { AuditPage } from './pages/audit-page.tsx';
import { CatalogPage } from './pages/catalog-page.tsx';
import { ChangePage } from './pages/change-page.tsx';
import { NewAppPage } from './pages/new-app-page.tsx';
import { NotificationsPage } from './pages/notifications-page.tsx';
import { OverviewPage } from './pages/overview-page.tsx';
import { PoliciesPage } from './pages/policies-page.tsx';
import { ReviewsPage } from './pages/reviews-page.tsx';
import { Link, useLocation } from './router.tsx';
import { hasRole, SessionGate, useSession } from './session.tsx';
import { useApi } from './use-api.ts';

/** The console: sign-in first, then the page the path names. */
export function App() {
  return (
    <SessionGate>
      <Shell />
    </SessionGate>
  );
}

function Shell() {
  const session = useSession();
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  // What the signed-in person's agents wait on, said beside "Agents" on every page.
  const waiting = useApi<{ items: unknown[] }>('/api/v1/agents/requests?state=pending');
  const reloadWaiting = waiting.reload;
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new page is when the count is read again
  useEffect(() => reloadWaiting(), [path, reloadWaiting]);
  const pending = waiting.data?.items.length ?? 0;
  // Unread notifications, said beside the person's name on every page.
  const inbox = useApi<{ items: unknown[] }>('/api/v1/notifications?unread=true&limit=200');
  const reloadInbox = inbox.reload;
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new page is when the count is read again
  useEffect(() => reloadInbox(), [path, reloadInbox]);
  const unread = inbox.data?.items.length ?? 0;
  const page = path === '/notifications' ? notificationsRoute(reloadInbox) : route(path);
  // Each page change moves focus to the page's heading, so keyboard and screen-reader users start there.
  useEffect(() => {
    document.title = `${page.title} · microapp`;
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [page.title]);
  const nav = [
    { href: '/', label: 'Catalog', show: true },
    { href: '/new', label: 'New app', show: hasRole(session, 'creator', 'admin') },
    { href: '/overview', label: 'Overview', show: hasRole(session, 'admin', 'auditor') },
    { href: '/reviews', label: 'Reviews', show: hasRole(session, 'reviewer', 'admin', 'auditor') },
    {
      href: '/agents',
      label: pending ? `Agents (${pending} waiting)` : 'Agents',
      show: true,
    },
    { href: '/audit', label: 'Audit', show: true },
    // The rules themselves are for those who keep or apply them; a creator meets a rule where it applies
    // (the wizard, the app page), in words.
    { href: '/policies', label: 'Policies', show: hasRole(session, 'reviewer', 'admin', 'auditor') },
    { href: '/admin', label: 'Admin', show: hasRole(session, 'admin') },
  ];
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link href="/" className="brand">
          microapp
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((n) => n.show)
              .map((n) => (
                <li key={n.href}>
                  <Link
                    href={n.href}
                    aria-current={
                      (n.href === '/' ? path === '/' || path.startsWith('/apps/') : path.startsWith(n.href))
                        ? 'page'
                        : undefined
                    }
                  >
                    {n.label}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <div className="who">
          <Link
            href="/notifications"
            className="bell"
            aria-label={unread ? `Notifications, ${unread} unread` : 'Notifications'}
            aria-current={path === '/notifications' ? 'page' : undefined}
          >
            <svg
              className="bell-icon"
              viewBox="0 0 24 24"
              width="18"
              height="18"
              aria-hidden="true"
              focusable="false"
            >
              <path
                fill="currentColor"
                d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
              />
            </svg>
            {unread ? <span className="count">{unread}</span> : null}
          </Link>
          <span>
            {session.user.name} <span className="muted">({session.user.roles.join(', ') || 'no role'})</span>
          </span>
          <button
            type="button"
            className="link"
            onClick={async () => {
              await api('POST', '/auth/logout');
              window.location.assign('/');
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main}>
        {page.element}
      </main>
    </>
  );
}

function notificationsRoute(onRead: () => void): { title: string; element: React.ReactNode } {
  return { title: 'Notifications', element: <NotificationsPage onRead={onRead} /> };
}

function route(path: string): { title: string; element: React.ReactNode } {
  const app = /^\/apps\/([a-z0-9-]{1,63})\/?$/.exec(path);
  if (app) return { title: app[1]!, element: <AppPage name={app[1]!} key={app[1]} /> };
  const change = /^\/apps\/([a-z0-9-]{1,63})\/changes\/([1-9][0-9]{0,6})\/?$/.exec(path);
  if (change)
    return {
      title: `${change[1]} #${change[2]}`,
      element: <ChangePage name={change[1]!} number={Number(change[2])} key={path} />,
    };
  const request = /^\/agents\/requests\/(chk_[0-9a-z]{20})\/?$/.exec(path);
  if (request)
    return { title: 'Agent request', element: <AgentRequestPage id={request[1]!} key={request[1]} /> };
  if (path === '/overview') return { title: 'Overview', element: <OverviewPage /> };
  if (path === '/agents') return { title: 'Agents', element: <AgentsPage /> };
  if (path === '/new') return { title: 'New app', element: <NewAppPage /> };
  if (path === '/reviews') return { title: 'Reviews', element: <ReviewsPage /> };
  if (path === '/audit') return { title: 'Audit', element: <AuditPage /> };
  if (path === '/policies') return { title: 'Policies', element: <PoliciesPage /> };
  if (path === '/admin') return { title: 'Administration', element: <AdminPage /> };
  if (path === '/' || path === '/apps') return { title: 'Catalog', element: <CatalogPage /> };
  return {
    title: 'Not found',
    element: (
      <>
        <h1 tabIndex={-1}>There is no page here</h1>
        <p>
          <Link href="/">Go to the catalog</Link>
        </p>
      </>
    ),
  };
}
