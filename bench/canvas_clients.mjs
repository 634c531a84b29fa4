// Stock Yjs clients for bench/canvas.py: node canvas_clients.mjs <config.json>
// config: {server, page, tokens: [..], edits, interval_ms, expected: [marker prefixes]}
// Every client joins the page; "ready" is printed once all are synced; after a "go" line on
// stdin each client inserts `<y{i}.{k}>` at the start of the narrative every interval (with
// jitter), and every client notes when it first sees each marker. Every 250 ms one progress line
// is printed: {"sent": edits made, "seen": sightings so far, summed over the clients}. On a
// "report" line on stdin the clients stop editing and one JSON line is printed:
// {sent: {marker: ms}, visible / first: {marker: latest (null: not every other client saw it) /
// earliest arrival among the other clients, ms}, unseen: {marker: clients that never saw it},
// closes: connection closes, texts: every client's narrative}
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const now = () => performance.timeOrigin + performance.now()
const MARKER = /[<([{!#$%&*+]([ye]\d+)\.(\d+)>/g

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

const lines = createInterface({ input: process.stdin })
const commands = []
const waiting = []
lines.on('line', (line) => {
  const resolve = waiting.shift()
  if (resolve) resolve(line.trim())
  else commands.push(line.trim())
})
const command = () => new Promise((resolve) => {
  if (commands.length) resolve(commands.shift())
  else waiting.push(resolve)
})

await Promise.all(clients.map((c) => new Promise((resolve) => {
  if (c.provider.synced) resolve()
  else c.provider.once('sync', () => resolve())
})))
console.log('ready')
await command() // go

const sent = {}
let made = 0
const progress = setInterval(() => {
  const seen = clients.reduce((n, c) => n + c.seen.size, 0)
  console.log(JSON.stringify({ progress: { sent: made, seen } }))
}, 250)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let stopped = false
const editing = Promise.all(clients.map(async (c) => {
  await sleep(Math.random() * config.interval_ms)
  for (let k = 0; k < config.edits && !stopped; k++) {
    const key = `y${c.i}.${k}`
    sent[key] = now()
    c.seen.set(key, sent[key])
    c.doc.getText('narrative').insert(0, `<${key}>`)
    made++
    await sleep(config.interval_ms * (0.5 + Math.random()))
  }
}))
await command() // report (perhaps before every edit was made: the bench gave up)
stopped = true
await editing
clearInterval(progress)
const visible = {}
const first = {}
const unseen = {}
for (const prefix of config.expected) {
  for (let k = 0; k < config.edits; k++) {
    const key = `${prefix}.${k}`
    let latest = 0
    let earliest = Infinity
    let missing = 0
    for (const c of clients) {
      if (prefix === `y${c.i}`) continue // the author
      const at = c.seen.get(key)
      if (at === undefined) missing++
      else {
        latest = Math.max(latest, at)
        earliest = Math.min(earliest, at)
      }
    }
    if (missing) unseen[key] = missing
    visible[key] = missing ? null : latest
    first[key] = earliest === Infinity ? null : earliest
  }
}
const texts = clients.map((c) => c.doc.getText('narrative').toString())
const report = JSON.stringify({ sent, visible, first, unseen, closes, texts }) + '\n'
for (const c of clients) c.provider.destroy()
// to a pipe, stdout is written asynchronously: exit only once the whole report is out
process.stdout.write(report, () => process.exit(0))
