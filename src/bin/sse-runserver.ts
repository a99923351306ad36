#!/usr/bin/env node
// The sse-runserver executable; all of it lives in cli/runserver.ts.
import { fail, main } from '../cli/runserver.js';

main(process.argv).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), 1));
