import pino, { type Logger } from 'pino';
import type { ServerConfig } from './config.ts';

/** The platform's logger: requests without their query strings, credentials and cookies censored. */
export function platformLogger(config: Pick<ServerConfig, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    // A request as the request log (MICROAPP_REQUEST_LOG=on) and errors show it: its path without the
    // query string, which may hold personal data or a sign-in code.
    serializers: {
      req: (req: {
        id?: string;
        method?: string;
        url?: string;
        headers?: Record<string, unknown>;
        ip?: string;
      }) => ({
        id: req.id,
        method: req.method,
        path: req.url?.split('?')[0],
        host: req.headers?.host,
        remoteAddress: req.ip,
      }),
    },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      censor: '[redacted]',
    },
  });
}
