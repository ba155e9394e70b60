// What one room's log holds: messages and member events by seq, each once, and the paging
// state of `get_history`.

export class RoomLog {
  constructor() {
    this.entries = new Map(); // key -> entry
    this.sorted = null;
    this.loaded = false;
    this.hasMore = false;
    this.loading = false;
  }

  /** A message (`message_received`, history, or an acknowledged send); false if known. */
  addMessage(message) {
    return this.#add(`m${message.message_id}`, { kind: "message", ...message });
  }

  /** A member event (joined, left, kicked...) at its seq. */
  addEvent(seq, text, timestamp) {
    return this.#add(`e${seq}`, { kind: "event", seq, text, timestamp });
  }

  hasSent(username, clientMsgId) {
    for (const entry of this.entries.values()) {
      if (entry.client_msg_id === clientMsgId && entry.username === username) return true;
    }
    return false;
  }

  oldestSeq() {
    let oldest = null;
    for (const entry of this.entries.values()) {
      if (entry.kind === "message" && typeof entry.seq === "number") {
        oldest = oldest === null ? entry.seq : Math.min(oldest, entry.seq);
      }
    }
    return oldest;
  }

  /** Entries oldest first; live-only messages (no seq) keep their arrival order at the end. */
  list() {
    if (this.sorted === null) {
      const all = [...this.entries.entries()].map(([key, entry], index) => ({
        key,
        entry,
        index,
      }));
      all.sort((a, b) => order(a) - order(b) || a.index - b.index);
      this.sorted = all;
    }
    return this.sorted;
  }

  clear() {
    this.entries.clear();
    this.sorted = null;
    this.loaded = false;
    this.hasMore = false;
  }

  #add(key, entry) {
    if (this.entries.has(key)) return false;
    this.entries.set(key, entry);
    this.sorted = null;
    return true;
  }
}

function order({ entry }) {
  return typeof entry.seq === "number" ? entry.seq : Number.MAX_SAFE_INTEGER;
}
