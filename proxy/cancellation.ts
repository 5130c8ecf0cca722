/**
 * A cancellation token for one request: set when the client goes away or a deadline passes,
 * observed by the clients to abandon upstream work. It exists because AbortController /
 * EventTarget cost more per request than the rest of a layer; this is a flag and a list.
 *
 * Owns: the flag and its listeners. Does not decide when to cancel.
 */
export class Cancellation {
  aborted = false;
  private listeners: (() => void)[] | undefined;

  /** Runs `listener` on cancellation (at once if already cancelled). */
  onAbort(listener: () => void): void {
    if (this.aborted) listener();
    else if (this.listeners === undefined) this.listeners = [listener];
    else this.listeners.push(listener);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const l of listeners) l();
  }

  /** A token cancelled with this one, that can also be cancelled on its own. */
  child(): Cancellation {
    const c = new Cancellation();
    this.onAbort(() => c.abort());
    return c;
  }
}
