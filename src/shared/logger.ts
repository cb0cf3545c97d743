import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Root pino logger. JSON by default; `pretty` uses pino-pretty (a dev dependency) when present.
 * Tool arguments and env values are redacted at info level.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const options = {
    level: opts.level ?? process.env['SLOTQ_LOG_LEVEL'] ?? 'info',
    base: { name: opts.name ?? 'slotq' },
    redact: { paths: ['args', '*.args', 'env', '*.env', 'content', '*.content'], censor: '[redacted]' },
  };
  if (opts.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(options);
}

/** A logger that writes nothing, for library use without configuration. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
