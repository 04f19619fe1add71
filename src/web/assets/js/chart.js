// A small bar chart of SLA % per hour as inline SVG, drawn with the DOM.
// Bars carry their value as text too, and the chart has a text summary, so
// nothing is told by colour or shape alone.
const SVG = 'http://www.w3.org/2000/svg';

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** `points`: [{label: "09", value: 0..100 or null}], `goal` a % line. */
export function slaChart(points, { title, goal = 80 } = {}) {
  const width = Math.max(240, points.length * 28 + 40);
  const height = 140;
  const left = 30;
  const top = 10;
  const plot = height - 40;
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  const summary = points.map((p) => `${p.label}h ${p.value === null ? '–' : `${Math.round(p.value)} %`}`).join(', ');
  svg.setAttribute('aria-label', `${title}: ${summary}`);
  svg.append(node('title', {}, title));
  for (const tick of [0, 50, 100]) {
    const y = top + plot - (plot * tick) / 100;
    svg.append(node('line', { x1: left, x2: width - 4, y1: y, y2: y, class: 'chart-grid' }));
    svg.append(node('text', { x: left - 4, y: y + 4, class: 'chart-axis', 'text-anchor': 'end' }, String(tick)));
  }
  const goalY = top + plot - (plot * goal) / 100;
  svg.append(node('line', { x1: left, x2: width - 4, y1: goalY, y2: goalY, class: 'chart-goal' }));
  points.forEach((p, i) => {
    const x = left + 6 + i * 28;
    if (p.value !== null) {
      const h = (plot * Math.max(0, Math.min(100, p.value))) / 100;
      const below = p.value < goal;
      svg.append(node('rect', { x, y: top + plot - h, width: 18, height: Math.max(1, h), class: below ? 'bar bar-low' : 'bar' }));
      if (below) svg.append(node('text', { x: x + 9, y: top + plot - h - 3, class: 'chart-mark', 'text-anchor': 'middle' }, '!'));
    }
    svg.append(node('text', { x: x + 9, y: height - 14, class: 'chart-axis', 'text-anchor': 'middle' }, p.label));
  });
  return svg;
}
