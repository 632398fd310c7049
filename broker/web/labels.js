// The model's name for each level of the tree (enterprise, site, area, line, cell,
// equipment, class). Optional levels mean the depth alone does not tell (a line's
// children may be cells or equipment), so the broker reads each shown node once
// (GET /api/v1/topic); until it answers, the label is the level at that depth.
// Below a class the label is the class, without asking.

const PENDING = 'pending';
const FAILED = 'failed';
const CONCURRENCY = 4;
const MAX_QUEUE = 200;

function fromReading(r, depth) {
  const levels = r.levels || [];
  if (depth < levels.length) return levels[depth].level;
  if (r.class) return depth === levels.length ? 'class' : r.class;
  return r.free ? 'free' : '';
}

export class Labels {
  // levels: the model's level names (me.model.levels), or null without a model;
  // onchange() when labels became known.
  constructor(api, levels, onchange) {
    this.api = api;
    this.levels = levels;
    this.onchange = onchange;
    this.cache = new Map();   // path -> reading | PENDING | FAILED
    this.queue = [];
    this.running = 0;
  }

  label(node) {
    if (!this.levels) return '';
    const known = this.cache.get(node.path);
    if (known && known !== PENDING && known !== FAILED) return fromReading(known, node.depth);
    const parent = node.parent && this.cache.get(node.parent.path);
    if (parent && typeof parent === 'object' && (parent.class || parent.free)) return fromReading(parent, node.depth);
    if (!known) this.ask(node.path);
    return this.levels[node.depth] || '';
  }

  // A reading fetched elsewhere (the detail panel) is kept too.
  remember(path, reading) { this.cache.set(path, reading); }

  ask(path) {
    this.cache.set(path, PENDING);
    this.queue.push(path);
    if (this.queue.length > MAX_QUEUE) this.cache.delete(this.queue.shift());
    this.pump();
  }

  pump() {
    while (this.running < CONCURRENCY && this.queue.length) {
      const path = this.queue.pop();   // the most recently shown first
      this.running++;
      this.api.topic(path)
        .then((r) => { this.cache.set(path, r); this.onchange(); })
        .catch(() => this.cache.set(path, FAILED))
        .finally(() => { this.running--; this.pump(); });
    }
  }
}
