import { Worker } from 'node:worker_threads';
import type { DevIdp } from './dev-idp.ts';

/**
 * The development IdP in a worker thread of its own. oidc-provider keeps its request context in an
 * AsyncLocalStorage, which on Node.js 20 turns on async hooks for every promise of the thread that uses
 * it: in the platform's own thread, each gateway and API request would pay for them.
 */
export function startDevIdpThread(options: {
  port: number;
  host: string;
  redirectUri: string;
}): Promise<DevIdp> {
  const worker = new Worker(new URL('./dev-idp-worker.js', import.meta.url), {
    execArgv: [],
    workerData: options,
  });
  return new Promise<DevIdp>((resolve, reject) => {
    const failed = (error: Error) => reject(new Error(`the development IdP did not start: ${error.message}`));
    worker.once('error', failed);
    worker.once('exit', (code) => failed(new Error(`its thread exited (${code})`)));
    worker.once('message', (started: Omit<DevIdp, 'close'>) => {
      worker.removeAllListeners('error').removeAllListeners('exit');
      // Its thread keeps no server process alive on its own.
      worker.unref();
      let exited = false;
      worker.on('exit', () => {
        exited = true;
      });
      worker.on('error', () => {});
      resolve({
        ...started,
        close: () =>
          new Promise<void>((done) => {
            if (exited) return done();
            // Waited for now: the thread keeps the process up until it has stopped.
            worker.ref();
            worker.once('exit', () => done());
            worker.postMessage('close');
            // Whatever it was doing, it stops within seconds.
            setTimeout(() => void worker.terminate(), 5000).unref();
          }),
      });
    });
  });
}
