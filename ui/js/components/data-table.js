// The model data table: column chooser, search, filters (in the URL), sortable
// headers, page size, keyset pages, CSV and Excel export.

import { rpc, download } from '../api.js';
import { h, replace, debounce, errorBox, loading, empty } from '../dom.js';
import { setQuery } from '../router.js';
import * as fmt from '../format.js';
import { renderValue } from './value.js';
import { filterBuilder, parseFilter, countConditions } from './filter-builder.js';

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
// Excel's rows below the header.
const XLSX_MAX_ROWS = 1048575;

const PAGE_SIZES = [10, 25, 50, 100];

// Build the table for crm/model; initial state comes from the URL query.
export function dataTable({ crm, model, query, signal }) {
	const state = {
		search: query.get('q') || '',
		filter: parseFilter(query.get('filter')),
		sort: query.get('sort') || null,
		descending: query.get('desc') === '1',
		perPage: PAGE_SIZES.includes(Number(query.get('size'))) ? Number(query.get('size')) : 25,
		cursors: [null],
		columns: [],
		hidden: loadHidden(crm, model),
		page: null,
	};
	const searchInput = h('input', { type: 'search', id: 'row-search', value: state.search, placeholder: 'Search text columns…', autocomplete: 'off' });
	const sizeSelect = h('select', { id: 'page-size' }, PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === state.perPage }, String(n))));
	const chooserList = h('div', { class: 'chooser-list', role: 'group', 'aria-label': 'Visible columns' });
	const chooserSummary = h('summary', { class: 'btn' }, 'Columns');
	const chooser = h('details', { class: 'dropdown' }, chooserSummary, h('div', { class: 'dropdown-panel' }, chooserList));
	const exportBtn = h('button', { type: 'button', class: 'btn', id: 'export-csv' }, '⬇ Export CSV');
	const xlsxBtn = h('button', { type: 'button', class: 'btn', id: 'export-xlsx' }, '⬇ Export Excel');
	const filterSummary = h('summary', { class: 'btn', id: 'filter-toggle' }, 'Filter');
	const builder = filterBuilder({
		onApply(f) {
			state.filter = f;
			filterPanel.open = !!f;
			restart();
		},
	});
	const filterPanel = h('details', { class: 'filter-panel', open: !!state.filter }, filterSummary, builder.el);
	const scanNote = h('div', { 'aria-live': 'polite' });
	let builderReady = false;
	const exportMsg = h('span', { class: 'muted small', 'aria-live': 'polite' });
	const note = h('div');
	const tableWrap = h('div', { class: 'table-wrap', tabindex: '0', 'aria-label': `${crm} ${model} rows` });
	const prevBtn = h('button', { type: 'button', class: 'btn', 'aria-disabled': 'true' }, '← Previous');
	const nextBtn = h('button', { type: 'button', class: 'btn', 'aria-disabled': 'true' }, 'Next →');
	const pageInfo = h('span', { class: 'page-info', 'aria-live': 'polite' });
	const status = h('div', { 'aria-live': 'polite' });

	const root = h('section', { class: 'card data-card', 'aria-labelledby': 'data-title' },
		h('div', { class: 'card-head' }, h('h2', { id: 'data-title' }, 'Data')),
		h('div', { class: 'toolbar' },
			h('div', { class: 'field field-inline grow' }, h('label', { for: 'row-search', class: 'sr-only' }, 'Search rows'), searchInput),
			h('div', { class: 'field field-inline' }, h('label', { for: 'page-size' }, 'Rows per page'), sizeSelect),
			chooser, exportBtn, xlsxBtn, exportMsg),
		filterPanel, note, scanNote, status, tableWrap,
		h('div', { class: 'pager' }, prevBtn, pageInfo, nextBtn));

	let seq = 0;
	let busy = false;
	// Fetch the page at the last cursor and paint it (stale answers are dropped).
	async function load() {
		const mine = ++seq;
		const after = state.cursors[state.cursors.length - 1];
		setQuery({ q: state.search, filter: state.filter ? JSON.stringify(state.filter) : '', sort: state.sort,
			desc: state.descending ? '1' : '', size: state.perPage === 25 ? '' : state.perPage });
		filterSummary.textContent = state.filter ? `Filter (${countConditions(state.filter)})` : 'Filter';
		tableWrap.setAttribute('aria-busy', 'true');
		if (!state.page) replace(tableWrap, loading('Loading rows…'));
		busy = true;
		try {
			const page = await rpc('model_rows', {
				crm, model, after, per_page: state.perPage, search: state.search || null,
				sort: state.sort, descending: state.descending, filter: state.filter,
			}, { signal });
			if (mine !== seq) return;
			state.page = page;
			state.columns = page.columns || [];
			if (!builderReady) {
				builder.setColumns(state.columns);
				builder.setFilter(state.filter);
				builderReady = true;
			}
			status.replaceChildren();
			paint();
		} catch (err) {
			if (err.name === 'AbortError' || mine !== seq) return;
			replace(status, errorBox(err, 'Could not load rows'));
			if (!state.page) tableWrap.replaceChildren();
			enable(prevBtn, state.cursors.length > 1);
		} finally {
			if (mine === seq) {
				busy = false;
				tableWrap.removeAttribute('aria-busy');
			}
		}
	}

	// The columns not hidden (at least one).
	function visibleColumns() {
		const cols = state.columns.filter((c) => !state.hidden.has(c.name));
		return cols.length ? cols : state.columns.slice(0, 1);
	}

	// Draw the note, the rows and the pager from the last page.
	function paint() {
		const page = state.page;
		paintChooser();
		replace(note, page.note ? h('p', { class: 'note' }, 'ℹ️ ', page.note) : null);
		// The planner means to read a large table whole for this search or filter: say so.
		replace(scanNote, page.scan ? h('p', { class: 'alert alert-warn scan-note', role: 'note' }, '⚠ ', page.scan.message) : null);
		const cols = visibleColumns();
		const rows = page.rows || [];
		if (!rows.length) {
			const narrowed = state.search || state.filter;
			replace(tableWrap, empty(state.search ? `No rows match “${state.search}”.` : state.filter ? 'No rows match the filter.' : 'This model has no rows yet.',
				narrowed ? 'Try another search or filter, or clear them.' : 'Run a sync to fetch its records.'));
		} else {
			const head = h('tr', {}, cols.map((c) => headerCell(c)));
			const body = rows.map((row) => h('tr', {}, cols.map((c) => h('td', { dataset: { col: c.name } }, renderValue(row[c.name], c.type)))));
			// A header sorted from the keyboard is rebuilt: give focus back to its twin.
			const focused = tableWrap.contains(document.activeElement) ? document.activeElement.closest('th') : null;
			replace(tableWrap, h('table', { class: 'table data-table' }, h('thead', {}, head), h('tbody', {}, body)));
			const twin = focused && [...tableWrap.querySelectorAll('th')].find((th) => th.dataset.col === focused.dataset.col);
			if (twin) twin.querySelector('button').focus({ preventScroll: true });
		}
		const n = state.cursors.length;
		const total = page.estimated_total;
		pageInfo.textContent = pageText(n, !!page.next, total, rows.length, state.perPage);
		enable(prevBtn, n > 1);
		enable(nextBtn, !!page.next);
	}

	// A sortable column header (aria-sort tells the current order).
	function headerCell(c) {
		// The server names the order it used (the primary key when none was asked for).
		const sortedBy = state.page.sort ?? state.sort;
		const descending = state.page.descending ?? state.descending;
		const active = sortedBy === c.name;
		const dir = active ? (descending ? 'descending' : 'ascending') : 'none';
		const btn = h('button', { type: 'button', class: 'sort-btn', title: `Sort by ${c.name}` },
			c.name, c.primary_key ? h('span', { class: 'pk', title: 'primary key' }, ' 🔑') : null,
			h('span', { class: 'sort-icon', 'aria-hidden': 'true' }, active ? (descending ? ' ▼' : ' ▲') : ' ↕'));
		btn.addEventListener('click', () => {
			state.sort = c.name;
			state.descending = active ? !descending : false;
			restart();
		});
		return h('th', { scope: 'col', 'aria-sort': dir, title: c.type, dataset: { col: c.name } }, btn);
	}

	// The column chooser: one checkbox per column (the last one shown cannot be
	// unticked), and a way back to every column.
	function paintChooser() {
		const shown = visibleColumns();
		chooserSummary.textContent = `Columns (${shown.length}/${state.columns.length})`;
		if (chooserList.childElementCount !== state.columns.length + 1) {
			const showAll = h('button', { type: 'button', class: 'btn-link small' }, 'Show all columns');
			showAll.addEventListener('click', () => {
				state.hidden.clear();
				saveHidden(crm, model, state.hidden);
				for (const box of chooserList.querySelectorAll('input')) box.checked = true;
				paint();
			});
			replace(chooserList, showAll, state.columns.map((c) => {
				const id = `col-${c.name}`;
				const box = h('input', { type: 'checkbox', id, checked: !state.hidden.has(c.name), dataset: { col: c.name } });
				box.addEventListener('change', () => {
					if (box.checked) state.hidden.delete(c.name);
					else state.hidden.add(c.name);
					saveHidden(crm, model, state.hidden);
					paint();
				});
				return h('div', { class: 'check' }, box, h('label', { for: id }, c.name, h('span', { class: 'muted small' }, ` ${c.type}`)));
			}));
		}
		const only = shown.length === 1 ? shown[0].name : null;
		for (const box of chooserList.querySelectorAll('input')) {
			box.checked = shown.some((c) => c.name === box.dataset.col);
			box.disabled = box.dataset.col === only;
		}
	}

	// Back to the first page (after a new search, sort or page size).
	function restart() {
		state.cursors = [null];
		load();
	}

	const onSearch = debounce(() => {
		state.search = searchInput.value.trim();
		restart();
	}, 300);
	searchInput.addEventListener('input', onSearch);
	signal.addEventListener('abort', onSearch.cancel);
	sizeSelect.addEventListener('change', () => {
		state.perPage = Number(sizeSelect.value);
		restart();
	});
	// Pager buttons stay focusable (aria-disabled) so keyboard users keep their place.
	nextBtn.addEventListener('click', () => {
		if (busy || !state.page || !state.page.next) return;
		state.cursors.push(state.page.next);
		load();
	});
	prevBtn.addEventListener('click', () => {
		if (busy || state.cursors.length <= 1) return;
		state.cursors.pop();
		load();
	});
	// Download the filtered, sorted rows as CSV or an Excel workbook.
	async function exportAs(btn, accept, ext, label) {
		btn.disabled = true;
		const total = state.page ? state.page.estimated_total : null;
		const tooMany = ext === 'xlsx' && total > XLSX_MAX_ROWS;
		exportMsg.textContent = `Preparing ${label}…${tooMany ? ` Excel holds at most ${fmt.int(XLSX_MAX_ROWS)} rows: the file will stop there; export CSV for every row.` : ''}`;
		let serverNote = null;
		try {
			const name = await download('export_rows', {
				crm, model, search: state.search || null, sort: state.sort, descending: state.descending, filter: state.filter,
			}, accept, `${crm}_${model}.${ext}`, (n) => exportName(n, state.search, undefined, ext), (n) => { serverNote = n; });
			exportMsg.textContent = `Downloaded ${name}${serverNote ? `. ${serverNote}` : ''}`;
		} catch (err) {
			exportMsg.textContent = `Export failed: ${err.message}`;
		} finally {
			btn.disabled = false;
		}
	}
	exportBtn.addEventListener('click', () => exportAs(exportBtn, 'text/csv', 'csv', 'CSV'));
	xlsxBtn.addEventListener('click', () => exportAs(xlsxBtn, XLSX, 'xlsx', 'Excel file'));
	document.addEventListener('click', (e) => {
		if (chooser.open && !chooser.contains(e.target)) chooser.open = false;
	}, { signal });
	chooser.addEventListener('keydown', (e) => {
		if (e.key === 'Escape' && chooser.open) {
			chooser.open = false;
			chooserSummary.focus();
		}
	});

	load();
	return { el: root, reload: load };
}

