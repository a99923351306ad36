// cli/flags.ts: the one table of sse-runserver's flags ↔ env vars ↔ defaults.
import { Command, InvalidArgumentError } from 'commander';
import { addFlags, flagsMarkdown, list, port, positiveInt, redisUrl, RUNSERVER_FLAGS } from '../../src/cli/flags';

test('every flag has its own SSE_* (or REDIS_URL) environment variable and a description', () => {
  const envs = RUNSERVER_FLAGS.map((f) => f.env);
  expect(new Set(envs).size).toBe(envs.length);
  for (const spec of RUNSERVER_FLAGS) {
    expect(spec.env).toMatch(/^(SSE_[A-Z_]+|REDIS_URL)$/);
    expect(spec.description.length).toBeGreaterThan(5);
  }
});

test('docs/cli.md flags are in the table with their variables', () => {
  const byFlag = Object.fromEntries(RUNSERVER_FLAGS.map((f) => [f.flags.split(' ')[0], f]));
  expect(byFlag['--port']).toMatchObject({ env: 'SSE_PORT', defaultValue: 8888 });
  expect(byFlag['--address']).toMatchObject({ defaultValue: '127.0.0.1' });
  expect(byFlag['--max-channels']).toMatchObject({ env: 'SSE_MAX_CHANNELS', defaultValue: 64 });
  expect(byFlag['--redis']).toMatchObject({ env: 'REDIS_URL' });
  for (const flag of ['--debug', '--heartbeat', '--retry', '--max-buffered-bytes', '--history', '--channels']) {
    expect(byFlag[flag]).toBeDefined();
  }
});

test('positiveInt', () => {
  expect(positiveInt('15')).toBe(15);
  for (const bad of ['0', '-1', '1.5', 'abc', '', '1e3', '99999999999999999999']) {
    expect(() => positiveInt(bad)).toThrow(InvalidArgumentError);
  }
});

test('port', () => {
  expect(port('0')).toBe(0);
  expect(port('65535')).toBe(65535);
  for (const bad of ['65536', '-1', 'http', '']) expect(() => port(bad)).toThrow(/expected a port number/);
});

test('list: repeatable and comma-separated', () => {
  expect(list('a, b,,c', undefined)).toEqual(['a', 'b', 'c']);
  expect(list('d', ['a'])).toEqual(['a', 'd']);
});

test('redisUrl', () => {
  expect(redisUrl('redis://127.0.0.1:1')).toBe('redis://127.0.0.1:1');
  expect(redisUrl('rediss://h:1')).toBe('rediss://h:1');
  expect(() => redisUrl('127.0.0.1:6379')).toThrow(/expected a redis:\/\/ URL/);
});

describe('addFlags', () => {
  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const command = addFlags(new Command('t').exitOverride(), RUNSERVER_FLAGS);
      command.parse(['node', 't', ...argv]);
      return command.opts();
    } finally {
      for (const key of Object.keys(env)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  };

  test('defaults, flags and environment variables', () => {
    expect(parse([])).toMatchObject({ port: 8888, address: '127.0.0.1', maxChannels: 64, channels: 'query' });
    expect(parse(['--port', '9000'])).toMatchObject({ port: 9000 });
    expect(parse([], { SSE_PORT: '9001', SSE_MAX_CHANNELS: '3' })).toMatchObject({ port: 9001, maxChannels: 3 });
    expect(parse(['--port', '9002'], { SSE_PORT: '9001' })).toMatchObject({ port: 9002 });
  });

  test('--help names every flag and its environment variable', () => {
    // commander wraps long lines; compare with whitespace collapsed.
    const help = addFlags(new Command('t'), RUNSERVER_FLAGS).helpInformation().replace(/\s+/g, ' ');
    for (const spec of RUNSERVER_FLAGS) {
      expect(help).toContain(spec.flags.split(' ')[0] as string);
      expect(help).toContain(`env: ${spec.env}`);
    }
  });
});

test('flagsMarkdown: one row per flag', () => {
  const table = flagsMarkdown(RUNSERVER_FLAGS).split('\n');
  expect(table).toHaveLength(RUNSERVER_FLAGS.length + 2);
  expect(table).toContain('| `--port <n>` | `SSE_PORT` | `8888` | port to listen on (0: any free port) |');
});
