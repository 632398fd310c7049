// A virtualised list of fixed-height rows: only the rows in view (and a few
// more) exist in the DOM, reused as the list scrolls. Used for the tree (rows
// are the expanded nodes) and for the flat lists (search results, stale,
// quarantine).
//
// Keyboard: Up/Down/Home/End/PageUp/PageDown move the active row; Right, Left
// and Enter are passed to the owner. The container keeps the focus and points
// at the active row with aria-activedescendant.

const OVERSCAN = 8;

export class RowList {
  // container: the scrolling element (it gets the role and the focus).
  // options: {rowHeight, makeRow() -> element, paint(element, item, index, active),
  //           onkey(key, item, index) -> true when handled, onclick(item, index, event)}
  constructor(container, options) {
    this.container = container;
    this.options = options;
    this.items = [];
    this.active = -1;
    this.pool = [];
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.spacer.setAttribute('aria-hidden', 'true');
    container.append(this.spacer);
    container.tabIndex = 0;
    container.addEventListener('scroll', () => this.render());
    container.addEventListener('keydown', (e) => this.key(e));
    container.addEventListener('focus', () => { if (this.active < 0 && this.items.length) this.setActive(0, { scroll: false }); });
    container.addEventListener('click', (e) => {
      const row = e.target.closest('[data-index]');
      if (!row) return;
      const index = Number(row.dataset.index);
      this.setActive(index);
      options.onclick && options.onclick(this.items[index], index, e);
    });
    new ResizeObserver(() => this.render()).observe(container);
  }

  get height() { return this.options.rowHeight; }
  get activeItem() { return this.items[this.active]; }

  // New items; the active row stays on the same item where it still is there.
  setItems(items) {
    const keep = this.items[this.active];
    this.items = items;
    const at = keep === undefined ? -1 : items.indexOf(keep);
    this.active = at >= 0 ? at : Math.min(this.active, items.length - 1);
    if (this.active < 0 && items.length && document.activeElement === this.container) this.active = 0;
    this.render();
  }

  setActive(index, { scroll = true } = {}) {
    if (this.items.length === 0) { this.active = -1; return; }
    this.active = Math.max(0, Math.min(this.items.length - 1, index));
    if (scroll) this.scrollIntoView(this.active);
    this.render();
  }

  indexOf(item) { return this.items.indexOf(item); }

  scrollIntoView(index) {
    const top = index * this.height;
    const c = this.container;
    if (top < c.scrollTop) c.scrollTop = top;
    else if (top + this.height > c.scrollTop + c.clientHeight) c.scrollTop = top + this.height - c.clientHeight;
  }

  key(e) {
    const page = Math.max(1, Math.floor(this.container.clientHeight / this.height) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) this.setActive(this.active < 0 ? 0 : this.active + moves[e.key]);
    else if (e.key === 'Home') this.setActive(0);
    else if (e.key === 'End') this.setActive(this.items.length - 1);
    else if (!(this.active >= 0 && this.options.onkey && this.options.onkey(e.key, this.activeItem, this.active))) return;
    e.preventDefault();
  }

  render() {
    const c = this.container, h = this.height;
    this.spacer.style.height = `${this.items.length * h}px`;
    const first = Math.max(0, Math.floor(c.scrollTop / h) - OVERSCAN);
    const last = Math.min(this.items.length, Math.ceil((c.scrollTop + c.clientHeight) / h) + OVERSCAN);
    const needed = Math.max(0, last - first);
    while (this.pool.length < needed) {
      const row = this.options.makeRow();
      row.id = `${c.id}-row-${this.pool.length}`;
      this.pool.push(row);
      c.append(row);
    }
    let activeId = null;
    this.pool.forEach((row, i) => {
      const index = first + i;
      if (i >= needed) { row.hidden = true; return; }
      row.hidden = false;
      row.dataset.index = index;
      row.style.transform = `translateY(${index * h}px)`;
      const active = index === this.active;
      row.classList.toggle('active', active);
      if (active) activeId = row.id;
      this.options.paint(row, this.items[index], index, active);
    });
    if (activeId) c.setAttribute('aria-activedescendant', activeId);
    else c.removeAttribute('aria-activedescendant');
  }
}