// "Page 3 of ≈ 40 · ≈ 1,000 rows" from the planner's estimate, kept consistent with
// what is known for sure: a next page means at least one more, none means this is the last.
export function pageText(n, hasNext, total, shown, perPage) {
	if (!hasNext) {
		const rows = (n - 1) * perPage + shown;
		return n === 1 ? `Page 1 of 1 · ${fmt.int(rows)} ${rows === 1 ? 'row' : 'rows'}` : `Page ${n} of ${n} · ${fmt.int(rows)} rows`;
	}
	if (total === null || total === undefined || total < 0) return `Page ${n}`;
	const pages = Math.max(n + 1, Math.ceil(total / perPage));
	const rows = Math.max(total, n * perPage + 1);
	return `Page ${n} of ≈ ${fmt.int(pages)} · ≈ ${fmt.int(rows)} rows`;
}

// The export's file name says what it holds: the search (if any) and the day,
// so that several exports of one model do not overwrite each other.
export function exportName(serverName, search, day = fmt.localDay(), ext = 'csv') {
	const base = serverName.replace(/\.(csv|xlsx)$/i, '');
	const term = (search || '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 30);
	return `${base}${term ? `_${term}` : ''}_${day}.${ext}`;
}

// Mark a pager button usable or not.
function enable(btn, on) {
	btn.setAttribute('aria-disabled', String(!on));
}

// The columns this browser hid for a model.
function loadHidden(crm, model) {
	try {
		return new Set(JSON.parse(localStorage.getItem(`crm_dashboard.hidden.${crm}.${model}`)) || []);
	} catch {
		return new Set();
	}
}

// Remember the hidden columns of a model in this browser.
function saveHidden(crm, model, hidden) {
	localStorage.setItem(`crm_dashboard.hidden.${crm}.${model}`, JSON.stringify([...hidden]));
}
