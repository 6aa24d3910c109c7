// The filter builder of the data table: conditions on columns in an AND/OR
// group, and groups of conditions inside it (two levels), written as the JSON
// filter model_rows, count_rows and the exports take.  The operators each
// column accepts come from model_rows (columns[].operators), their labels and
// value shapes from crm_api.capabilities(): nothing here keeps its own copy.

import { h, replace } from '../dom.js';
import { capabilities } from '../capabilities.js';

// An empty group of the top level.
export function emptyFilter() {
	return { and: [] };
}

// The filter to send: groups without conditions dropped, a lone top-level
// group with one member unwrapped; null when nothing is left.
export function compactFilter(f) {
	if (!f) return null;
	const key = f.or ? 'or' : f.and ? 'and' : null;
	if (!key) return f.column ? f : null;
	const members = f[key].map(compactFilter).filter(Boolean);
	if (!members.length) return null;
	return { [key]: members };
}

// Read a filter from the URL (the JSON form); null when absent or unreadable.
export function parseFilter(text) {
	if (!text) return null;
	try {
		const f = JSON.parse(text);
		return f && typeof f === 'object' && !Array.isArray(f) ? f : null;
	} catch {
		return null;
	}
}

// How many conditions a filter holds.
export function countConditions(f) {
	if (!f) return 0;
	const list = f.and || f.or;
	return list ? list.reduce((n, m) => n + countConditions(m), 0) : 1;
}

// The builder: columns as model_rows describes them, the current filter, and
// onApply(filter or null).  Returns { el, setColumns(columns), setFilter(f) }.
export function filterBuilder({ onApply }) {
	let columns = [];
	let ops = new Map();
	let root = emptyFilter();
	const body = h('div', { class: 'filter-body' });
	const apply = h('button', { type: 'button', class: 'btn btn-primary btn-small', id: 'filter-apply' }, 'Apply filter');
	const clear = h('button', { type: 'button', class: 'btn btn-small', id: 'filter-clear' }, 'Clear');
	const el = h('div', { class: 'filter-builder', role: 'group', 'aria-label': 'Filter rows' }, body,
		h('div', { class: 'filter-actions' }, apply, clear));

	capabilities().then((c) => {
		ops = new Map(((c.filters || {}).operators || []).map((o) => [o.name, o]));
		paint();
	}).catch(() => {});

	apply.addEventListener('click', () => onApply(compactFilter(root)));
	clear.addEventListener('click', () => {
		root = emptyFilter();
		paint();
		onApply(null);
	});

	// A new condition on the first column, with its first operator.
	function newCondition() {
		const c = columns[0];
		return { column: c ? c.name : '', op: c && c.operators.length ? c.operators[0] : 'is_null' };
	}

	// Draw the whole builder from root.
	function paint() {
		replace(body, groupEl(root, 0, null));
	}

	// A group: its AND/OR switch, its members, and buttons to add to it.
	function groupEl(group, depth, remove) {
		const key = group.or ? 'or' : 'and';
		const list = group[key];
		const mode = h('select', { class: 'filter-mode', 'aria-label': depth ? 'Combine this group with' : 'Combine conditions with' },
			h('option', { value: 'and', selected: key === 'and' }, 'all of (AND)'),
			h('option', { value: 'or', selected: key === 'or' }, 'any of (OR)'));
		mode.addEventListener('change', () => {
			delete group[key];
			group[mode.value] = list;
			paint();
		});
		const addCond = h('button', { type: 'button', class: 'btn-link small filter-add' }, '+ Condition');
		addCond.addEventListener('click', () => {
			list.push(newCondition());
			paint();
		});
		const extra = [];
		if (depth === 0) {
			const addGroup = h('button', { type: 'button', class: 'btn-link small filter-add-group' }, '+ Group');
			addGroup.addEventListener('click', () => {
				list.push({ or: [newCondition()] });
				paint();
			});
			extra.push(addGroup);
		}
		if (remove) extra.push(h('button', { type: 'button', class: 'btn-link small', 'aria-label': 'Remove group', onclick: remove }, 'Remove group'));
		return h('div', { class: ['filter-group', depth ? 'filter-subgroup' : null], dataset: { depth: String(depth) } },
			h('div', { class: 'filter-group-head' }, h('span', { class: 'muted small' }, depth ? 'Group: rows matching' : 'Rows matching'), mode),
			list.map((m, i) => {
				const drop = () => {
					list.splice(i, 1);
					paint();
				};
				return m.and || m.or ? groupEl(m, depth + 1, drop) : conditionEl(m, drop);
			}),
			h('div', { class: 'filter-group-actions' }, addCond, extra));
	}

	// One condition: column, operator (those the column takes) and value fields.
	function conditionEl(cond, remove) {
		const col = columns.find((c) => c.name === cond.column) || columns[0];
		const colSel = h('select', { class: 'filter-column', 'aria-label': 'Column' },
			columns.map((c) => h('option', { value: c.name, selected: c === col }, c.name)));
		const opSel = h('select', { class: 'filter-op', 'aria-label': 'Operator' },
			(col ? col.operators : []).map((o) => h('option', { value: o, selected: o === cond.op }, (ops.get(o) || {}).label || o)));
		colSel.addEventListener('change', () => {
			const c = columns.find((x) => x.name === colSel.value);
			cond.column = c.name;
			if (!c.operators.includes(cond.op)) cond.op = c.operators[0];
			delete cond.value;
			paint();
		});
		opSel.addEventListener('change', () => {
			cond.op = opSel.value;
			delete cond.value;
			paint();
		});
		const shape = (ops.get(cond.op) || {}).value || 'one';
		return h('div', { class: 'filter-condition' }, colSel, opSel, valueFields(cond, shape, col),
			h('button', { type: 'button', class: 'btn-link small', 'aria-label': 'Remove condition', onclick: remove }, '✕'));
	}

	// The value inputs an operator needs: none, one, a pair, a list or a relative time.
	function valueFields(cond, shape, col) {
		const type = col && col.class === 'date' ? 'date' : col && col.class === 'number' ? 'number' : 'text';
		const input = (value, label, set) => {
			const el = h('input', { class: 'filter-value', type: type === 'number' ? 'text' : type, value: value ?? '', 'aria-label': label,
				inputmode: type === 'number' ? 'decimal' : null });
			el.addEventListener('input', () => set(el.value));
			return el;
		};
		if (shape === 'none') return null;
		if (shape === 'pair') {
			const v = Array.isArray(cond.value) ? cond.value : ['', ''];
			cond.value = v;
			return [input(v[0], 'From', (x) => { v[0] = x; }), h('span', { class: 'muted small' }, 'and'), input(v[1], 'To', (x) => { v[1] = x; })];
		}
		if (shape === 'list') {
			const text = Array.isArray(cond.value) ? cond.value.join(', ') : '';
			const el = h('input', { class: 'filter-value', type: 'text', value: text, 'aria-label': 'Values, separated by commas', placeholder: 'a, b, c' });
			el.addEventListener('input', () => {
				cond.value = el.value.split(',').map((s) => s.trim()).filter((s) => s !== '');
			});
			return el;
		}
		if (shape === 'interval') {
			return input(cond.value, 'Time span, such as 7 days', (x) => { cond.value = x; });
		}
		return input(cond.value, 'Value', (x) => { cond.value = x; });
	}

	return {
		el,
		setColumns(cols) {
			columns = cols.filter((c) => c.operators && c.operators.length);
			paint();
		},
		setFilter(f) {
			root = f && (f.and || f.or) ? structuredClone(f) : f ? { and: [structuredClone(f)] } : emptyFilter();
			paint();
		},
	};
}
