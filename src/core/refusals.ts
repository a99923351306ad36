// The recent refusals, for the admin dashboard: slow clients cut, caps hit,
// 401/403s. Invariant: bounded — a fixed ring of the newest records plus one
// counter per kind — so a flood of refused requests costs a constant amount
// of memory, never one entry each.

/**
 * What was refused. The hub and the HTTP handlers record `slow-client`,
 * `cap`, `unauthorized`, `forbidden` and `bad-request`; other limits may add
 * their own kind.
 */
export type RefusalKind =
  'slow-client' | 'cap' | 'unauthorized' | 'forbidden' | 'bad-request' | (string & Record<never, never>);

export interface Refusal {
  /** Epoch ms. */
  time: number;
  kind: RefusalKind;
  /** One line saying what and why (at most MAX_DETAIL characters). */
  detail: string;
}

/** Records kept. */
export const REFUSALS_KEPT = 100;
const MAX_DETAIL = 300;
/** Kinds counted separately; past this, new kinds count as `other` (a kind could come from input). */
const MAX_KINDS = 32;

export class RefusalLog {
  private readonly ring: (Refusal | undefined)[];
  private next = 0;
  private readonly counts = new Map<string, number>();

  constructor(size = REFUSALS_KEPT) {
    this.ring = new Array<Refusal | undefined>(size);
  }

  record(kind: RefusalKind, detail: string, now = Date.now()): void {
    const counted = this.counts.has(kind) || this.counts.size < MAX_KINDS ? kind : 'other';
    this.counts.set(counted, (this.counts.get(counted) ?? 0) + 1);
    const line = detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
    this.ring[this.next] = { time: now, kind, detail: line };
    this.next = (this.next + 1) % this.ring.length;
  }

  /** The kept records, newest first. */
  recent(): Refusal[] {
    const out: Refusal[] = [];
    for (let i = 1; i <= this.ring.length; i++) {
      const entry = this.ring[(this.next - i + this.ring.length) % this.ring.length];
      if (entry === undefined) break;
      out.push(entry);
    }
    return out;
  }

  /** Refusals counted since start, by kind. */
  totals(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
