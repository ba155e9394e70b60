// bench/run.py's Socket.IO baseline (issue 16): Socket.IO 4 on Node, WebSocket transport only.
//
//   node bench/socketio/server.js        (installed by bench/run.py: npm ci in this folder)
//
// A `send_message` event ({room_id, text}, with an ack) is broadcast to every connected
// socket as `message_received` (the chat's notification params), then acknowledged with the
// chat's result fields. Socket.IO encodes and frames a broadcast once (wsPreEncodedFrame in
// its adapter) and writes a busy socket's packets together. Prints
// `listening on http://HOST:PORT` on stderr once ready.
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
});
let seq = 0;

io.on("connection", (socket) => {
  socket.on("send_message", (params, ack) => {
    seq += 1;
    const timestamp = new Date().toISOString();
    io.emit("message_received", {
      seq,
      message_id: seq,
      room_id: params.room_id,
      username: "sender",
      text: params.text,
      timestamp,
    });
    if (typeof ack === "function") {
      ack({ message_id: seq, seq, timestamp, duplicate: false });
    }
  });
});

httpServer.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  console.error(`socket.io ${require("socket.io/package.json").version} listening on http://${address}:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
