// A new user's client: `json-rpc-2.0` over the `ws` package, nothing of ours.
// Usage: node node_client.mjs WS_URL TOKEN ROOM TEXT
// Prints one JSON line of what it saw; tests/interop/test_third_party_clients.py checks it.
import WebSocket from "ws";
import { JSONRPCClient, JSONRPCServer, JSONRPCServerAndClient } from "json-rpc-2.0";

const [wsUrl, token, room, text] = process.argv.slice(2);
const TIMEOUT_MS = 10_000;

// Bounded waits: a broken server fails the test, it does not hang it.
function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
const peer = new JSONRPCServerAndClient(
  new JSONRPCServer(),
  new JSONRPCClient((request) => ws.send(JSON.stringify(request))),
);

// Server notifications arrive as calls of methods without an id.
let welcome;
const established = new Promise((resolve) => {
  peer.addMethod("connection_established", (params) => resolve(params));
});
let gotMessage;
const received = new Promise((resolve) => {
  gotMessage = resolve;
});
peer.addMethod("message_received", (params) => {
  if (params.text === text) gotMessage(params);
});

ws.on("message", (data) => peer.receiveAndSend(JSON.parse(data.toString())));
ws.on("close", (code) => peer.rejectAllPendingRequests(`socket closed with ${code}`));

try {
  await within(new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  }), "the socket to open");
  welcome = await within(established, "connection_established");

  const joined = await within(peer.request("join_room", { room_name: room }), "join_room");
  const sent = await within(
    peer.request("send_message", { text, client_msg_id: "node-1" }),
    "send_message",
  );
  const message = await within(received, "message_received");

  const batch = await within(
    peer.requestAdvanced([
      { jsonrpc: "2.0", id: "b1", method: "ping" },
      { jsonrpc: "2.0", id: "b2", method: "list_members", params: { room_id: joined.room_id } },
    ]),
    "the batch",
  );

  let error = null;
  try {
    await within(peer.request("join_room", { room_name: "no spaces!" }), "the bad join_room");
  } catch (exc) {
    error = { code: exc.code, message: exc.message, data: exc.data };
  }

  console.log(JSON.stringify({ welcome, joined, sent, message, batch, error }));
} finally {
  ws.close();
}
