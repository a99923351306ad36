// sse-runserver: the standalone SSE server (SPEC §4), tornado_sse's and
// `manage.py runsseserver`'s analogue. Exit codes: 0 after a clean SIGINT/
// SIGTERM, 1 when it cannot start, 2 for bad flags (one line on stderr).
import { Command, CommanderError } from 'commander';
import { OptionError } from '../core/errors.js';
import { addFlags, RUNSERVER_FLAGS } from './flags.js';
import { consoleLogger } from './logger.js';
import { createServer } from './server.js';

interface RunserverFlags {
  address: string;
  port: number;
  path: string;
  redis?: string;
  channelPrefix: string;
  channels: 'query' | 'session';
  publishToken?: string;
  heartbeat: number;
  retry: number;
  maxChannels: number;
  maxBufferedBytes: number;
  history?: number;
  debug: boolean;
}

/** How long SIGTERM may take before the process exits anyway, in ms. */
const SHUTDOWN_GRACE = 4000;

export function buildCommand(): Command {
  const command = new Command('sse-runserver')
    .description('Multichannel Server-Sent Events server: GET /?channels=a,b streams, POST /publish, GET /healthz')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  return addFlags(command, RUNSERVER_FLAGS);
}

export async function main(argv: string[]): Promise<void> {
  const command = buildCommand();
  try {
    command.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0); // --help, --version
      fail(err.message.replace(/^error: /, ''), 2);
    }
    throw err;
  }
  const flags = command.opts<RunserverFlags>();
  const redisUrl = flags.redis ?? process.env.SSE_REDIS_URL;
  const logger = consoleLogger(flags.debug);
  if (flags.channels === 'session') fail('--channels session is not available in this build', 2);

  let sse;
  try {
    sse = createServer({
      path: flags.path,
      publishToken: flags.publishToken,
      logger,
      hubOptions: {
        broker: redisUrl ? 'redis' : 'memory',
        redisUrl,
        channelPrefix: flags.channelPrefix,
        heartbeat: flags.heartbeat,
        retry: flags.retry,
        maxChannels: flags.maxChannels,
        maxBufferedBytes: flags.maxBufferedBytes,
        history: flags.history === undefined ? false : { size: flags.history },
      },
    });
  } catch (err) {
    if (err instanceof OptionError) fail(err.message, 2);
    throw err;
  }
  const address = await sse
    .listen(flags.port, flags.address)
    .catch((err: Error) => fail(`cannot listen: ${err.message}`, 1));
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info(`listening on http://${host}:${address.port}${flags.path} (broker: ${sse.hub.broker.name})`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: ending streams and closing the broker`);
    setTimeout(() => {
      logger.warn(`still closing after ${SHUTDOWN_GRACE} ms; exiting anyway`);
      process.exit(0);
    }, SHUTDOWN_GRACE).unref();
    sse.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`error while closing: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

export function fail(message: string, code: number): never {
  process.stderr.write(`sse-runserver: error: ${message}\n`);
  process.exit(code);
}
