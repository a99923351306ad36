// Credentials never leave in what sse-hub prints. A Redis URL such as
// redis://user:PASSWORD@host carries its password; every error line, log
// line, --doctor report and /healthz answer passes through redactUrls()
// before it is written (CWE-532).

/**
 * `scheme://userinfo@` anywhere in a text, up to the authority's last `@` (as
 * URL parsers read it, so a password with a raw `@` is covered whole).
 */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;

/** `text` with the credentials of every URL in it replaced by `***`: `redis://***@host:6379`. */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}
