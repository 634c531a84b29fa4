// Live collaborative editing of an Oracle canvas page in the WebOS (bundled into
// oracle-live.js by build-oracle-live.sh with yjs and y-websocket from npm).
//
// The page element #oc-page carries data-page-id, data-ws-path, data-token, data-token-url,
// data-render-url, data-can-edit, data-user-name and data-csrf. The script joins the page's Yjs
// document on the hub's y-websocket endpoint, re-renders a component whose title, config, data or
// place changed (the server renders its HTML: one renderer for first paint and live updates),
// shows who else is on the page, and turns the edit buttons into Yjs changes written in the
// layout the hub keeps ordered lists in (sync/lists.py): pos/<id>, val/<id>/<prop>,
// del/<id>/<replica>.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const LIST_ROOT = 'components.list'
const DEFAULTS = { title: '', config: {}, source: {}, data_rows: [], layout: {} }
const REFUSED = new Set([4003, 4000])

// --- positions (a port of sync/position.py) -----------------------------------------------

export function saltOf (clientId) {
  let out = ''
  let rest = clientId
  do {
    out += DIGITS[rest % 62]
    rest = Math.floor(rest / 62)
  } while (rest > 0)
  return out.endsWith('0') ? out + '1' : out
}

function midpoint (low, high) {
  if (high !== null) {
    let n = 0
    while (n < high.length && (n < low.length ? low[n] : '0') === high[n]) n++
    if (n) return high.slice(0, n) + midpoint(low.slice(n), high.slice(n))
  }
  const lo = low ? DIGITS.indexOf(low[0]) : 0
  const hi = high !== null ? DIGITS.indexOf(high[0]) : 62
  if (hi - lo > 1) return DIGITS[Math.floor((lo + hi + 1) / 2)]
  if (high !== null && high.length > 1) return high[0]
  return DIGITS[lo] + midpoint(low.slice(1), null)
}

export function between (before, after, salt) {
  const low = before || ''
  if (after !== null && !(low < after)) throw new Error(`no position between ${before} and ${after}`)
  let mid = midpoint(low, after)
  while (after !== null && after.startsWith(mid)) mid += midpoint('', after.slice(mid.length))
  return mid + salt
}

// --- the ordered list as read ---------------------------------------------------------------

export function readList (map) {
  const pos = {}
  const props = {}
  const tombs = {}
  map.forEach((value, key) => {
    const [kind, id, prop] = key.split('/')
    if (kind === 'pos') pos[id] = value
    else if (kind === 'del') (tombs[id] ??= []).push(key)
    else if (kind === 'val') (props[id] ??= {})[prop] = value
  })
  const order = Object.keys(pos).filter((id) => !tombs[id])
  order.sort((a, b) => pos[a] < pos[b] ? -1 : pos[a] > pos[b] ? 1 : a < b ? -1 : a > b ? 1 : 0)
  const components = order.map((id) => ({ ...DEFAULTS, ...props[id], id }))
  return { pos, props, order, components }
}

function stable (value) {
  if (Array.isArray(value)) return '[' + value.map(stable).join(',') + ']'
  if (value && typeof value === 'object') {
    return '{' + Object.keys(value).sort().map((k) => JSON.stringify(k) + ':' + stable(value[k])).join(',') + '}'
  }
  return JSON.stringify(value)
}

// --- edits ------------------------------------------------------------------------------------

export class CanvasEditor {
  constructor (doc) {
    this.doc = doc
    this.map = doc.getMap(LIST_ROOT)
  }

  get salt () { return saltOf(this.doc.clientID) }

  rename (id, title) {
    this.map.set(`val/${id}/title`, title)
  }

  add (component) {
    const { pos, order } = readList(this.map)
    const last = order.length ? pos[order[order.length - 1]] : null
    this.doc.transact(() => {
      this.map.set(`pos/${component.id}`, between(last, null, this.salt))
      for (const [prop, value] of Object.entries(component)) {
        if (prop !== 'id') this.map.set(`val/${component.id}/${prop}`, value)
      }
    })
  }

  remove (id) {
    const { props } = readList(this.map)
    this.doc.transact(() => {
      this.map.set(`del/${id}/${this.salt}`, true)
      this.map.delete(`pos/${id}`)
      for (const prop of Object.keys(props[id] || {})) this.map.delete(`val/${id}/${prop}`)
    })
  }

