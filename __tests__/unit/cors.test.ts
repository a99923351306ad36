// createCors(): only listed origins get CORS headers; preflights are answered.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCors, normalizeOrigin } from '../../src/http/cors';

/** Just what createCors touches: headers set before the answer, and the answer. */
class FakeResponse {
  statusCode = 0;
  headersSent = false;
  private readonly headers = new Map<string, string>();
  setHeader(name: string, value: string): void {
    this.headers.set(name.toLowerCase(), value);
  }
  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    this.statusCode = status;
    for (const [k, v] of Object.entries(headers)) this.setHeader(k, String(v));
    this.headersSent = true;
    return this;
  }
  end(): void {}
  asResponse(): ServerResponse {
    return this as unknown as ServerResponse;
  }
}

function req(method: string, headers: Record<string, string>): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

describe('createCors', () => {
  const cors = createCors({ origins: ['http://app.example:8000'] });

  test('an allowed origin gets Allow-Origin and Allow-Credentials on the request itself', () => {
    const res = new FakeResponse();
    expect(cors(req('GET', { origin: 'http://app.example:8000' }), res.asResponse())).toBe(false);
    expect(res.getHeader('access-control-allow-origin')).toBe('http://app.example:8000');
    expect(res.getHeader('access-control-allow-credentials')).toBe('true');
    expect(res.getHeader('vary')).toBe('Origin');
  });

  test('any other origin gets no CORS headers, and its preflight is refused', () => {
    const res = new FakeResponse();
    expect(cors(req('GET', { origin: 'http://evil.example' }), res.asResponse())).toBe(false);
    expect(res.getHeader('access-control-allow-origin')).toBeUndefined();
    const pre = new FakeResponse();
    const preflight = { origin: 'http://evil.example', 'access-control-request-method': 'GET' };
    expect(cors(req('OPTIONS', preflight), pre.asResponse())).toBe(true);
    expect(pre.statusCode).toBe(403);
    expect(pre.getHeader('access-control-allow-origin')).toBeUndefined();
  });

  test('an allowed preflight is answered 204 with methods and headers', () => {
    const res = new FakeResponse();
    const preflight = {
      origin: 'http://app.example:8000',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'last-event-id',
    };
    expect(cors(req('OPTIONS', preflight), res.asResponse())).toBe(true);
    expect(res.statusCode).toBe(204);
    expect(String(res.getHeader('access-control-allow-headers'))).toMatch(/Last-Event-ID/);
  });

  test('origins are checked when made: "*" and URLs with a path are refused', () => {
    expect(normalizeOrigin('HTTP://App.Example:80/')).toBe('http://app.example');
    expect(() => normalizeOrigin('*')).toThrow(/"\*" is refused/);
    expect(() => normalizeOrigin('https://a.example/page')).toThrow(/drop the path/);
    expect(() => normalizeOrigin('app.example')).toThrow(/not an/);
  });
});
