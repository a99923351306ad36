// The command-line tools' logger: one line per message on stderr, debug only with --debug.
import type { Logger } from '../core/logger.js';

export function consoleLogger(debug: boolean, name = 'sse-runserver'): Logger {
  const line =
    (level: string) =>
    (message: string, meta?: Record<string, unknown>): void => {
      const extra = meta === undefined ? '' : ` ${JSON.stringify(meta)}`;
      process.stderr.write(`${new Date().toISOString()} ${name} ${level}: ${message}${extra}\n`);
    };
  return {
    debug: debug ? line('debug') : () => undefined,
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
}
