// Lint rules, including the layer boundaries of STYLE.md: a wrong import fails `npm run lint`.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
const group = (group, message) => ({ group, message });

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
    rules: restrict([
      group(
        [
          'express',
          'express-*',
          'redis',
          '@redis/*',
          'cookie',
          'cookie-*',
          'commander',
          'serve-static',
          'prom-client',
          'jose',
          'proxy-addr',
        ],
        'core/ uses node built-ins only',
      ),
      group(
        ['../brokers/*', '../http/*', '../express/*', '../cli/*', '../*.js'],
        'core/ must not import other folders',
      ),
    ]),
  },
  {
    files: ['src/brokers/**/*.ts'],
    rules: restrict([
      group(
        ['express', 'cookie', 'cookie-*', 'commander', 'serve-static', 'jose', 'proxy-addr'],
        'brokers/ depend on core/ and their client library only',
      ),
      group(['../http/*', '../express/*', '../cli/*'], 'brokers/ must not import http/, express/ or cli/'),
    ]),
  },
  {
    files: ['src/brokers/**/*.ts'],
    ignores: ['src/brokers/redis-link.ts'],
    rules: restrict([
      group(
        ['redis', '@redis/*', 'express', 'cookie', 'cookie-*', 'commander', 'jose', 'proxy-addr'],
        'only brokers/redis-link.ts may import redis (one Redis, Sentinel, Cluster)',
      ),
      group(['../http/*', '../express/*', '../cli/*'], 'brokers/ must not import http/, express/ or cli/'),
    ]),
  },
  {
    files: ['src/**/*.ts'],
    ignores: [
      'src/http/token.ts',
      'src/http/**/*.ts',
      'src/core/**/*.ts',
      'src/brokers/**/*.ts',
      'src/express/**/*.ts',
    ],
    rules: restrict([
      group(['jose'], 'only http/token.ts may import jose (token verification lives there)'),
      group(['proxy-addr'], 'only http/trust-proxy.ts may import proxy-addr'),
    ]),
  },
  {
    files: ['src/http/**/*.ts'],
    ignores: ['src/http/session-cookie.ts', 'src/http/token.ts', 'src/http/trust-proxy.ts'],
    rules: restrict([
      group(
        ['express', 'redis', '@redis/*', 'cookie', 'cookie-signature', 'commander', 'jose', 'proxy-addr'],
        'http/ is node:http only (cookies: session-cookie.ts and token.ts; jose: token.ts; proxy-addr: trust-proxy.ts)',
      ),
      group(['../brokers/*', '../express/*', '../cli/*'], 'http/ must not import brokers/, express/ or cli/'),
    ]),
  },
  {
    files: ['src/http/session-cookie.ts'],
    rules: restrict([
      group(['express', 'commander', 'jose', 'proxy-addr'], 'http/ never imports express; jose: token.ts only'),
      group(['../express/*', '../cli/*'], 'http/ must not import express/ or cli/'),
    ]),
  },
  {
    files: ['src/express/**/*.ts'],
    rules: restrict([
      group(
        ['../cli/*', '../brokers/*', 'commander', 'redis', 'jose', 'proxy-addr'],
        'express/ depends on http/ and core/ only (Express finds req.ip itself)',
      ),
    ]),
  },
  {
    files: ['src/http/token.ts'],
    rules: restrict([
      group(['express', 'commander', 'redis', '@redis/*', 'proxy-addr'], 'http/ is node:http only'),
      group(['../brokers/*', '../express/*', '../cli/*'], 'http/ must not import brokers/, express/ or cli/'),
    ]),
  },
  {
    files: ['src/http/trust-proxy.ts'],
    rules: restrict([
      group(
        ['express', 'redis', '@redis/*', 'cookie', 'cookie-signature', 'commander', 'jose'],
        'http/ is node:http only (proxy-addr: trust-proxy.ts)',
      ),
      group(['../brokers/*', '../express/*', '../cli/*'], 'http/ must not import brokers/, express/ or cli/'),
    ]),
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
