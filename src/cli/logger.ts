// The command-line tools' logger: one line per message on stderr, debug only with --debug.
import type { Logger } from '../core/logger.js';
import { redactUrls } from '../core/redact.js';

export function consoleLogger(debug: boolean, name = 'sse-runserver'): Logger {
  const line =
    (level: string) =>
    (message: string, meta?: Record<string, unknown>): void => {
      const extra = meta === undefined ? '' : ` ${JSON.stringify(meta)}`;
      // Messages may quote a Redis URL (errors do): its credentials never reach the log.
      process.stderr.write(redactUrls(`${new Date().toISOString()} ${name} ${level}: ${message}${extra}\n`));
    };
  return {
    debug: debug ? line('debug') : () => undefined,
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
}
