// What each server notification does to the page: one handler a method, called with the
// ChatApp as `this` (main.js) and the notification's params.

import { $, el } from "./dom.js";
import { renderLog, renderMembers, renderRooms, renderTyping } from "./views.js";

export const notificationHandlers = {
  connection_established(p) {
    this.me.role = p.role;
    $("whoami").textContent = `${p.username} (${p.role})`;
    this.moderation.refresh();
    this.mine = new Set(p.rooms);
    if (!p.resumed) {
      for (const log of this.logs.values()) log.clear();
    }
    this.reload(p.resumed ? this.current : (this.current ?? p.current_room));
    this.flushOutbox();
  },
  resync_required() {
    for (const log of this.logs.values()) log.clear();
    this.conn.request("whoami").then((who) => {
      this.mine = new Set(who.rooms);
      this.reload(this.mine.has(this.current) ? this.current : who.current_room);
    }, () => {});
  },
  message_received(p) {
    const log = this.logOf(p.room_id);
    for (const item of this.outbox.values()) {
      if (p.username === this.me.username && item.client_msg_id === p.client_msg_id) {
        this.outbox.delete(item.client_msg_id);
      }
    }
    const added = log.addMessage(p);
    if (added && p.room_id !== this.current && p.username !== this.me.username) {
      this.unread.set(p.room_id, (this.unread.get(p.room_id) ?? 0) + 1);
      renderRooms(this);
    }
    this.stopTypingOf(p.room_id, p.username);
    if (p.room_id === this.current) renderLog(this);
  },
  user_joined(p) {
    if (p.username === this.me.username) this.mine.add(p.room_id);
    this.setCount(p.room_id, p.user_count);
    this.logEvent(p, `${p.username} joined`);
  },
  user_left(p) {
    const how = { left: "left", kicked: "was kicked", banned: "was banned" }[p.reason] ?? "left";
    this.setCount(p.room_id, p.user_count);
    this.logEvent(p, `${p.username} ${how}`);
    if (p.username === this.me.username) this.lostRoom(p.room_id, null);
  },
  user_kicked(p) {
    const by = `by ${p.by}${p.reason ? `: ${p.reason}` : ""}`;
    if (p.username === this.me.username) {
      if (p.room_id === null) {
        this.ending = `You were kicked from the chat ${by}.`;
      } else {
        this.lostRoom(p.room_id, `You were kicked from #${this.nameOf(p.room_id)} ${by}.`);
      }
    } else if (p.room_id === null || p.room_id === this.current) {
      this.showNotice(`${p.username} was kicked ${by}.`);
    }
  },
  user_banned(p) {
    const until = p.until ? `until ${new Date(p.until).toLocaleString()}` : "until unbanned";
    const by = `by ${p.by}${p.reason ? `: ${p.reason}` : ""}`;
    if (p.username === this.me.username) {
      this.ending = `You were banned ${until} ${by}.`;
    } else {
      this.moderation.prefillUnban(p.username);
      this.showNotice(`${p.username} was banned ${until} ${by}.`);
    }
  },
  user_unbanned(p) {
    this.showNotice(`${p.username} was unbanned by ${p.by}.`);
  },
  role_changed(p) {
    if (p.username === this.me.username) {
      this.me.role = p.role;
      $("whoami").textContent = `${this.me.username} (${p.role})`;
      this.moderation.refresh();
      this.showNotice(`${p.by} made you ${p.role}.`);
    }
    this.refreshMembers();
  },
  system_announcement(p) {
    if (this.announced.has(p.seq)) return;
    this.announced.add(p.seq);
    const banner = el(
      "div",
      { class: `announcement ${p.level}`, role: "alert" },
      el("strong", {}, p.level === "info" ? "Announcement" : p.level.toUpperCase()),
      " ",
      el("span", {}, p.message),
      " ",
      el("span", { class: "by" }, `(${p.by})`),
      el(
        "button",
        { type: "button", class: "link", onclick: () => banner.remove() },
        "Dismiss",
      ),
    );
    $("announcements").append(banner);
  },
  room_created(p) {
    if (!this.rooms.has(p.room_id)) {
      this.rooms.set(p.room_id, { ...p, user_count: 0, online_count: 0 });
    }
    renderRooms(this);
    this.scheduleRefresh();
  },
  room_deleted(p) {
    this.rooms.delete(p.room_id);
    this.logs.delete(p.room_id);
    if (this.mine.has(p.room_id)) {
      this.lostRoom(p.room_id, `#${p.room_name} was deleted by ${p.by}.`);
    }
    renderRooms(this);
  },
  presence_changed(p) {
    if (this.members.some((m) => m.username === p.username)) {
      this.members = this.members.map((m) =>
        m.username === p.username ? { ...m, online: p.online } : m,
      );
      renderMembers(this);
    }
    this.scheduleRefresh();
  },
  user_started_typing(p) {
    if (!this.typing.has(p.room_id)) this.typing.set(p.room_id, new Set());
    this.typing.get(p.room_id).add(p.username);
    renderTyping(this);
  },
  user_stopped_typing(p) {
    this.stopTypingOf(p.room_id, p.username);
  },
};
