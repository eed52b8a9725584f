/** A raw WebSocket client of the sync protocol for tests: records every message and waits for conditions. */
export class RawSocket {
  readonly socket: WebSocket;
  readonly messages: Record<string, unknown>[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.socket = new WebSocket(url.replace("http", "ws") + "/api/1.48.0/sync");
    this.opened = new Promise((resolve) => this.socket.onopen = () => resolve());
    this.socket.onmessage = (event) => {
      this.messages.push(JSON.parse(event.data));
      this.#wake();
    };
    this.socket.onclose = (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.#wake();
    };
  }

  #wake() {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Waits until `predicate` holds (checked after every message / close). */
  async until(predicate: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  ofType(type: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type);
  }

  connect(extra: Record<string, unknown> = {}): void {
    this.send({
      type: "Connect",
      sessionId: crypto.randomUUID(),
      connectionCount: 0,
      lastCloseReason: "InitialConnect",
      clientTs: Date.now(),
      ...extra,
    });
  }
}
