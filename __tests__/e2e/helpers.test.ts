// The process helpers report a child that dies while starting at once, with
// its output, instead of waiting out their 10 s start timeout.
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver } from '../helpers/run-cli';

const START_TIMEOUT = 10_000;

test('startRunserver: a server that exits on start rejects at once with its stderr', async () => {
  const started = Date.now();
  await expect(startRunserver(['--heartbeat', '-1'])).rejects.toThrow(/exited early:[\s\S]*heartbeat/);
  expect(Date.now() - started).toBeLessThan(START_TIMEOUT);
});

describeWithTools(['redis-server'], 'RedisServer.start()', () => {
  test('a redis-server that exits on start rejects at once with its output', async () => {
    const started = Date.now();
    await expect(RedisServer.start(['--no-such-directive', 'yes'])).rejects.toThrow(
      /exited while starting[\s\S]*no-such-directive/,
    );
    expect(Date.now() - started).toBeLessThan(START_TIMEOUT);
  });
});
