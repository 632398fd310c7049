// The topics the page has seen, as a Map and as a tree of nodes.
//
// Each topic level is a node; a topic is a node with a `message`. Counts of topics
// and message rates are kept per node and updated incrementally as messages arrive
// (a walk up the topic's ancestors), so nothing is ever recounted: 100,000 topics
// cost one Map entry and one node each, and a message costs its depth in steps.

const RATE_WINDOW_S = 10;

// Messages per second over the last RATE_WINDOW_S seconds, in one-second buckets.
class Rate {
  constructor() { this.buckets = new Uint32Array(RATE_WINDOW_S); this.second = 0; }
  advance(second) {
    const gap = second - this.second;
    if (gap >= RATE_WINDOW_S || gap < 0) this.buckets.fill(0);
    else for (let s = this.second + 1; s <= second; s++) this.buckets[s % RATE_WINDOW_S] = 0;
    this.second = second;
  }
  hit(second) { this.advance(second); this.buckets[second % RATE_WINDOW_S]++; }
  perSecond(second) {
    this.advance(second);
    let sum = 0;
    for (const b of this.buckets) sum += b;
    return sum / RATE_WINDOW_S;
  }
}

const collator = new Intl.Collator(undefined, { numeric: true });

export class Node {
  constructor(name, parent, path) {
    this.name = name;
    this.parent = parent;
    this.depth = parent ? parent.depth + 1 : -1;   // the first topic level has depth 0
    this.path = path;
    this.children = null;    // Map name -> Node, made on the first child
    this.sorted = null;      // children in display order, made when needed
    this.topics = 0;         // topics in this subtree, this node included
    this.message = null;     // the last message when this path is a topic
    this.expanded = false;
    this.rate = null;        // made on the first live message below
  }

  childList() {
    if (!this.children) return [];
    if (!this.sorted) this.sorted = [...this.children.values()].sort((a, b) => collator.compare(a.name, b.name));
    return this.sorted;
  }

  messagesPerSecond(second) { return this.rate ? this.rate.perSecond(second) : 0; }

  // True when every ancestor is expanded, so that the node is a row of the tree.
  shown() {
    for (let n = this.parent; n && n.parent; n = n.parent) if (!n.expanded) return false;
    return true;
  }
}

export class TopicTree {
  constructor() {
    this.root = new Node('', null, '');
    this.root.expanded = true;
    this.topics = new Map();   // topic -> Node
    this.shape = 0;            // changes whenever the rows of the tree may have changed
    this.onnew = null;         // (node) => void for every new topic
  }

  get size() { return this.topics.size; }

  // Stores a message ({topic, payload, retain, ...}); an empty retained payload
  // removes the topic, as it does on the broker. `now` is in ms.
  put(message, now) {
    const second = Math.floor(now / 1000);
    let node = this.topics.get(message.topic);
    const known = node !== undefined;
    if (message.retain && message.payload.length === 0) {
      if (known) this.remove(node);
      return null;
    }
    if (!known) node = this.add(message.topic);
    message.receivedAt = now;
    node.message = message;
    // A topic's first retained value is its state, not traffic: the burst of
    // retained messages after subscribing does not count as a rate.
    if (known || !message.retain) {
      for (let n = node; n; n = n.parent) (n.rate ||= new Rate()).hit(second);
    }
    if (!known && this.onnew) this.onnew(node);
    return node;
  }

  add(topic) {
    let node = this.root;
    let start = 0;
    for (;;) {
      const slash = topic.indexOf('/', start);
      const name = slash < 0 ? topic.slice(start) : topic.slice(start, slash);
      let child = node.children && node.children.get(name);
      if (!child) {
        child = new Node(name, node, slash < 0 ? topic : topic.slice(0, slash));
        (node.children ||= new Map()).set(name, child);
        node.sorted = null;
        if (node.expanded && node.shown()) this.shape++;
      }
      node = child;
      if (slash < 0) break;
      start = slash + 1;
    }
    this.topics.set(topic, node);
    for (let n = node; n; n = n.parent) n.topics++;
    return node;
  }

  remove(node) {
    this.topics.delete(node.path);
    node.message = null;
    for (let n = node; n; n = n.parent) n.topics--;
    // Prune the nodes left without topics.
    while (node.parent && node.topics === 0) {
      const parent = node.parent;
      parent.children.delete(node.name);
      parent.sorted = null;
      node = parent;
    }
    this.shape++;
  }

  find(path) {
    if (this.topics.has(path)) return this.topics.get(path);
    let node = this.root;
    for (const name of path.split('/')) {
      node = node.children && node.children.get(name);
      if (!node) return null;
    }
    return node;
  }

  // The rows of the tree: depth-first through the expanded nodes.
  rows() {
    const out = [];
    const walk = (node) => {
      for (const child of node.childList()) {
        out.push(child);
        if (child.expanded && child.children) walk(child);
      }
    };
    walk(this.root);
    return out;
  }
}

// True when `topic` matches the MQTT filter (levels split at '/', '+' one level,
// '#' the rest). A leading wildcard does not match '$' topics.
export function matchesFilter(filter, topic) {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
