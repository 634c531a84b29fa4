// A stock Yjs client (yjs + y-websocket + ws from npm) for the canvas interop test.
// node canvas_client.mjs refused <server> <page> <token>
//   connects and prints the close code and reason it gets.
// node canvas_client.mjs edit <server> <page> <token> <expect.json>
//   two providers join the page; A inserts expect.text at the start of the narrative once both
//   are synced (printing "ready" first); both wait until the page holds expect.title, the
//   components expect.components and the text, and A sees B's presence; then print both docs.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [mode, server, page, token, expectJson] = process.argv.slice(2)
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', last })); process.exit(2) }, 30000)
let last = null

function join (name) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server, page, doc, {
    WebSocketPolyfill: WebSocket, params: { token }, disableBc: true, maxBackoffTime: 500
  })
  provider.awareness.setLocalStateField('user', { name })
  return { doc, provider }
}

function snapshot (doc) {
  return {
    fields: doc.getMap('fields').toJSON(),
    narrative: doc.getText('narrative').toString(),
    components: components(doc.getMap('components.list').toJSON())
  }
}

// An ordered list's elements from its root Map (the contract's layout): live while it has a
// 'pos/<id>' and no 'del/<id>/<replica>', sorted by position then id.
function components (entries) {
  const pos = {}
  const props = {}
  const removed = new Set()
  for (const [key, value] of Object.entries(entries)) {
    const [kind, id, prop] = key.split('/')
    if (kind === 'pos') pos[id] = value
    else if (kind === 'del') removed.add(id)
    else if (kind === 'val') (props[id] ??= {})[prop] = value
  }
  const live = Object.keys(pos).filter((id) => !removed.has(id))
  live.sort((a, b) => pos[a] < pos[b] ? -1 : pos[a] > pos[b] ? 1 : a < b ? -1 : a > b ? 1 : 0)
  return live.map((id) => ({ id, ...props[id] }))
}

const synced = (provider) => new Promise((resolve) => {
  if (provider.synced) resolve()
  else provider.once('sync', (ok) => ok && resolve())
})

if (mode === 'refused') {
  const { provider } = join('stranger')
  provider.on('connection-close', (event) => {
    console.log(JSON.stringify({ code: event?.code, reason: event?.reason }))
    provider.destroy()
    process.exit(0)
  })
} else {
  const expect = JSON.parse(expectJson)
  const a = join('Node A')
  const b = join('Node B')
  await synced(a.provider)
  await synced(b.provider)
  console.log('ready')
  a.doc.getText('narrative').insert(0, expect.text)
  const done = () => {
    const names = [...a.provider.awareness.getStates().values()].map((s) => s.user?.name)
    const [sa, sb] = [snapshot(a.doc), snapshot(b.doc)]
    last = { sa, names }
    return names.includes('Node B') && JSON.stringify(sa) === JSON.stringify(sb) &&
      sa.fields.title === expect.title && sa.narrative.includes(expect.text) &&
      JSON.stringify(sa.components.map((c) => c.id)) === JSON.stringify(expect.components)
  }
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 50))
  console.log(JSON.stringify({ a: snapshot(a.doc), b: snapshot(b.doc), names: last.names }))
  a.provider.destroy()
  b.provider.destroy()
  process.exit(0)
}
