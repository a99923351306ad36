// Runs the built command-line tools (dist/, built by global-setup) as users do.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait-for';

export const ROOT = join(__dirname, '..', '..');
export const RUNSERVER = join(ROOT, 'dist', 'cjs', 'bin', 'sse-runserver.js');
export const SEND = join(ROOT, 'dist', 'cjs', 'bin', 'sse-send.js');

export interface RunningServer {
  proc: ChildProcess;
  url: string;
  port: number;
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts sse-runserver on a free port (unless --port is given) and waits for its "listening" line. */
export async function startRunserver(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const withPort = args.includes('--port') ? args : ['--port', '0', ...args];
  const proc = spawn(process.execPath, [RUNSERVER, ...withPort], {
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  // A server that dies on start fails the test at once, not after the timeout.
  const exitedEarly = exited.then(() => {
    throw new Error(`sse-runserver exited early:\n${output}`);
  });
  let match: RegExpExecArray;
  try {
    match = await Promise.race([
      waitFor(() => /listening on http:\/\/([\d.]+):(\d+)/.exec(output) ?? undefined, {
        timeout: 10_000,
        what: 'sse-runserver to listen',
      }),
      exitedEarly,
    ]);
  } catch (err) {
    // Never leave a server that did not start running behind the test.
    if (!done) proc.kill('SIGKILL');
    if (err instanceof Error && !err.message.includes(output)) err.message += `; its output:\n${output}`;
    throw err;
  } finally {
    exitedEarly.catch(() => undefined); // the exit after a normal stop() is not an error
  }
  const port = Number(match[2]);
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (!done) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a built bin (or any node script) to completion. */
export function runNode(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeout = 15_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish in ${timeout} ms:\n${stderr}`));
    }, timeout);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${script}: ${err.message}`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const runSend = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runNode(SEND, args, env);

/** The test process's environment without variables that would change the tools' defaults. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('SSE_') || key === 'REDIS_URL') delete env[key];
  return env;
}
