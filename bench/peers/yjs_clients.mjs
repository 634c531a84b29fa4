// N stock Yjs clients editing documents i mod D: `node yjs_clients.mjs JSON`.
// JSON: {kind: "hocuspocus" | "y-websocket", url, clients, docs, edits, rate (edits/s per client; 0 = burst)}.
// Each edit sets one key of the map "m": key "<client>:<n>" -> the time it was made (ms).
// Prints one JSON line: when all edits were made, acknowledged (Hocuspocus only) and delivered to
// every other client on the same document, and each edit's time to reach all of them.
import * as Y from "yjs";
import WebSocket from "ws";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { WebsocketProvider } from "y-websocket";

const cfg = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now();
const clients = [];
const expected = new Map(); // doc -> edits every other client must see
const lastSeen = new Map(); // key -> [count of other clients that saw it, time the last did]

function connect(i) {
  const doc = new Y.Doc();
  const room = `doc-${i % cfg.docs}`;
  let provider;
  if (cfg.kind === "hocuspocus") {
    const websocketProvider = new HocuspocusProviderWebsocket({ url: cfg.url, WebSocketPolyfill: WebSocket });
    provider = new HocuspocusProvider({ websocketProvider, name: room, document: doc });
    provider.attach(); // a provider given its own websocket provider attaches explicitly
  } else {
    // disableBc: clients in one process would otherwise trade updates over BroadcastChannel,
    // never through the server
    provider = new WebsocketProvider(cfg.url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true });
  }
  const map = doc.getMap("m");
  const client = { i, doc, map, provider, room };
  map.observe((event) => {
    if (event.transaction.local) return;
    const at = now();
    for (const key of event.keysChanged) {
      const seen = lastSeen.get(key) ?? [0, 0];
      lastSeen.set(key, [seen[0] + 1, at]);
    }
  });
  return new Promise((resolve) => {
    provider.on("synced", () => resolve(client));
  });
}

const peersOf = (i) => {
  let n = 0;
  for (let j = 0; j < cfg.clients; j++) if (j % cfg.docs === i % cfg.docs && j !== i) n++;
  return n;
};

for (let i = 0; i < cfg.clients; i++) clients.push(await connect(i));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const made = new Map(); // key -> time made
const start = now();

async function edit(client) {
  // paced: the clients take turns within each period, as people typing do
  const first = cfg.rate > 0 ? start + (client.i * 1000) / (cfg.clients * cfg.rate) : start;
  await sleep(Math.max(0, first - now()));
  for (let n = 0; n < cfg.edits; n++) {
    const key = `${client.i}:${n}`;
    const t = now();
    made.set(key, t);
    client.map.set(key, t);
    if (cfg.rate > 0) await sleep(Math.max(0, first + ((n + 1) * 1000) / cfg.rate - now()));
    else if (n % 10 === 9) await sleep(0); // let the socket breathe, as a UI thread would
  }
}
await Promise.all(clients.map(edit));
const madeAll = now();

const deadline = now() + cfg.timeout_s * 1000;
let acked = null;
if (cfg.kind === "hocuspocus") {
  while (clients.some((c) => c.provider.unsyncedChanges > 0) && now() < deadline) await sleep(5);
  if (clients.every((c) => c.provider.unsyncedChanges === 0)) acked = now();
}
const delivered = () => [...made.keys()].every((key) => (lastSeen.get(key)?.[0] ?? 0) >= peersOf(Number(key.split(":")[0])));
while (!delivered() && now() < deadline) await sleep(5);
const deliveredAt = delivered() ? now() : null;
const latencies = [];
for (const [key, t] of made) {
  const seen = lastSeen.get(key);
  if (seen && seen[0] >= peersOf(Number(key.split(":")[0])) && seen[0] > 0) latencies.push(seen[1] - t);
}
const missing = [...made.keys()].filter((key) => (lastSeen.get(key)?.[0] ?? 0) < peersOf(Number(key.split(":")[0]))).length;
const report = JSON.stringify({ start, made: madeAll, acked, delivered: deliveredAt, latencies, missing, edits: made.size }) + "\n";
for (const c of clients) c.provider.destroy();
// to a pipe, stdout is written asynchronously: exit only once the whole report is out
process.stdout.write(report, () => process.exit(0));
