// Building DOM nodes safely: every string becomes a text node, never markup.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'indeterminate', 'open']);

// Create an element: h('a', {href, class, onclick, aria-label}, 'text', child, [more]).
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	if (attrs) {
		for (const [key, value] of Object.entries(attrs)) {
			if (value === undefined || value === null || value === false) continue;
			if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
			else if (key === 'text') el.textContent = String(value);
			else if (key === 'dataset') Object.assign(el.dataset, value);
			else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
			else if (PROPS.has(key)) el[key] = value;
			else el.setAttribute(key, value === true ? '' : String(value));
		}
	}
	append(el, children);
	return el;
}

// Append children (strings, numbers, nodes, nested arrays; null and false are skipped).
export function append(el, children) {
	for (const child of children.flat(Infinity)) {
		if (child === null || child === undefined || child === false) continue;
		el.append(child instanceof Node ? child : document.createTextNode(String(child)));
	}
	return el;
}

// Replace all children of el.
export function replace(el, ...children) {
	el.replaceChildren();
	return append(el, children);
}

// A loading indicator with a text label for screen readers and sighted users.
export function loading(label = 'Loading…') {
	return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}

// An empty state: a short title and an optional hint.
export function empty(title, hint) {
	return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), hint ? h('p', { class: 'muted' }, hint) : null);
}

// An error box showing an API error in words (message, details, hint).
export function errorBox(err, prefix) {
	const e = err || {};
	return h('div', { class: 'alert alert-error', role: 'alert' },
		h('strong', {}, prefix ? `${prefix}: ` : ''), e.message || String(err),
		e.details ? h('div', { class: 'alert-extra' }, e.details) : null,
		e.hint ? h('div', { class: 'alert-extra' }, e.hint) : null);
}

// Debounce fn by ms; the returned function has .cancel().
export function debounce(fn, ms) {
	let timer = null;
	const wrapped = (...args) => {
		clearTimeout(timer);
		timer = setTimeout(() => fn(...args), ms);
	};
	wrapped.cancel = () => clearTimeout(timer);
	return wrapped;
}

// A page-level <h1> that receives focus after navigation.
export function pageTitle(text, ...extra) {
	return h('h1', { class: 'page-title', tabindex: '-1' }, text, ...extra);
}

// Run fn at most once per ms (the last call always runs); the result has .cancel().
export function throttle(fn, ms) {
	let timer = null;
	let last = 0;
	const wrapped = () => {
		if (timer) return;
		const wait = Math.max(0, last + ms - Date.now());
		timer = setTimeout(() => {
			timer = null;
			last = Date.now();
			fn();
		}, wait);
	};
	wrapped.cancel = () => {
		clearTimeout(timer);
		timer = null;
	};
	return wrapped;
}

// Run fn (which rebuilds part of container) without losing keyboard focus:
// the focused control is found again by its row and its name.
export function keepFocus(container, fn) {
	const active = document.activeElement;
	if (!active || active === document.body || !container.contains(active)) return fn();
	const row = active.closest('[data-model], [data-run], [data-crm], [data-schedule]');
	const rowKey = row ? JSON.stringify(row.dataset) : null;
	const name = active.getAttribute('aria-label') || active.textContent;
	const tag = active.tagName;
	const result = fn();
	for (const el of container.querySelectorAll(tag)) {
		const elRow = el.closest('[data-model], [data-run], [data-crm], [data-schedule]');
		if ((elRow ? JSON.stringify(elRow.dataset) : null) === rowKey && (el.getAttribute('aria-label') || el.textContent) === name) {
			el.focus({ preventScroll: true });
			break;
		}
	}
	return result;
}
