import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import type { TlsFiles } from '../config-scale.ts';

/** The certificate (with its chain) and key, as PEM. */
export function readTls(files: TlsFiles): { cert: string; key: string } {
  return { cert: readFileSync(files.certFile, 'utf8'), key: readFileSync(files.keyFile, 'utf8') };
}

/**
 * Serves a renewed certificate without a restart: cert-manager (or whoever renews it) replaces the files,
 * and new connections get the new pair within a minute; a pair that does not load is logged and the one in
 * use stays. Returns the function that stops watching.
 */
export function reloadTlsOnChange(server: HttpsServer, files: TlsFiles, logger: Logger): () => void {
  const reload = () => {
    try {
      server.setSecureContext(readTls(files));
      logger.info({ cert: files.certFile }, 'serving the renewed TLS certificate');
    } catch (error) {
      logger.error(
        { cert: files.certFile, err: (error as Error).message },
        'the renewed TLS certificate or key does not load; the one in use stays',
      );
    }
  };
  for (const file of [files.certFile, files.keyFile]) watchFile(file, { interval: 30_000 }, reload).unref?.();
  return () => {
    for (const file of [files.certFile, files.keyFile]) unwatchFile(file, reload);
  };
}
