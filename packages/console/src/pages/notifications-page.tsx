import { useState } from 'react';
import { api } from '../api.ts';
import type { NotificationView } from '../contracts.ts';
import { Link, navigate } from '../router.tsx';
import { ErrorNote, Loading, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

/** Where a notification's action leads inside the console, when it is a page of this console. */
function consolePath(action: string | null): string | null {
  if (!action) return null;
  if (action.startsWith('/')) return action;
  try {
    const url = new URL(action);
    return url.origin === window.location.origin ? `${url.pathname}${url.search}${url.hash}` : null;
  } catch {
    return null;
  }
}

/**
 * The person's notifications, newest first: what the platform told them (a review waiting, a decision,
 * an expiry, an advisory), each with the page that answers it. Opening one marks it read.
 */
export function NotificationsPage({ onRead }: { onRead: () => void }) {
  const inbox = useApi<{ items: NotificationView[] }>('/api/v1/notifications?limit=100');
  const [read, setRead] = useState<Set<string>>(new Set());
  const all = useAction<void>();
  const markRead = async (n: NotificationView) => {
    if (n.readAt || read.has(n.id)) return;
    await api('POST', `/api/v1/notifications/${n.id}/read`);
    setRead((r) => new Set(r).add(n.id));
    onRead();
  };
  const items = inbox.data?.items ?? [];
  const unread = items.filter((n) => !n.readAt && !read.has(n.id));
  return (
    <>
      <h1 tabIndex={-1}>Notifications</h1>
      <ErrorNote error={inbox.error ?? all.error} />
      {inbox.loading ? <Loading what="your notifications" /> : null}
      {inbox.data && items.length === 0 ? (
        <p>Nothing yet. Decisions on your apps, reviews waiting for you and warnings arrive here.</p>
      ) : null}
      {unread.length > 1 ? (
        <p>
          <button
            type="button"
            disabled={all.busy}
            onClick={() =>
              void all.run(async () => {
                for (const n of unread) await markRead(n);
              })
            }
          >
            Mark all {unread.length} as read
          </button>
        </p>
      ) : null}
      <ul className="notifications">
        {items.map((n) => {
          const isNew = !n.readAt && !read.has(n.id);
          const path = consolePath(n.action) ?? (n.app ? `/apps/${n.app}` : null);
          return (
            <li key={n.id} className={isNew ? 'unread' : undefined}>
              <article aria-label={n.subject}>
                <h2>
                  {isNew ? <span className="badge">New</span> : null} {n.subject}
                </h2>
                <p>{n.body}</p>
                <p className="muted">
                  <When at={n.createdAt} />
                  {n.app ? (
                    <>
                      {' '}
                      · <Link href={`/apps/${n.app}`}>{n.app}</Link>
                    </>
                  ) : null}
                </p>
                {path ? (
                  <button
                    type="button"
                    className="primary"
                    onClick={async () => {
                      await markRead(n).catch(() => {});
                      navigate(path);
                    }}
                  >
                    {consolePath(n.action) ? 'Open' : `Go to ${n.app}`}
                  </button>
                ) : null}{' '}
                {isNew ? (
                  <button type="button" onClick={() => void markRead(n)}>
                    Mark as read
                  </button>
                ) : null}
              </article>
            </li>
          );
        })}
      </ul>
    </>
  );
}