  move (id, index) {
    const { pos, order } = readList(this.map)
    const others = order.filter((other) => other !== id)
    if (index < 0 || index > others.length) return false
    const left = index ? pos[others[index - 1]] : null
    const right = index < others.length ? pos[others[index]] : null
    if (left !== null && right !== null && !(left < right)) return false
    this.map.set(`pos/${id}`, between(left, right, this.salt))
    return true
  }
}

// --- the page -----------------------------------------------------------------------------------

function newId () {
  const bytes = crypto.getRandomValues(new Uint8Array(9))
  return 'c' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

class LivePage {
  constructor (root) {
    this.root = root
    this.data = root.dataset
    this.canEdit = this.data.canEdit === 'true'
    this.board = root.querySelector('#oc-components')
    this.status = root.querySelector('#oc-status')
    this.presence = root.querySelector('#oc-presence')
    this.rendered = new Map()
    this.renderSeq = 0
    const initial = JSON.parse(root.querySelector('#oc-initial').textContent)
    for (const c of initial) this.rendered.set(c.id, stable({ ...DEFAULTS, ...c }))
    this.doc = new Y.Doc()
    this.editor = new CanvasEditor(this.doc)
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:' // the page's own host
    this.provider = new WebsocketProvider(`${scheme}//${location.host}${this.data.wsPath}`,
      this.data.pageId, this.doc, {
      params: { token: this.data.token }, disableBc: true, maxBackoffTime: 5000
    })
    this.provider.awareness.setLocalStateField('user', { name: this.data.userName })
    this.provider.on('status', ({ status }) => this.say(status === 'connected'
      ? (this.canEdit ? 'Live: your changes are shared as you make them' : 'Live, view only')
      : 'Connecting…'))
    this.provider.on('connection-close', (event) => this.closed(event))
    this.provider.awareness.on('change', () => this.showPresence())
    this.showPresence()
    this.editor.map.observe(() => this.refresh())
    this.doc.getText('narrative').observe(() => this.showNarrative())
    this.doc.getMap('fields').observe((event) => {
      if (event.keysChanged.has('title')) this.showTitle()
    })
    this.tokenTimer = setInterval(() => this.renewToken(), Number(this.data.tokenRenewMs || 300000))
    if (this.canEdit) this.bindEditing()
    root.dataset.live = 'joining'
    this.provider.on('sync', (synced) => { if (synced) root.dataset.live = 'synced' })
  }

  say (text) { if (this.status.textContent !== text) this.status.textContent = text }

  closed (event) {
    if (event && REFUSED.has(event.code)) {
      this.provider.shouldConnect = false
      this.provider.disconnect()
      this.say(`The hub refused this page's connection (${event.reason || event.code}); reload to try again`)
      this.root.dataset.live = 'refused'
    } else if (event && event.code === 4001) {
      this.renewToken()
    }
  }

  async renewToken () {
    try {
      const response = await fetch(this.data.tokenUrl, { credentials: 'same-origin' })
      if (response.ok) this.provider.params.token = (await response.json()).token
    } catch (error) {
      this.say('Connection lost; retrying…')
    }
  }

  showTitle () {
    const title = this.doc.getMap('fields').get('title')
    const heading = this.root.querySelector('#oc-page-title')
    if (title && heading) heading.textContent = title
  }

  showNarrative () {
    const node = this.root.querySelector('#oc-narrative')
    const text = this.doc.getText('narrative').toString()
    if (node && node.textContent !== text) node.textContent = text
    node?.toggleAttribute('hidden', !text)
  }

  showPresence () {
    const names = []
    for (const [clientId, state] of this.provider.awareness.getStates()) {
      if (!state.user) continue
      const self = clientId === this.doc.clientID
      names.push(self ? `${state.user.name} (you)` : state.user.name)
    }
    this.presence.replaceChildren(...names.sort().map((name) => {
      const li = document.createElement('li')
      li.textContent = name
      return li
    }))
  }

  refresh () {
    const { components, order } = readList(this.editor.map)
    const focus = this.focused()
    for (const id of [...this.rendered.keys()]) {
      if (!order.includes(id)) {
        this.rendered.delete(id)
        this.card(id)?.remove()
      }
    }
    for (const component of components) {
      const key = stable(component)
      if (this.rendered.get(component.id) !== key) {
        this.rendered.set(component.id, key)
        this.render(component)
      }
    }
    this.arrange(order)
    this.restore(focus)
    this.root.querySelector('#oc-empty')?.toggleAttribute('hidden', order.length > 0)
  }

  card (id) { return this.board.querySelector(`[data-component-id="${CSS.escape(id)}"]`) }

  arrange (order) {
    let previous = null
    order.forEach((id, at) => {
      const node = this.card(id)
      if (!node) return
      const expected = previous ? previous.nextElementSibling : this.board.firstElementChild
      if (expected !== node) this.board.insertBefore(node, expected)
      previous = node
      const [up, down] = ['up', 'down'].map((a) => node.querySelector(`[data-action="${a}"]`))
      if (up) up.disabled = at === 0
      if (down) down.disabled = at === order.length - 1
    })
  }

  async render (component) {
    const seq = ++this.renderSeq
    let node = this.card(component.id)
    if (!node) {
      node = document.createElement('section')
      node.className = 'oc-card oc-pending'
      node.dataset.componentId = component.id
      node.setAttribute('aria-busy', 'true')
      this.board.append(node)
      this.arrange(readList(this.editor.map).order)
    }
    node.dataset.renderSeq = String(seq)
    const response = await fetch(this.data.renderUrl, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.data.csrf },
      body: JSON.stringify({ component })
    })
    const current = this.card(component.id)
    if (!current || current.dataset.renderSeq !== String(seq)) return // a newer render won
    if (!response.ok) {
      current.textContent = `This component cannot be shown (${response.status}).`
      return
    }
    const template = document.createElement('template')
    template.innerHTML = (await response.text()).trim()
    const fresh = template.content.firstElementChild
    const focus = this.focused()
    current.replaceWith(fresh)
    this.arrange(readList(this.editor.map).order)
    this.restore(focus)
  }

  focused () {
    const active = document.activeElement
    const card = active?.closest?.('[data-component-id]')
    return card ? { id: card.dataset.componentId, action: active.dataset.action } : null
  }

  restore (focus) {
    if (!focus || !focus.action) return
    const card = this.card(focus.id)
    let target = card?.querySelector(`[data-action="${focus.action}"]`)
    if (target?.disabled) target = card.querySelector('button[data-action]:not([disabled])')
    if (target && document.activeElement !== target) target.focus()
  }

  bindEditing () {
    this.board.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]')
      if (!button) return
      const card = button.closest('[data-component-id]')
      const id = card.dataset.componentId
      const { order } = readList(this.editor.map)
      const at = order.indexOf(id)
      const action = button.dataset.action
      if (action === 'up' && at > 0) this.editor.move(id, at - 1)
      else if (action === 'down' && at >= 0 && at < order.length - 1) this.editor.move(id, at + 1)
      else if (action === 'remove') this.removeCard(card, id)
      else if (action === 'rename') this.openRename(card)
    })
    this.board.addEventListener('submit', (event) => {
      const form = event.target.closest('form.oc-rename')
      if (!form) return
      event.preventDefault()
      const title = form.elements.title.value.trim()
      const card = form.closest('[data-component-id]')
      form.hidden = true
      if (title) this.editor.rename(card.dataset.componentId, title)
      card.querySelector('[data-action="rename"]')?.focus()
    })
    this.board.addEventListener('keydown', (event) => {
      const form = event.target.closest('form.oc-rename')
      if (form && event.key === 'Escape') {
        form.hidden = true
        form.closest('[data-component-id]').querySelector('[data-action="rename"]')?.focus()
      }
    })
    const add = this.root.querySelector('#oc-add')
    add?.addEventListener('submit', (event) => {
      event.preventDefault()
      const type = add.elements.type.value
      const title = add.elements.title.value.trim()
      this.editor.add({ id: newId(), type, title, layout: { w: 6, h: 3 } })
      add.elements.title.value = ''
      this.say(`Added ${title || type}`)
    })
  }

  removeCard (card, id) {
    const title = card.querySelector('.oc-title')?.textContent || 'this component'
    const next = card.nextElementSibling || card.previousElementSibling
    this.editor.remove(id)
    this.say(`Removed ${title}`)
    next?.querySelector('button[data-action]')?.focus()
  }

  openRename (card) {
    const form = card.querySelector('form.oc-rename')
    form.hidden = false
    form.elements.title.value = card.querySelector('.oc-title').textContent
    form.elements.title.focus()
    form.elements.title.select()
  }
}

const root = document.getElementById('oc-page')
if (root) window.oracleLive = new LivePage(root)
