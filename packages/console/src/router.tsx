import { type AnchorHTMLAttributes, useEffect, useState } from 'react';

const listeners = new Set<() => void>();

/** Go to a console page without reloading it. */
export function navigate(to: string) {
  window.history.pushState(null, '', to);
  for (const l of listeners) l();
  window.scrollTo(0, 0);
}

/** The current path and query, updated on navigation and on the browser's back and forward. */
export function useLocation(): { path: string; search: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((t) => t + 1);
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return { path: window.location.pathname, search: new URLSearchParams(window.location.search) };
}

/** A link that navigates inside the console; a modified click still opens a new tab. */
export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { href, onClick, ...rest } = props;
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        onClick?.(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    />
  );
}

/**
 * Brings the part of the page a link's `#fragment` names into view and focus, once it is drawn (a
 * notification's "Open" leads to `/apps/NAME#renew`).
 */
export function useFragmentTarget(ready: boolean) {
  useEffect(() => {
    if (!ready || !window.location.hash) return;
    const id = decodeURIComponent(window.location.hash.slice(1));
    // Its sections load on their own: look for the part named until it is drawn, for a few seconds.
    let tries = 0;
    const timer = window.setInterval(() => {
      const target = document.getElementById(id);
      if (!target && ++tries < 40) return;
      window.clearInterval(timer);
      if (!target) return;
      target.scrollIntoView({ block: 'center' });
      const focusable = target.matches('button, input, textarea, select, a')
        ? target
        : target.querySelector<HTMLElement>('button, input, textarea, select, a');
      focusable?.focus({ preventScroll: true });
    }, 100);
    return () => window.clearInterval(timer);
  }, [ready]);
}
