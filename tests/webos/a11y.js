// Accessibility basics of the current page, from its computed styles:
// - every visible text's contrast against its effective background (>= 4.5:1 required),
//   SVG text by its fill;
// - every form control has a label (a <label>, aria-label or aria-labelledby);
// - how far the document overflows the window horizontally (0: it fits).
() => {
  function parse(value) {
    const m = /rgba?\(([^)]+)\)/.exec(value || "");
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function over(top, bottom) {
    const a = top.a;
    return { r: top.r * a + bottom.r * (1 - a), g: top.g * a + bottom.g * (1 - a),
             b: top.b * a + bottom.b * (1 - a), a: 1 };
  }
  function luminance(c) {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function background(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  }
  const low = [];
  let checked = 0;
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || !node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (el.closest("title, script, style, option")) continue;
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility === "hidden" || rect.width <= 1 || rect.height <= 1) continue;
    if (el.closest("[hidden]")) continue;
    const inSvg = el.closest("svg") !== null;
    const bg = background(inSvg ? el.closest("svg").parentElement : el);
    const fg = over(parse(inSvg ? style.fill : style.color) || { r: 0, g: 0, b: 0, a: 1 }, bg);
    const l1 = luminance(fg), l2 = luminance(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    checked += 1;
    if (ratio < 4.5) {
      low.push({ text: node.textContent.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100,
                 color: inSvg ? style.fill : style.color, tag: el.tagName });
    }
  }
  const unlabeled = [];
  document.querySelectorAll("input, select, textarea").forEach((el) => {
    if (el.type === "hidden") return;
    if ((el.labels && el.labels.length) || el.getAttribute("aria-label") ||
        el.getAttribute("aria-labelledby")) return;
    unlabeled.push(el.outerHTML.slice(0, 100));
  });
  return { checked: checked, low: low, unlabeled: unlabeled,
           overflow: document.documentElement.scrollWidth - window.innerWidth };
}
