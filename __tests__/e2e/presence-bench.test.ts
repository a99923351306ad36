// bench/presence.mjs in a small shape, so the script behind the figures in
// docs/operations.md keeps running. No figure is asserted: timings belong to
// the docs, measured on purpose.
import { join } from 'node:path';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, runNode } from '../helpers/run-cli';

describeWithTools(['redis-server'], 'bench/presence.mjs (smoke)', () => {
  test('prints every row for 200 connections on 20 channels', async () => {
    const result = await runNode(
      join(ROOT, 'bench', 'presence.mjs'),
      ['--connections', '200', '--channels', '20'],
      {},
      60_000,
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    for (const row of [
      'PUBLISH one event',
      'rewrite (record changed)',
      'extend TTL',
      'read all channels',
      'read one channel',
    ]) {
      expect(result.stdout).toContain(row);
    }
    expect(result.stdout).toMatch(/read all channels.*20 channels, 1 process/);
  });
});
