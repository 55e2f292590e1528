// Markdown to DOM nodes, safe by construction: it never parses HTML. Every piece of text
// becomes a text node, so a response holding <script> or an onerror attribute shows as text.
// Supports what model replies use: fenced code, headings, lists, quotes, paragraphs, inline
// code, bold, italic and links (shown as text with their address; nothing is made clickable).
"use strict";
(function () {
  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

  function inline(parent, text) {
    let last = 0;
    // A regex of its own per call: the nested calls below would move a shared one's lastIndex.
    const pattern = new RegExp(INLINE.source, "g");
    for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      let node;
      if (m[1]) { node = el("code"); node.textContent = m[2]; }
      else if (m[3] || m[4]) { node = el("strong"); inline(node, m[3] || m[4]); }
      else if (m[5]) { node = el("em"); inline(node, m[5]); }
      else { node = el("span"); inline(node, m[6]); node.appendChild(document.createTextNode(" <" + m[7] + ">")); }
      parent.appendChild(node);
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function paragraph(parent, lines) {
    if (!lines.length) return;
    const p = el("p");
    lines.forEach(function (line, i) {
      if (i) p.appendChild(el("br"));
      inline(p, line);
    });
    parent.appendChild(p);
  }

  function render(text) {
    const root = document.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    let i = 0;
    const flush = function () { paragraph(root, para); para = []; };
    while (i < lines.length) {
      const line = lines[i];
      const fence = /^\s*(```+|~~~+)\s*([\w+#.-]*)/.exec(line);
      if (fence) {
        flush();
        const code = [];
        i++;
        while (i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0) code.push(lines[i++]);
        i++;
        const pre = el("pre");
        const c = el("code", fence[2] ? "language-" + fence[2] : "");
        c.textContent = code.join("\n");
        pre.appendChild(c);
        root.appendChild(pre);
        continue;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        const h = el("h" + Math.min(6, heading[1].length + 2));
        inline(h, heading[2]);
        root.appendChild(h);
        i++;
        continue;
      }
      const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
      if (item) {
        flush();
        const list = el(/\d/.test(item[1]) ? "ol" : "ul");
        while (i < lines.length) {
          const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
          if (!m) break;
          const li = el("li");
          inline(li, m[2]);
          list.appendChild(li);
          i++;
        }
        root.appendChild(list);
        continue;
      }
      if (/^\s*>/.test(line)) {
        flush();
        const quote = el("blockquote");
        const inner = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) inner.push(lines[i++].replace(/^\s*>\s?/, ""));
        paragraph(quote, inner);
        root.appendChild(quote);
        continue;
      }
      if (!line.trim()) flush(); else para.push(line);
      i++;
    }
    flush();
    return root;
  }

  window.rkMarkdown = render;
})();
