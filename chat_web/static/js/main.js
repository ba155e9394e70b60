// The page: log in, then one Connection whose notifications drive the rooms, the log and the
// members. Sends go through an outbox keyed by client_msg_id, re-sent after every reconnect.

import { AuthError, clearSession, loadSession, login, register, saveSession } from "./auth.js";
import { Connection, Disconnected } from "./connection.js";
import { $, show } from "./dom.js";
import { Moderation } from "./moderation.js";
import { RoomLog } from "./roomlog.js";
import { notificationHandlers } from "./notifications.js";
import { renderLog, renderMembers, renderRooms, renderTyping } from "./views.js";

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

class ChatApp {
  constructor() {
    this.conn = null;
    this.me = null;
    this.moderation = new Moderation(this);
    this.#reset();
    this.#wire();
  }

  #reset() {
    this.rooms = new Map();
    this.mine = new Set();
    this.current = null;
    this.logs = new Map();
    this.unread = new Map();
    this.typing = new Map();
    this.members = [];
    this.outbox = new Map();
    this.announced = new Set();
    this.ending = null;
    this.typingSent = 0;
    this.typingTimer = null;
    this.refreshTimer = null;
    this.membersTimer = null;
  }

  // --- session ----------------------------------------------------------------------------

  start(session) {
    this.#reset();
    this.me = { username: session.username, role: session.role };
    show($("login-view"), false);
    // The focused button is hidden now; browsers move the focus off it only at their next
    // rendering, which may come after the rooms load: let go of it here.
    document.activeElement?.blur();
    show($("chat-view"), true);
    show($("logout"), true);
    $("whoami").textContent = `${session.username} (${session.role})`;
    show($("whoami"), true);
    this.moderation.refresh();
    this.conn = new Connection(session.token, {
      onNotification: (method, params) => this.#notify(method, params),
      onState: (state, info) => this.#showState(state, info),
      onEnded: (kind, reason) => this.#ended(kind, reason),
    });
    this.conn.start();
  }

  logout(notice = "") {
    this.conn?.stop();
    this.conn = null;
    clearSession();
    this.#reset();
    this.members = [];
    renderRooms(this);
    renderMembers(this);
    $("log").replaceChildren();
    show($("chat-view"), false);
    show($("logout"), false);
    show($("whoami"), false);
    show($("login-view"), true);
    $("connection").textContent = "Not connected";
    $("notice").textContent = notice;
    show($("notice"), notice !== "");
    $("username").focus();
  }

  #showState(state, info) {
    const text = {
      connecting: "Connecting…",
      reconnecting: "Reconnecting…",
      connected: "Connected",
      waiting:
        `Connection lost. Reconnecting${info.server ? ` to ${info.server}` : ""}` +
        ` in ${Math.ceil((info.delay ?? 0) / 1000)} s…`,
      offline: "Disconnected",
    }[state];
    $("connection").textContent = text;
    $("connection").dataset.state = state;
  }

  #ended(kind, reason) {
    const explanations = {
      kicked: "You were kicked from the chat.",
      banned: "You are banned from the chat.",
      unauthenticated: "Your session has ended. Log in again.",
      refused: "The server refused the connection.",
      closed: "The server closed the connection.",
    };
    const notice = this.ending ?? `${explanations[kind]}${reason ? ` (${reason})` : ""}`;
    this.logout(notice);
  }

  // --- notifications ----------------------------------------------------------------------

  #notify(method, p) {
    const handler = this.handlers[method];
    if (handler) handler.call(this, p);
  }

  // What each notification does to the page (notifications.js).
  handlers = notificationHandlers;

  logOf(roomId) {
    if (!this.logs.has(roomId)) this.logs.set(roomId, new RoomLog());
    return this.logs.get(roomId);
  }

  nameOf(roomId) {
    return this.rooms.get(roomId)?.room_name ?? roomId;
  }

  logEvent(p, text) {
    const log = this.logs.get(p.room_id);
    if (log?.loaded) log.addEvent(p.seq, text, p.timestamp);
    if (p.room_id === this.current) {
      renderLog(this);
      this.refreshMembers();
    }
  }

  setCount(roomId, count) {
    const room = this.rooms.get(roomId);
    if (room) room.user_count = count;
    renderRooms(this);
    this.scheduleRefresh();
  }

  stopTypingOf(roomId, username) {
    if (this.typing.get(roomId)?.delete(username)) renderTyping(this);
  }

  showNotice(text) {
    $("room-notice").textContent = text;
    show($("room-notice"), text !== "");
  }

  lostRoom(roomId, why) {
    this.mine.delete(roomId);
    for (const item of [...this.outbox.values()]) {
      if (item.room_id === roomId) this.outbox.delete(item.client_msg_id);
    }
    if (why) this.showNotice(why);
    if (roomId === this.current) {
      this.current = null;
      const next = [...this.mine].sort()[0];
      if (next) this.openRoom(this.nameOf(next));
      else this.#showRoom();
    }
    renderRooms(this);
  }

  // --- loading ----------------------------------------------------------------------------

  async reload(roomId) {
    await this.refreshRooms();
    if (roomId && this.mine.has(roomId)) await this.openRoom(this.nameOf(roomId), { quiet: true });
    else if (this.current === null) this.#showRoom();
    // After login (the form is gone), where to type next; a reconnect leaves the focus alone.
    if (document.activeElement === document.body || document.activeElement === null) {
      $(this.current === null ? "room-input" : "message").focus();
    }
  }

  async refreshRooms() {
    try {
      const { rooms } = await this.conn.request("list_rooms");
      this.rooms = new Map(rooms.map((room) => [room.room_id, room]));
      renderRooms(this);
    } catch {
      // Disconnected: the next connection reloads.
    }
  }

  scheduleRefresh() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshRooms();
    }, 500);
  }

  refreshMembers() {
    clearTimeout(this.membersTimer);
    this.membersTimer = setTimeout(async () => {
      const roomId = this.current;
      if (!roomId) return;
      try {
        const { members } = await this.conn.request("list_members", { room_id: roomId });
        if (roomId !== this.current) return;
        this.members = members;
        renderMembers(this);
      } catch {
        // Disconnected, or no longer a member: a later event refreshes.
      }
    }, 150);
  }

  /** Joins (or re-joins) a room and shows it, with its latest history. */
  async openRoom(roomName, { quiet = false } = {}) {
    let result;
    try {
      result = await this.conn.request("join_room", { room_name: roomName });
    } catch (error) {
      if (!(error instanceof Disconnected)) this.showNotice(`Cannot join #${roomName}: ${error.message}`);
      return;
    }
    if (!quiet) this.showNotice("");
    const room = this.rooms.get(result.room_id) ?? { online_count: 1 };
    this.rooms.set(result.room_id, { ...room, ...result });
    this.mine.add(result.room_id);
    const log = this.logOf(result.room_id);
    for (const message of result.history) log.addMessage(message);
    const first = !log.loaded;
    log.loaded = true;
    this.current = result.room_id;
    this.unread.delete(result.room_id);
    this.members = [];
    this.#showRoom();
    this.refreshMembers();
    if (first) this.#probeOlder(result.room_id);
    this.scheduleRefresh();
  }

  /** Is there anything before the join's history? One message tells (`has_more` says the rest). */
  async #probeOlder(roomId) {
    const log = this.logs.get(roomId);
    const before = log?.oldestSeq();
    if (!log || before === null) return;
    try {
      const page = await this.conn.request("get_history", {
        room_id: roomId,
        before_seq: before,
        limit: 1,
      });
      for (const message of page.messages) log.addMessage(message);
      log.hasMore = page.has_more;
      if (roomId === this.current) renderLog(this, { prepended: true });
    } catch {
      // Disconnected: the next join probes again.
    }
  }

  #showRoom() {
    const room = this.rooms.get(this.current);
    $("room-title").textContent = room ? `#${room.room_name}` : "No room: join one";
    show($("leave-button"), room !== undefined);
    this.moderation.refresh();
    this.moderation.close();
    renderRooms(this);
    renderLog(this);
    renderTyping(this);
    renderMembers(this);
  }

  async loadOlder() {
    const roomId = this.current;
    const log = this.logs.get(roomId);
    if (!log || !log.hasMore || log.loading) return;
    const before = log.oldestSeq();
    if (before === null) {
      log.hasMore = false;
      renderLog(this);
      return;
    }
    log.loading = true;
    try {
      const page = await this.conn.request("get_history", {
        room_id: roomId,
        before_seq: before,
        limit: 50,
      });
      for (const message of page.messages) log.addMessage(message);
      log.hasMore = page.has_more;
      if (roomId === this.current) renderLog(this, { prepended: true });
    } catch {
      // Disconnected: scrolling again retries.
    } finally {
      log.loading = false;
    }
  }

  // --- sending ----------------------------------------------------------------------------

  send(text) {
    if (!this.current || text.trim() === "") return;
    const item = { client_msg_id: newClientId(), room_id: this.current, text, error: null };
    this.outbox.set(item.client_msg_id, item);
    renderLog(this);
    $("log").scrollTop = $("log").scrollHeight;
    this.typingSent = 0;
    this.#deliver(item);
  }

  discard(item) {
    this.outbox.delete(item.client_msg_id);
    renderLog(this);
  }

  flushOutbox() {
    for (const item of this.outbox.values()) {
      if (!item.error) this.#deliver(item);
    }
  }

  async #deliver(item) {
    if (!this.conn?.ready || item.sending) return;
    item.sending = true;
    try {
      const ack = await this.conn.request("send_message", {
        room_id: item.room_id,
        text: item.text,
        client_msg_id: item.client_msg_id,
      });
      if (!this.outbox.has(item.client_msg_id)) return;
      this.outbox.delete(item.client_msg_id);
      // The ack came before the notification: show it now; the notification is then a repeat.
      this.logOf(item.room_id).addMessage({
        message_id: ack.message_id,
        seq: ack.seq,
        room_id: ack.room_id,
        username: this.me.username,
        text: item.text,
        timestamp: ack.timestamp,
        client_msg_id: item.client_msg_id,
      });
    } catch (error) {
      if (error instanceof Disconnected) return; // re-sent on the next connection
      if (error.reason === "rate_limited") {
        const wait = error.data.retry_after_ms ?? 1000;
        setTimeout(() => this.#deliver(item), wait);
        return;
      }
      item.error = error.message;
    } finally {
      item.sending = false;
      if (item.room_id === this.current) renderLog(this);
    }
  }

  #typing() {
    if (!this.current) return;
    const now = Date.now();
    if (now - this.typingSent > TYPING_REFRESH_MS) {
      this.typingSent = now;
      this.conn?.notify("start_typing", { room_id: this.current });
    }
    clearTimeout(this.typingTimer);
    const roomId = this.current;
    this.typingTimer = setTimeout(() => {
      this.typingSent = 0;
      this.conn?.notify("stop_typing", { room_id: roomId });
    }, TYPING_IDLE_MS);
  }

  // --- wiring -----------------------------------------------------------------------------

  #wire() {
    const credentials = () => [$("username").value.trim(), $("password").value];
    const authenticate = async (how) => {
      const [username, password] = credentials();
      show($("login-error"), false);
      if (!username || !password) {
        this.#loginError("Enter a username and a password.");
        return;
      }
      try {
        const session = await how(username, password);
        saveSession(session);
        $("password").value = "";
        show($("notice"), false);
        this.start(session);
      } catch (error) {
        this.#loginError(error instanceof AuthError ? error.message : String(error));
      }
    };
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      authenticate(login);
    });
    $("register-button").addEventListener("click", () => authenticate(register));
    $("logout").addEventListener("click", () => this.logout("You logged out."));

    $("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("room-input").value.trim();
      if (!name) return;
      $("room-input").value = "";
      this.openRoom(name).then(() => $("message").focus());
    });
    $("leave-button").addEventListener("click", async () => {
      const roomId = this.current;
      try {
        await this.conn.request("leave_room", { room_id: roomId });
        this.lostRoom(roomId, `You left #${this.nameOf(roomId)}.`);
      } catch (error) {
        this.showNotice(`Cannot leave: ${error.message}`);
      }
    });
    $("delete-room-button").addEventListener("click", async () => {
      const roomId = this.current;
      if (!roomId) return;
      try {
        await this.conn.request("delete_room", { room_id: roomId });
      } catch (error) {
        this.showNotice(`Cannot delete #${this.nameOf(roomId)}: ${error.message}`);
      }
    });

    const message = $("message");
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(message.value);
      message.value = "";
    });
    message.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    message.addEventListener("input", () => {
      if (message.value !== "") this.#typing();
    });

    $("older-button").addEventListener("click", () => this.loadOlder());
    $("log").addEventListener("scroll", () => {
      if ($("log").scrollTop < 40) this.loadOlder();
    });
  }

  #loginError(text) {
    $("login-error").textContent = text;
    show($("login-error"), true);
  }
}

const app = new ChatApp();
const session = loadSession();
if (session) app.start(session);
else $("username").focus();
