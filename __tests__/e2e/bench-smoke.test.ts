// The bench's CI smoke (issue 6): `npm run bench` in smoke mode — a few
// hundred connections, under a second per scenario — runs end to end and
// prints its tables. No figure is asserted: timings belong to bench/RESULTS.md.
import { join } from 'node:path';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, runNode } from '../helpers/run-cli';

describeWithTools(['redis-server', 'gcc'], 'npm run bench -- --smoke', () => {
  test('runs every scenario against every server and prints the tables', async () => {
    const result = await runNode(join(ROOT, 'bench', 'run.mjs'), ['--smoke'], {}, 100_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    for (const scenario of [
      'broadcast-1k',
      'broadcast-10k',
      'unicast-10k',
      'idle-10k',
      'max-1k',
      'workers-max-1k',
      'workers-broadcast-10k',
    ]) {
      expect(out).toMatch(new RegExp(`^## ${scenario} — \\d+ connections`, 'm'));
    }
    expect(out).toMatch(/^\| server +\| +events\/s \| CPU µs\/event \| +p50 ms \| +p99 ms \| RSS KiB\/conn \|$/m);
    for (const server of ['baseline', 'sse-hub', 'better-sse', 'sse-hub-2w']) {
      expect(out).toMatch(new RegExp(`^\\| ${server} +\\| +\\d+ \\|`, 'm'));
    }
    expect(out).toMatch(/^\| sse-hub \/ baseline +\| +×[\d.]+ \|/m);
    expect(out).toMatch(/^## sse-hub against the targets/m);
    expect(out).toMatch(/^\| max throughput, max-1k +\| +×[\d.]+ \| +≥ ×0\.9 \| +(yes|NO) \|$/m);
  }, 120_000);
});
