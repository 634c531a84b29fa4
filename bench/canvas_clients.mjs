// Stock Yjs clients for bench/canvas.py: node canvas_clients.mjs <config.json>
// config: {server, page, tokens: [..], edits, interval_ms, expected: [marker prefixes]}
// Every client joins the page; "ready" is printed once all are synced; after a "go" line on
// stdin each client inserts `<y{i}.{k}>` at the start of the narrative every interval (with
// jitter), and every client notes when it first sees each marker. When every client has seen
// every expected marker (or after the timeout) one JSON line is printed:
// {sent: {marker: ms}, visible / first: {marker: latest / earliest arrival among the other
// clients, ms}, missing: sightings that never came}
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const now = () => performance.timeOrigin + performance.now()
const MARKER = /[<([{!#$%&*+]([ye]\d+)\.(\d+)>/g
const expectedTotal = config.expected.length * config.edits

const closes = []
const clients = config.tokens.map((token, i) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(config.server, config.page, doc, {
    WebSocketPolyfill: WebSocket, params: { token }, disableBc: true, maxBackoffTime: 1000
  })
  provider.awareness.setLocalStateField('user', { name: `client ${i}` })
  provider.on('connection-close', (event) => {
    closes.push(`${event?.code} ${event?.reason}`)
  })
  const seen = new Map()
  doc.getText('narrative').observe((event) => {
    const at = now()
    for (const d of event.delta) {
      if (typeof d.insert !== 'string') continue
      for (const m of d.insert.matchAll(MARKER)) {
        const key = `${m[1]}.${m[2]}`
        if (!seen.has(key)) seen.set(key, at)
      }
    }
  })
  return { i, doc, provider, seen }
})

await Promise.all(clients.map((c) => new Promise((resolve) => {
  if (c.provider.synced) resolve()
  else c.provider.once('sync', () => resolve())
})))
console.log('ready')
const lines = createInterface({ input: process.stdin })
await new Promise((resolve) => lines.once('line', resolve))

const sent = {}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
await Promise.all(clients.map(async (c) => {
  await sleep(Math.random() * config.interval_ms)
  for (let k = 0; k < config.edits; k++) {
    const key = `y${c.i}.${k}`
    sent[key] = now()
    c.seen.set(key, sent[key])
    c.doc.getText('narrative').insert(0, `<${key}>`)
    await sleep(config.interval_ms * (0.5 + Math.random()))
  }
}))
const deadline = now() + config.timeout_ms
while (now() < deadline && clients.some((c) => c.seen.size < expectedTotal)) await sleep(50)
const visible = {}
const first = {}
let missing = 0
for (const prefix of config.expected) {
  for (let k = 0; k < config.edits; k++) {
    const key = `${prefix}.${k}`
    let latest = 0
    let earliest = Infinity
    for (const c of clients) {
      if (prefix === `y${c.i}`) continue // the author
      const at = c.seen.get(key)
      if (at === undefined) missing++
      else {
        latest = Math.max(latest, at)
        earliest = Math.min(earliest, at)
      }
    }
    visible[key] = latest
    first[key] = earliest === Infinity ? null : earliest
  }
}
console.log(JSON.stringify({ sent, visible, first, missing, closes }))
for (const c of clients) c.provider.destroy()
process.exit(0)
