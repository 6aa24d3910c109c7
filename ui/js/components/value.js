// Showing one database value readably: NULL, booleans, numbers, long text and JSON.

import { h } from '../dom.js';

const SHORT = 60;

// An element for a cell value; long text and JSON are truncated with an Expand toggle.
export function renderValue(value, type = '') {
	if (value === null || value === undefined) return h('span', { class: 'null' }, 'NULL');
	if (typeof value === 'boolean') return h('span', { class: `bool bool-${value}` }, value ? 'true' : 'false');
	if (typeof value === 'number') return h('span', { class: 'num' }, String(value));
	if (typeof value === 'object' || /^jsonb?$/.test(type)) return jsonValue(value);
	const text = String(value);
	if (/^timestamp/.test(type) && /^\d{4}-\d\d-\d\dT/.test(text)) {
		return h('span', { class: 'text time', title: text }, text.replace('T', ' ').replace(/\.\d+/, ''));
	}
	if (text.length <= SHORT) return h('span', { class: 'text' }, text);
	return expandable(text.slice(0, SHORT), h('span', { class: 'text text-full' }, text));
}

// JSON on one line, or pretty-printed behind Expand when long.
function jsonValue(value) {
	const compact = JSON.stringify(value);
	if (compact.length <= SHORT) return h('code', { class: 'json' }, compact);
	return expandable(compact.slice(0, SHORT), h('pre', { class: 'json json-full' }, JSON.stringify(value, null, 2)), 'json');
}

// A short preview with a button that reveals the full element in place.
function expandable(preview, full, kind = 'text') {
	const short = h(kind === 'json' ? 'code' : 'span', { class: kind }, `${preview}…`);
	const wrap = h('span', { class: 'expandable' }, short);
	const btn = h('button', { type: 'button', class: 'btn-link small', 'aria-expanded': 'false' }, 'Expand');
	btn.addEventListener('click', () => {
		const open = btn.getAttribute('aria-expanded') === 'true';
		btn.setAttribute('aria-expanded', String(!open));
		btn.textContent = open ? 'Expand' : 'Collapse';
		short.hidden = !open;
		full.hidden = open;
	});
	full.hidden = true;
	wrap.append(full, ' ', btn);
	return wrap;
}
