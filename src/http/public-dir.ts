// Where the package's public/ folder is: found upward from this file, so it
// works from src/ (tests) and from dist/cjs or dist/esm (installed).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The package's own public/ folder. */
export function publicDir(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'public', 'sse.js')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'public');
}
