// `import 'sse-hub'` with the memory broker must not load node-redis: only
// making a RedisBroker does. Checked in a fresh child process against the
// built package (CommonJS and ESM), where the module cache starts empty.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ROOT, runNode } from '../helpers/run-cli';

// Prints which node-redis modules are loaded after the memory hub ran, and after a RedisBroker was made.
const probe = (load: string): string => `
// One module cache for both: ESM loads CommonJS packages such as redis through it.
const cache = require.cache;
const redisModules = () => Object.keys(cache).filter((f) => /node_modules[\\\\/](redis|@redis[\\\\/][^\\\\/]+)[\\\\/]/.test(f));
(async () => {
  const sse = await ${load};
  const hub = sse.createHub({ broker: 'memory' });
  await hub.sendEvent('message', { hello: 1 }, 'all');
  await hub.close();
  const afterMemory = redisModules().length;
  // Port 1 refuses at once; the broker retries until closed.
  const broker = new sse.RedisBroker({ url: 'redis://127.0.0.1:1' });
  const afterRedis = redisModules().length;
  await broker.close();
  console.log(JSON.stringify({ afterMemory, afterRedis }));
})();
`;

const CJS = join(ROOT, 'dist', 'cjs', 'index.js');
const ESM = pathToFileURL(join(ROOT, 'dist', 'esm', 'index.js')).href;

test.each([
  ['require()', `Promise.resolve(require(${JSON.stringify(CJS)}))`],
  ['import()', `import(${JSON.stringify(ESM)})`],
])('%s of sse-hub with the memory broker does not load node-redis; new RedisBroker() does', async (_how, load) => {
  const result = await runNode('-e', [probe(load)]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const { afterMemory, afterRedis } = JSON.parse(result.stdout) as { afterMemory: number; afterRedis: number };
  expect(afterMemory).toBe(0);
  expect(afterRedis).toBeGreaterThan(0);
});
