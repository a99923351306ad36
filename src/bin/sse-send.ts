#!/usr/bin/env node
// The sse-send executable; all of it lives in cli/send.ts.
import { main } from '../cli/send.js';

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sse-send: error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
