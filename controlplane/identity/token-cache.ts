// A bounded cache whose entries expire at their own time: least recently used entries leave
// first when it is full, expired ones on lookup. Holds TokenReview results keyed by a hash of the
// token (token-review.ts), so a restarting fleet costs one TokenReview per token, not per request.
// A Map keeps insertion order; a hit re-inserts the entry, so the first key is the least recent.

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class ExpiringLru<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new Error("maxEntries must be a positive integer");
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, expiresAt: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
