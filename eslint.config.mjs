// Lint rules, including the layer boundaries of STYLE.md: a wrong import fails `npm run lint`.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Each folder lists what it MAY import (an allow-list, so a new package or a
// new folder is refused until someone decides where it belongs). `node:`
// built-ins are always allowed; `./` is the folder itself.
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const allowOnly = (allowed, message) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        {
          regex: `^(?!node:|${allowed.map((a) => (a.endsWith('/') ? escape(a) : `${escape(a)}$`)).join('|')})`,
          message,
        },
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/out/**', '.test-tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: allowOnly(
      ['./'],
      'core/ uses node built-ins and core/ only: no Express, Redis, cookies, CLI or sibling folder',
    ),
  },
  {
    files: ['src/brokers/**/*.ts'],
    ignores: ['src/brokers/redis-link.ts'],
    rules: allowOnly(['./', '../core/'], 'brokers/ depend on core/ only (node-redis: brokers/redis-link.ts only)'),
  },
  {
    files: ['src/brokers/redis-link.ts'],
    rules: allowOnly(
      ['./', '../core/', 'redis'],
      'brokers/redis-link.ts depends on core/ and node-redis only (one Redis, Sentinel, Cluster)',
    ),
  },
  {
    files: ['src/http/**/*.ts'],
    ignores: [
      'src/http/session-cookie.ts',
      'src/http/token.ts',
      'src/http/trust-proxy.ts',
      'src/http/client-scripts.ts',
      'src/http/metrics.ts',
    ],
    rules: allowOnly(
      ['./', '../core/'],
      'http/ is node:http over core/ (cookies: session-cookie.ts and token.ts, jose: token.ts, proxy-addr: trust-proxy.ts, serve-static: client-scripts.ts, prom-client: metrics.ts); never express or a broker',
    ),
  },
  {
    files: ['src/http/trust-proxy.ts'],
    rules: allowOnly(['./', '../core/', 'proxy-addr'], 'trust-proxy.ts: core/, http/ and proxy-addr only'),
  },
  {
    files: ['src/http/token.ts'],
    rules: allowOnly(['./', '../core/', 'cookie', 'jose'], 'token.ts: core/, http/, cookie and jose only'),
  },
  {
    files: ['src/http/session-cookie.ts'],
    rules: allowOnly(
      ['./', '../core/', 'cookie', 'cookie-signature'],
      'session-cookie.ts: core/, http/ and the cookie packages only',
    ),
  },
  {
    files: ['src/http/client-scripts.ts'],
    rules: allowOnly(['./', '../core/', 'serve-static'], 'client-scripts.ts: core/, http/ and serve-static only'),
  },
  {
    files: ['src/http/metrics.ts'],
    rules: allowOnly(['./', '../core/', 'prom-client'], 'metrics.ts: core/, http/ and prom-client only'),
  },
  {
    files: ['src/express/**/*.ts'],
    rules: allowOnly(
      ['./', '../core/', '../http/', 'express'],
      'express/ depends on http/ and core/ only; the default hub (and so the brokers) is handed in by index.ts',
    ),
  },
  {
    files: ['src/create-hub.ts', 'src/default-hub.ts'],
    rules: allowOnly(
      ['./core/', './brokers/', './create-hub.js'],
      'the composition root imports core/ and brokers/ only',
    ),
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['express', 'express-*'], message: 'cli/ serves node:http; Express stays in express/' },
            { group: ['jose'], message: 'only http/token.ts may import jose (token verification lives there)' },
            { group: ['proxy-addr'], message: 'only http/trust-proxy.ts may import proxy-addr' },
          ],
        },
      ],
    },
  },
  {
    files: ['public/**/*.js'],
    languageOptions: { sourceType: 'script', ecmaVersion: 2017, globals: { ...globals.browser, jQuery: 'readonly' } },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ignores: ['public/**'],
    languageOptions: { globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['examples/**/public/**/*.js', 'examples/**/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, jQuery: 'readonly', $: 'readonly' } },
  },
);
