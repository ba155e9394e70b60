// Moderation from a member's menu (kick, ban, role), unban and announcements. Only the
// controls the user's role may use are shown; the server still decides every request.

import { $, show } from "./dom.js";

export class Moderation {
  constructor(app) {
    this.app = app;
    this.target = null;
    $("kick-button").addEventListener("click", () => this.#kick());
    $("ban-button").addEventListener("click", () => this.#ban());
    $("set-role-button").addEventListener("click", () => this.#setRole());
    $("mod-close").addEventListener("click", () => this.close());
    $("unban-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#unban();
    });
    $("announce-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#announce();
    });
  }

  /** Shows the panels the current role may use. */
  refresh() {
    const role = this.app.me?.role ?? "user";
    const moderator = role === "moderator" || role === "admin";
    show($("unban-panel"), moderator);
    show($("announce-panel"), role === "admin");
    show($("delete-room-button"), role === "admin" && this.app.current !== null);
    if (!moderator) this.close();
  }

  open(member) {
    this.target = member;
    const admin = this.app.me.role === "admin";
    $("moderation-title").textContent = `Moderate ${member.username}`;
    const peer = this.app.me.role === member.role;
    show($("kick-button"), !peer);
    show($("ban-button"), !peer);
    show($("role-controls"), admin);
    $("mod-role").value = member.role;
    show($("moderation"), true);
    $("mod-reason").focus();
  }

  close() {
    this.target = null;
    show($("moderation"), false);
  }

  prefillUnban(username) {
    $("unban-user").value = username;
  }

  async #run(action, done) {
    try {
      const result = await action();
      this.#say(done(result));
      return true;
    } catch (error) {
      this.#say(`Refused: ${error.message}`);
      return false;
    }
  }

  #say(text) {
    $("mod-result").textContent = text;
  }

  async #kick() {
    const username = this.target?.username;
    if (!username) return;
    const everywhere = $("mod-everywhere").checked;
    const params = { target_username: username, reason: $("mod-reason").value };
    if (!everywhere) params.room_id = this.app.current;
    const where = everywhere ? "the chat" : `#${this.app.current}`;
    if (await this.#run(() => this.app.conn.request("kick_user", params), () => `${username} was kicked from ${where}.`)) {
      this.close();
    }
  }

  async #ban() {
    const username = this.target?.username;
    if (!username) return;
    const params = { target_username: username, reason: $("mod-reason").value };
    const minutes = Number($("mod-duration").value);
    if ($("mod-duration").value !== "" && minutes > 0) {
      params.duration_seconds = Math.round(minutes * 60);
    }
    const ok = await this.#run(
      () => this.app.conn.request("ban_user", params),
      (result) => `${username} is banned ${result.until ? `until ${new Date(result.until).toLocaleString()}` : "until unbanned"}.`,
    );
    if (ok) {
      this.prefillUnban(username);
      this.close();
    }
  }

  async #setRole() {
    const username = this.target?.username;
    if (!username) return;
    const role = $("mod-role").value;
    await this.#run(
      () => this.app.conn.request("set_role", { target_username: username, role }),
      (result) => `${result.username} is now ${result.role}.`,
    );
    this.app.refreshMembers();
  }

  async #unban() {
    const username = $("unban-user").value.trim();
    if (!username) return;
    await this.#run(
      () => this.app.conn.request("unban_user", { target_username: username }),
      (result) => (result.unbanned ? `${username} is unbanned.` : `${username} was not banned.`),
    );
  }

  async #announce() {
    const message = $("announcement").value;
    if (!message.trim()) return;
    const level = $("announce-level").value;
    const ok = await this.#run(
      () => this.app.conn.request("broadcast_announcement", { message, level }),
      () => "Announcement sent.",
    );
    if (ok) $("announcement").value = "";
  }
}
