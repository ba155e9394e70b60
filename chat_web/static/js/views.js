// Rendering of the room list, the log, the members and the typing line from the app's state.

import { $, clockTime, el } from "./dom.js";

const ROLE_RANK = { user: 0, moderator: 1, admin: 2 };

export function canModerate(myRole, targetRole) {
  return ROLE_RANK[myRole] >= 1 && ROLE_RANK[myRole] > ROLE_RANK[targetRole];
}

export function renderRooms(app) {
  const rooms = [...app.rooms.values()].sort((a, b) => a.room_id.localeCompare(b.room_id));
  const items = rooms.map((room) => {
    const unread = app.unread.get(room.room_id) ?? 0;
    const member = app.mine.has(room.room_id);
    const current = room.room_id === app.current;
    return el(
      "li",
      { class: member ? "member" : "other" },
      el(
        "button",
        {
          type: "button",
          class: "room-button",
          "aria-current": current ? "true" : null,
          onclick: () => app.openRoom(room.room_name),
        },
        el("span", { class: "room-name" }, `#${room.room_name}`),
        el(
          "span",
          { class: "room-counts" },
          `${room.user_count} ${room.user_count === 1 ? "member" : "members"}, ` +
            `${room.online_count} online${member ? "" : " · not a member"}`,
        ),
        unread > 0 ? el("span", { class: "unread" }, `${unread} unread`) : null,
      ),
    );
  });
  $("room-list").replaceChildren(...items);
}

const nodes = new Map();

function messageNode(key, entry) {
  let node = nodes.get(key);
  if (node) return node;
  if (entry.kind === "event") {
    node = el("li", { class: "event" }, entry.text);
  } else {
    node = el(
      "li",
      { class: "message" },
      el("span", { class: "who" }, entry.username),
      " ",
      el("time", { datetime: entry.timestamp }, clockTime(entry.timestamp)),
      el("p", { class: "text" }, entry.text),
    );
  }
  nodes.set(key, node);
  return node;
}

function pendingNode(app, item) {
  const state = item.error ? `not sent: ${item.error}` : "sending…";
  return el(
    "li",
    { class: item.error ? "message failed" : "message pending" },
    el("span", { class: "who" }, app.me.username),
    " ",
    el("span", { class: "state" }, state),
    el("p", { class: "text" }, item.text),
    item.error
      ? el("button", { type: "button", class: "link", onclick: () => app.discard(item) }, "Discard")
      : null,
  );
}

/** The current room's log; keeps the reader's place (at the bottom, or above older pages). */
export function renderLog(app, { prepended = false } = {}) {
  const log = $("log");
  const top = log.scrollTop;
  const fromBottom = log.scrollHeight - top;
  const atBottom = fromBottom - log.clientHeight < 40;
  const roomLog = app.logs.get(app.current);
  const children = roomLog ? roomLog.list().map(({ key, entry }) => messageNode(key, entry)) : [];
  for (const item of app.outbox.values()) {
    if (item.room_id === app.current) children.push(pendingNode(app, item));
  }
  log.replaceChildren(...children);
  if (atBottom) log.scrollTop = log.scrollHeight;
  else log.scrollTop = prepended ? log.scrollHeight - fromBottom : top;
  $("older-button").hidden = !(roomLog?.hasMore ?? false);
}

export function renderTyping(app) {
  const names = [...(app.typing.get(app.current) ?? [])].sort();
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length > 1) text = `${names.join(", ")} are typing…`;
  $("typing").textContent = text;
}

export function renderMembers(app) {
  const items = app.members.map((member) => {
    const actions = canModerate(app.me.role, member.role) ||
      (app.me.role === "admin" && member.username !== app.me.username);
    return el(
      "li",
      { class: member.online ? "online" : "offline" },
      el("span", { class: "presence", "aria-hidden": "true" }, member.online ? "●" : "○"),
      el("span", { class: "who" }, member.username),
      el(
        "span",
        { class: "member-state" },
        `${member.role === "user" ? "" : `${member.role}, `}${member.online ? "online" : "offline"}`,
      ),
      actions
        ? el(
            "button",
            {
              type: "button",
              class: "menu-button",
              "aria-label": `Actions for ${member.username}`,
              "aria-haspopup": "true",
              onclick: () => app.moderation.open(member),
            },
            "⋯",
          )
        : null,
    );
  });
  $("member-list").replaceChildren(...items);
}
