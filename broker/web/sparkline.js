// Recent numeric values of the topics the user selected, drawn as an inline SVG.
// Bounded: at most MAX_POINTS per topic and MAX_TOPICS topics (the one selected
// longest ago is forgotten first).

import { numericValue } from './format.js';

const MAX_POINTS = 600;
const MAX_TOPICS = 50;
const WINDOW_MS = 10 * 60 * 1000;
const SVG = 'http://www.w3.org/2000/svg';

export class History {
  constructor() { this.series = new Map(); } // topic -> {t: [], v: []}

  // Starts recording a topic (from its current message, if any).
  track(topic, message) {
    if (this.series.has(topic)) {
      const s = this.series.get(topic);
      this.series.delete(topic);      // re-insert: most recently selected last
      this.series.set(topic, s);
      return;
    }
    if (this.series.size >= MAX_TOPICS) this.series.delete(this.series.keys().next().value);
    this.series.set(topic, { t: [], v: [] });
    if (message) this.add(message);
  }

  add(message) {
    const s = this.series.get(message.topic);
    if (!s) return;
    const v = numericValue(message);
    if (v === null) return;
    s.t.push(message.receivedAt || Date.now());
    s.v.push(v);
    if (s.t.length > MAX_POINTS) { s.t.shift(); s.v.shift(); }
  }

  // An <svg> of the last minutes of the topic, or null with fewer than 2 values.
  draw(topic, now, width = 300, height = 60) {
    const s = this.series.get(topic);
    if (!s) return null;
    let from = s.t.findIndex((t) => t >= now - WINDOW_MS);
    if (from < 0) from = s.t.length;
    const t = s.t.slice(from), v = s.v.slice(from);
    if (v.length < 2) return null;
    const lo = Math.min(...v), hi = Math.max(...v), span = hi - lo || 1;
    const t0 = t[0], tspan = Math.max(1, now - t0);
    const points = t.map((ti, i) => `${((ti - t0) / tspan * (width - 4) + 2).toFixed(1)},${(height - 2 - (v[i] - lo) / span * (height - 4)).toFixed(1)}`);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('class', 'sparkline');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${v.length} values from ${lo} to ${hi}, last ${v[v.length - 1]}`);
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    svg.append(line);
    return { svg, lo, hi, last: v[v.length - 1], n: v.length };
  }
}
