/**
 * Work under way that a stop must wait for (app starts, restarts): `track` counts a promise until it
 * settles, `settled` waits for every one, those tracked meanwhile included.
 */
export function underWay() {
  const running = new Set<Promise<unknown>>();
  return {
    track<T>(work: Promise<T>): Promise<T> {
      const done = work.then(
        () => {},
        () => {},
      );
      running.add(done);
      void done.then(() => running.delete(done));
      return work;
    },
    async settled() {
      while (running.size) await Promise.all(running);
    },
  };
}
