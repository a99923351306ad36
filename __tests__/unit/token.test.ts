// fromToken() and the verifier (docs/tokens.md): what a token must be to be
// accepted, which channels it grants, and where a request's token is read.
import { generateKeyPairSync, createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { SignJWT } from 'jose';
import type { Connection } from '../../src/core/connection';
import { isSseHubError } from '../../src/core/errors';
import {
  createTokenVerifier,
  fromToken,
  grants,
  parseGrant,
  parsePublicKeys,
  tokenOf,
  type TokenClaims,
} from '../../src/http/token';

const SECRET = 'a-test-secret-that-is-32-bytes!!';
const OLD_SECRET = 'the-previous-secret-of-32-bytes!!';
const now = (): number => Math.floor(Date.now() / 1000);

function sign(claims: Record<string, unknown>, key: string | Parameters<SignJWT['sign']>[0] = SECRET, alg = 'HS256') {
  const k = typeof key === 'string' ? new TextEncoder().encode(key) : key;
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(k);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function req(url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!isSseHubError(err)) throw err;
    return { status: err.status, code: err.code, message: err.message };
  }
  throw new Error('expected a refusal');
}

describe('createTokenVerifier', () => {
  const verifier = createTokenVerifier({ secrets: [SECRET] });

  test('accepts an HS256 token and returns its channels, publish grant and sub', async () => {
    const exp = now() + 60;
    const claims = await verifier.verify(
      await sign({ sub: 'bob', exp, channels: ['bob', 'all', 'team-*'], publish: ['bob'] }),
    );
    expect(claims.sub).toBe('bob');
    expect(claims.exp).toBe(exp);
    expect([...claims.channels.channels]).toEqual(['bob', 'all']);
    expect(claims.channels.prefixes).toEqual(['team-']);
    expect([...(claims.publish?.channels ?? [])]).toEqual(['bob']);
  });

  test('refuses alg "none" (an unsigned token) with 403 SSE_ERR_TOKEN', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ exp: now() + 60, channels: ['all'] })}.`;
    expect(await refusal(verifier.verify(unsigned))).toEqual({
      status: 403,
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/alg "none"/),
    });
  });

  test('refuses a tampered payload (channels widened after signing)', async () => {
    const token = await sign({ exp: now() + 60, channels: ['bob'] });
    const [header, , signature] = token.split('.');
    const tampered = `${header}.${b64({ exp: now() + 60, channels: ['bob', 'admin'] })}.${signature}`;
    expect(await refusal(verifier.verify(tampered))).toMatchObject({
      status: 403,
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/signature does not match/),
    });
  });

  test('refuses an expired token and one without exp', async () => {
    expect(await refusal(verifier.verify(await sign({ exp: now() - 5, channels: ['all'] })))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/expired/),
    });
    expect(await refusal(verifier.verify(await sign({ channels: ['all'] })))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/"exp"/),
    });
  });

  test('refuses a token signed with a key it was not given', async () => {
    const other = await sign({ exp: now() + 60, channels: ['all'] }, 'somebody-elses-secret-of-32-bytes');
    expect(await refusal(verifier.verify(other))).toMatchObject({ status: 403, code: 'SSE_ERR_TOKEN' });
  });

  test('refuses what is not a JWT, and claims that are not channel lists', async () => {
    expect(await refusal(verifier.verify('not-a-token'))).toMatchObject({ code: 'SSE_ERR_TOKEN' });
    expect(await refusal(verifier.verify(await sign({ exp: now() + 60, channels: 'all' })))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/list of channel names/),
    });
    expect(await refusal(verifier.verify(await sign({ exp: now() + 60, channels: ['a b'] })))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
    });
    expect(await refusal(verifier.verify(await sign({ exp: now() + 60, channels: ['te*am'] })))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
    });
  });

  test('rotation: tokens signed with any configured secret are accepted', async () => {
    const rotating = createTokenVerifier({ secrets: [SECRET, OLD_SECRET] });
    const fresh = await rotating.verify(await sign({ exp: now() + 60, channels: ['a'] }, SECRET));
    const old = await rotating.verify(await sign({ exp: now() + 60, channels: ['b'] }, OLD_SECRET));
    expect([...fresh.channels.channels, ...old.channels.channels]).toEqual(['a', 'b']);
  });

  test.each([
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', () => generateKeyPairSync('ed25519')],
  ])('%s: a PEM public key verifies tokens signed with its private key', async (alg, pair) => {
    const { publicKey, privateKey } = pair();
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const v = createTokenVerifier({ publicKeys: [pem] });
    expect(v.algorithms).toContain(alg);
    const claims = await v.verify(await sign({ exp: now() + 60, channels: ['all'] }, privateKey, alg));
    expect([...claims.channels.channels]).toEqual(['all']);
  });

  test('algorithm confusion: an HS256 token whose secret is the public key PEM is refused', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const v = createTokenVerifier({ publicKeys: [pem] });
    const header = b64({ alg: 'HS256', typ: 'JWT' });
    const payload = b64({ exp: now() + 60, channels: ['admin'] });
    const mac = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
    expect(await refusal(v.verify(`${header}.${payload}.${mac}`))).toMatchObject({
      code: 'SSE_ERR_TOKEN',
      message: expect.stringMatching(/"HS256" are not accepted/),
    });
  });

  test('options are checked when the verifier is made', () => {
    expect(() => createTokenVerifier({})).toThrow(/at least one key/);
    expect(() => createTokenVerifier({ secrets: ['short'] })).toThrow(/at least 32 bytes/);
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => parsePublicKeys(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)).toThrow(/PRIVATE KEY/);
    expect(() => parsePublicKeys('hello')).toThrow(/no PEM public key/);
  });

  test('one PEM text may carry several keys (rotation through one file)', () => {
    const a = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const b = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(parsePublicKeys(`${a}\n${String(b)}`)).toHaveLength(2);
    expect(createTokenVerifier({ publicKeys: [`${a}\n${String(b)}`] }).algorithms).toEqual(['EdDSA', 'ES384']);
  });
});

describe('grants', () => {
  const grant = parseGrant(['bob', 'team-*'], 'channels');

  test('exact names and prefix patterns; a pattern needs at least one more character', () => {
    expect(grants(grant, 'bob')).toBe(true);
    expect(grants(grant, 'team-1')).toBe(true);
    expect(grants(grant, 'team-')).toBe(false);
    expect(grants(grant, 'team')).toBe(false);
    expect(grants(grant, 'bobby')).toBe(false);
    expect(grants(parseGrant(['*'], 'channels'), 'anything')).toBe(true);
  });
});

describe('tokenOf', () => {
  test('Authorization: Bearer, then ?token=, then the cookie', () => {
    const cookie = { cookie: 'other=1; sse_token=from-cookie' };
    expect(tokenOf(req('/?token=from-query', { ...cookie, authorization: 'Bearer from-header' }))).toBe('from-header');
    expect(tokenOf(req('/?token=from-query', cookie))).toBe('from-query');
    expect(tokenOf(req('/', cookie))).toBe('from-cookie');
    expect(tokenOf(req('/', { cookie: 'jwt=x' }), 'jwt')).toBe('x');
    expect(tokenOf(req('/?token=q'), 'sse_token', false)).toBeUndefined();
    expect(tokenOf(req('/'))).toBeUndefined();
  });
});

describe('fromToken', () => {
  const resolve = fromToken({ secrets: [SECRET] });
  const token = (claims: Record<string, unknown>) => sign({ exp: now() + 60, ...claims });

  test('without ?channels=, the channels the token names exactly', async () => {
    const t = await token({ channels: ['bob', 'all', 'team-*'] });
    expect(await resolve(req(`/?token=${t}`))).toEqual(['bob', 'all']);
  });

  test('the query narrows the grant, and may name channels of a pattern', async () => {
    const t = await token({ channels: ['bob', 'all', 'team-*'] });
    expect(await resolve(req(`/?channels=all,team-7&token=${t}`))).toEqual(['all', 'team-7']);
  });

  test('the query can never widen the token: a channel beyond the claim is 403', async () => {
    const t = await token({ channels: ['bob', 'all'] });
    expect(await refusal(Promise.resolve(resolve(req(`/?channels=all,admin&token=${t}`))))).toEqual({
      status: 403,
      code: 'SSE_ERR_FORBIDDEN',
      message: expect.stringMatching(/"admin"/),
    });
  });

  test('no token is anonymous (403 SSE_ERR_ANONYMOUS); a bad one is SSE_ERR_TOKEN and counted', async () => {
    const r = fromToken({ secrets: [SECRET] });
    expect(await refusal(Promise.resolve(r(req('/'))))).toMatchObject({ status: 403, code: 'SSE_ERR_ANONYMOUS' });
    expect(await refusal(Promise.resolve(r(req('/?token=x.y.z'))))).toMatchObject({ code: 'SSE_ERR_TOKEN' });
    expect(r.counters.refused).toBe(1);
  });

  test('a token of patterns only needs the channels named (400)', async () => {
    const t = await token({ channels: ['team-*'] });
    expect(await refusal(Promise.resolve(resolve(req(`/?token=${t}`))))).toMatchObject({
      status: 400,
      code: 'SSE_ERR_NO_CHANNELS',
    });
  });

  test('claimsOf gives the accepted claims (sub for logs and presence)', async () => {
    const request = req(`/?token=${await token({ sub: 'bob', channels: ['bob'] })}`);
    await resolve(request);
    expect((resolve.claimsOf(request) as TokenClaims).sub).toBe('bob');
  });

  test('userOf gives the sub, so presence counts token holders as users', async () => {
    const named = req(`/?token=${await token({ sub: 'bob', channels: ['bob'] })}`);
    const anonymous = req(`/?token=${await token({ channels: ['all'] })}`);
    await resolve(named);
    await resolve(anonymous);
    expect(resolve.userOf?.(named)).toBe('bob');
    expect(resolve.userOf?.(anonymous)).toBeUndefined();
  });
});

describe('fromToken: the end of a stream at exp', () => {
  afterEach(() => jest.useRealTimers());

  async function attachedStream(exp: number) {
    const resolve = fromToken({ secrets: [SECRET] });
    const request = req(`/?token=${await sign({ exp, channels: ['bob'] })}`);
    await resolve(request);
    const res = new EventEmitter();
    const connection = { channels: ['bob'], res, end: jest.fn() };
    return { resolve, request, res, connection };
  }

  test('ends the connection at exp, also when exp is beyond one setTimeout (24.8 days)', async () => {
    const thirtyDays = 30 * 24 * 3600;
    const { resolve, request, connection } = await attachedStream(now() + thirtyDays);
    jest.useFakeTimers({ now: Date.now() });
    resolve.attached?.(request, connection as unknown as Connection);
    jest.advanceTimersByTime(2 ** 31 - 1);
    expect(connection.end).not.toHaveBeenCalled();
    jest.advanceTimersByTime(thirtyDays * 1000);
    expect(connection.end).toHaveBeenCalledWith('server');
    expect(resolve.counters.expired).toBe(1);
  });

  test('a stream that closes first leaves no timer behind', async () => {
    const { resolve, request, res, connection } = await attachedStream(now() + 60);
    jest.useFakeTimers({ now: Date.now() });
    resolve.attached?.(request, connection as unknown as Connection);
    expect(jest.getTimerCount()).toBe(1);
    res.emit('close');
    expect(jest.getTimerCount()).toBe(0);
  });
});
