// The WebSocket session of docs/protocol.md sections 2, 3 and 5: JSON-RPC requests, batched
// frames, and reconnection with `since=` on every close the protocol says to resume from.
// The chat may have other nodes (`server.peer_urls`, learned once at load from GET /peers):
// each try after a lost socket goes to the next node in turn, starting from the page's own.

// Closes after which a client resumes (1006: the network dropped, or the server is down).
const ENDING_CODES = new Map([
  [1000, "closed"],
  [4001, "kicked"],
  [4400, "refused"],
  [4401, "unauthenticated"],
  [4403, "banned"],
]);
const MAX_DELAY_MS = 5000;
// Handshakes refused while the server answers /health: the token is no longer accepted
// (a browser sees a refused handshake only as 1006).
const MAX_REFUSALS = 3;

// The other nodes' base URLs; none when the server names none or cannot say.
const peersLearned = fetch(new URL("peers", document.baseURI), { cache: "no-store" })
  .then((response) => (response.ok ? response.json() : {}))
  .then((body) => (Array.isArray(body.peer_urls) ? body.peer_urls : []))
  .catch(() => []);

export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.reason = data?.reason ?? "error";
    this.data = data ?? {};
  }
}

export class Disconnected extends Error {
  constructor() {
    super("not connected");
    this.reason = "disconnected";
  }
}

/** One logical session that survives reconnects; `since` is the last durable seq seen. */
export class Connection {
  constructor(token, { onNotification, onState, onEnded }) {
    this.token = token;
    this.onNotification = onNotification;
    this.onState = onState;
    this.onEnded = onEnded;
    this.lastSeq = null;
    this.socket = null;
    this.ready = false;
    this.stopped = false;
    this.attempt = 0;
    this.refusals = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.timer = null;
    // Base URLs of the nodes, the page's own first; `node` is the one in use (or next tried).
    this.nodes = [new URL(".", document.baseURI)];
    this.node = 0;
    peersLearned.then((urls) => this.#addNodes(urls));
    window.addEventListener("online", () => this.#retryNow());
  }

  /** The node in use, or tried next: its host (and port), as the status line names it. */
  get server() {
    return this.nodes[this.node].host;
  }

  #addNodes(urls) {
    for (const text of urls) {
      let url;
      try {
        url = new URL(text.endsWith("/") ? text : `${text}/`);
      } catch {
        continue;
      }
      if (!this.nodes.some((node) => node.href === url.href)) this.nodes.push(url);
    }
  }

  start() {
    this.#open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "logout");
    this.#failPending();
  }

  /** A request; resolves with its result, rejects with RpcError or Disconnected. */
  request(method, params = {}) {
    if (!this.ready) return Promise.reject(new Disconnected());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /** A JSON-RPC notification (no answer): typing states. */
  notify(method, params = {}) {
    if (this.ready) this.socket.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }

  #url() {
    const url = new URL("ws", this.nodes[this.node]);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.token);
    url.searchParams.set("batch", "1");
    if (this.lastSeq !== null) url.searchParams.set("since", String(this.lastSeq));
    return url;
  }

  #open() {
    if (this.stopped) return;
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting", {});
    let opened = false;
    const socket = new WebSocket(this.#url());
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      for (const message of Array.isArray(frame) ? frame : [frame]) this.#receive(message);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.ready = false;
      this.#failPending();
      if (this.stopped) return;
      const ending = ENDING_CODES.get(event.code);
      if (ending) {
        this.stopped = true;
        this.onState("offline", {});
        this.onEnded(ending, event.reason);
        return;
      }
      this.#scheduleRetry(opened);
    };
  }

  async #scheduleRetry(opened) {
    if (!opened && (await serverAnswers(this.nodes[this.node]))) {
      this.refusals += 1;
      if (this.refusals >= MAX_REFUSALS) {
        this.stopped = true;
        this.onState("offline", {});
        this.onEnded("unauthenticated", "the server refused the session");
        return;
      }
    }
    // The next node; one round of them per step of the backoff, so a dead node is left
    // for a live one after one short delay.
    this.node = (this.node + 1) % this.nodes.length;
    const step = Math.floor(this.attempt / this.nodes.length);
    const base = Math.min(MAX_DELAY_MS, 250 * 2 ** step);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    const server = this.nodes.length > 1 ? this.server : null;
    this.onState("waiting", { delay, attempt: this.attempt, server });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#open(), delay);
  }

  #retryNow() {
    if (this.stopped || this.ready || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.#open();
  }

  #receive(message) {
    if (message.method === undefined) {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) {
        const { code, message: text, data } = message.error;
        waiter.reject(new RpcError(code, text, data));
      } else {
        waiter.resolve(message.result);
      }
      return;
    }
    const params = message.params ?? {};
    if (message.method === "connection_established") {
      // A fresh session starts from the head; a resumed one keeps its place.
      if (this.lastSeq === null || !params.resumed) this.lastSeq = params.journal_seq;
      this.ready = true;
      this.attempt = 0;
      this.refusals = 0;
      this.onState("connected", {});
    } else if (message.method === "resync_required") {
      this.lastSeq = params.journal_seq;
    } else if (typeof params.seq === "number") {
      // One order, each at most once (section 5): an old seq is a repeat.
      if (this.lastSeq !== null && params.seq <= this.lastSeq) return;
      this.lastSeq = params.seq;
    }
    this.onNotification(message.method, params);
  }

  #failPending() {
    const waiters = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiters) waiter.reject(new Disconnected());
  }
}

async function serverAnswers(base) {
  try {
    const response = await fetch(new URL("health", base), { cache: "no-store" });
    return response.ok;
  } catch {
    return false;
  }
}
