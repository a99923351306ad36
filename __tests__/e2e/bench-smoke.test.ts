// The bench's CI smoke: `npm run bench` in smoke mode — a few hundred
// connections, under a second per scenario — runs end to end and prints its
// tables. No timing is asserted (timings belong to bench/RESULTS.md); the
// reconnect storm's correctness is: its checker must find nothing lost or
// duplicated, or the bench exits 1.
import { join } from 'node:path';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, runNode } from '../helpers/run-cli';

describeWithTools(['redis-server', 'gcc'], 'npm run bench -- --smoke', () => {
  test('runs every scenario against every server and prints the tables', async () => {
    const result = await runNode(join(ROOT, 'bench', 'run.mjs'), ['--smoke'], {}, 150_000);
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
      'storm-live-10k',
      'storm-10k',
    ]) {
      expect(out).toMatch(new RegExp(`^## ${scenario} — \\d+ connections`, 'm'));
    }
    expect(out).toMatch(/^\| server +\| +events\/s \| CPU µs\/event \| +p50 ms \| +p99 ms \| RSS KiB\/conn \|$/m);
    for (const server of [
      'ceiling',
      'baseline',
      'sse-hub',
      'mw-http',
      'express5',
      'express4',
      'better-sse',
      'sse-hub-2w',
    ]) {
      expect(out).toMatch(new RegExp(`^\\| ${server} +\\| +\\d+ \\|`, 'm'));
    }
    expect(out).toMatch(/^\| sse-hub \/ ceiling +\| +×[\d.]+ \|/m);
    expect(out).toMatch(/^\| sse-hub \/ baseline +\| +×[\d.]+ \|/m);
    expect(out).toMatch(/^\| express5 \/ sse-hub +\| +×[\d.]+ \|/m);
    expect(out).toMatch(/^## against the targets/m);
    expect(out).toMatch(/^\| sse-hub \/ ceiling: max throughput, max-1k +\| +×[\d.]+ \| +≥ ×0\.9 \| +(yes|NO) \|$/m);
    // The storm's checker ran: every connection came back, nothing lost or twice.
    expect(out).toMatch(/^\| sse-hub +\| +[\d.]+ \| +[\d.]+ \|.*\| +0 \| +0 \| +0 \| +0 \|.*\| +ok \|$/m);
  }, 180_000);
});
