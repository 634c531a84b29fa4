// Accessibility basics of the page in view, run by tests/webos/test_oracle_pages.py: every
// visible field has a label, every button and link a name, every text a contrast >= 4.5:1.
() => {
  const problems = []
  const visible = (el) => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden'
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(el) && !el.labels.length && !el.getAttribute('aria-label')) problems.push('unlabelled ' + el.outerHTML)
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (visible(el) && !(el.getAttribute('aria-label') || el.textContent.trim())) problems.push('nameless ' + el.outerHTML)
  }
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number)
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0)
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor)
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3)
    }
    return [255, 255, 255]
  }
  for (const el of document.querySelectorAll('main *')) {
    if (!visible(el) || el.closest('svg')) continue
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())
    if (!text) continue
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))]
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} ${el.tagName} ${el.textContent.trim().slice(0, 30)}`)
  }
  return problems
}
