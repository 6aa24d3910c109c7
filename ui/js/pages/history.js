// Sync history: every run, filtered by CRM, model, status and date range, newest first.

import { get } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import { setQuery } from '../router.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { ago } from '../components/ago.js';
import { badge, statusLabel, RUN_STATUSES } from '../components/status.js';
import { attemptText, waitNote, actionBadge } from '../components/attempts.js';
import { retentionCard } from '../components/retention.js';

const PER_PAGE = 25;
// Columns left out on medium screens (they stay in the run's details).
const OPTIONAL = ['Created', 'Updated', 'Via'];
const SELECT = 'id,crm,model,status,start_time,end_time,duration_seconds,records_processed,records_created,records_updated,records_failed,records_total,requested_by,requested_via,parent_id,attempt,max_attempts,first_attempt_id,error_class,wait_reason,rate_limited_until';

// Render the history page; filters live in the URL so a view can be bookmarked.
export function render(ctx) {
	const q = ctx.query;
	let page = Math.max(1, Number(q.get('page')) || 1);
	const crmSel = h('select', { id: 'f-crm' }, h('option', { value: '' }, 'All CRMs'));
	const modelSel = h('select', { id: 'f-model' }, h('option', { value: '' }, 'All models'));
	const statusSel = h('select', { id: 'f-status' }, h('option', { value: '' }, 'Any status'),
		RUN_STATUSES.map((s) => h('option', { value: s, selected: q.get('status') === s }, statusLabel(s))));
	const from = h('input', { type: 'date', id: 'f-from', value: q.get('from') || '' });
	const to = h('input', { type: 'date', id: 'f-to', value: q.get('to') || '', 'aria-describedby': 'err-to' });
	const toError = h('p', { class: 'field-error', id: 'err-to', 'aria-live': 'polite' });
	const clearBtn = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Clear filters');
	const body = h('div', {}, loading('Loading runs…'));
	const pager = h('div', { class: 'pager' });
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const field = (id, label, input, extra) => h('div', { class: 'field' }, h('label', { for: id }, label), input, extra);

	// Fill the CRM and model filters.
	async function loadFilters() {
		try {
			const [sources, models] = await Promise.all([
				get('crm_sources', { select: 'crm,display_name' }, { signal: ctx.signal }),
				get('crm_models', { select: 'crm,model', order: 'crm.asc,model.asc' }, { signal: ctx.signal }),
			]);
			for (const s of sources) crmSel.append(h('option', { value: s.crm, selected: q.get('crm') === s.crm }, s.display_name));
			crmSel.modelsByCrm = models;
			paintModels(q.get('model'));
		} catch (err) {
			if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the filters'));
		}
	}

	// The model filter, narrowed to the chosen CRM.
	function paintModels(selected) {
		const all = crmSel.modelsByCrm || [];
		const names = [...new Set(all.filter((m) => !crmSel.value || m.crm === crmSel.value).map((m) => m.model))].sort();
		replace(modelSel, h('option', { value: '' }, 'All models'), h('option', { value: 'all', selected: selected === 'all' }, 'all models (whole CRM)'),
			names.map((n) => h('option', { value: n, selected: selected === n }, n)));
		if (selected && !names.includes(selected) && selected !== 'all') modelSel.append(h('option', { value: selected, selected: true }, selected));
	}

	// The filter values.
	function filters() {
		return { crm: crmSel.value, model: modelSel.value, status: statusSel.value, from: from.value, to: to.value };
	}

	let seq = 0;
	// Fetch one page of runs with the filters, counting them all.
	async function load() {
		const mine = ++seq;
		const f = filters();
		setQuery({ ...f, page: page > 1 ? page : '' });
		// ISO dates compare as text; an empty range would only say "no runs".
		const backwards = f.from && f.to && f.to < f.from;
		toError.textContent = backwards ? 'The end date is before the start date.' : '';
		if (backwards) to.setAttribute('aria-invalid', 'true');
		else to.removeAttribute('aria-invalid');
		if (backwards) {
			replace(body, empty('Pick an end date on or after the start date.'));
			pager.replaceChildren();
			return;
		}
		const params = { select: SELECT, order: 'start_time.desc,id.desc', limit: PER_PAGE, offset: (page - 1) * PER_PAGE };
		if (f.crm) params.crm = `eq.${f.crm}`;
		if (f.model) params.model = `eq.${f.model}`;
		if (f.status) params.status = `eq.${f.status}`;
		const range = [];
		if (f.from) range.push(`gte.${new Date(`${f.from}T00:00:00`).toISOString()}`);
		if (f.to) range.push(`lt.${new Date(new Date(`${f.to}T00:00:00`).getTime() + 86400000).toISOString()}`);
		if (range.length) params.start_time = range;
		body.setAttribute('aria-busy', 'true');
		try {
			const { rows, total } = await get('sync_runs', params, { count: true, signal: ctx.signal });
			if (mine !== seq) return;
			errorSlot.replaceChildren();
			paint(rows, total);
		} catch (err) {
			if (err.name === 'AbortError' || mine !== seq) return;
			replace(errorSlot, errorBox(err, 'Could not load the history'));
			body.replaceChildren();
		} finally {
			if (mine === seq) body.removeAttribute('aria-busy');
		}
	}

	// Draw the page, keeping keyboard focus.
	function paint(rows, total) {
		keepFocus(body.parentElement, () => paintRows(rows, total));
	}

	// The runs table and the pager.
	function paintRows(rows, total) {
		if (!rows.length) {
			replace(body, empty('No runs match these filters.', 'Widen the date range or clear the filters.'));
		} else {
			replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'table runs-table stack-mobile' },
				h('thead', {}, h('tr', {}, ['Run', 'CRM · model', 'Status', 'Started', 'Duration', 'Processed', 'Created', 'Updated', 'Failed', 'By', 'Via']
					.map((t) => h('th', { scope: 'col', class: OPTIONAL.includes(t) ? 'opt' : null }, t)))),
				h('tbody', {}, rows.map(row)))));
		}
		const pages = total ? Math.max(1, Math.ceil(total / PER_PAGE)) : 1;
		const prev = h('button', { type: 'button', class: 'btn', disabled: page <= 1, onclick: () => { page -= 1; load(); } }, '← Newer');
		const next = h('button', { type: 'button', class: 'btn', disabled: page >= pages, onclick: () => { page += 1; load(); } }, 'Older →');
		replace(pager, prev, h('span', { class: 'page-info' }, `Page ${page} of ${pages} · ${fmt.int(total)} runs`), next);
	}

	// One run row.
	function row(r) {
		const dur = r.duration_seconds ?? fmt.secondsBetween(r.start_time, r.end_time);
		return h('tr', { dataset: { run: r.id } },
			h('td', { 'data-label': 'Run' }, h('a', { href: `/history/${r.id}`, class: 'strong' }, `#${r.id}`),
				r.parent_id ? h('div', { class: 'muted small' }, `part of #${r.parent_id}`) : null,
				r.first_attempt_id ? h('div', { class: 'muted small' }, `retry of #${r.first_attempt_id}`) : null),
			h('td', { 'data-label': 'CRM · model' }, h('span', {}, h('a', { href: `/crm/${encodeURIComponent(r.crm)}` }, r.crm), ' · ',
				r.model === 'all' ? 'all models' : h('a', { href: `/crm/${encodeURIComponent(r.crm)}/${encodeURIComponent(r.model)}` }, r.model))),
			h('td', { 'data-label': 'Status' }, badge(r.status),
				r.error_class === 'permanent' ? h('div', {}, actionBadge()) : null,
				attemptText(r) ? h('div', { class: 'muted small' }, attemptText(r)) : null,
				waitNote(r)),
			h('td', { 'data-label': 'Started' }, ago(r.start_time)),
			h('td', { 'data-label': 'Duration' }, fmt.duration(dur)),
			h('td', { 'data-label': 'Processed', class: 'num' }, r.records_total ? `${fmt.int(r.records_processed)} / ${fmt.int(r.records_total)}` : fmt.int(r.records_processed)),
			h('td', { 'data-label': 'Created', class: 'num opt' }, fmt.int(r.records_created)),
			h('td', { 'data-label': 'Updated', class: 'num opt' }, fmt.int(r.records_updated)),
			h('td', { 'data-label': 'Failed', class: ['num', r.records_failed > 0 && 'text-danger'] }, fmt.int(r.records_failed)),
			h('td', { 'data-label': 'By' }, r.requested_by),
			h('td', { 'data-label': 'Via', class: 'opt' }, r.requested_via));
	}

	const restart = () => { page = 1; load(); };
	crmSel.addEventListener('change', () => { paintModels(''); restart(); });
	for (const el of [modelSel, statusSel, from, to]) el.addEventListener('change', restart);
	clearBtn.addEventListener('click', () => {
		crmSel.value = '';
		paintModels('');
		statusSel.value = '';
		from.value = '';
		to.value = '';
		restart();
	});
	// retention changes with its passes, not with runs: the card loads once
	const retention = retentionCard({ signal: ctx.signal });
	const reload = throttle(load, 2000);
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(onSync(reload));
	loadFilters().then(load);

	return h('div', { class: 'page' },
		h('div', { class: 'page-head' }, h('div', {}, pageTitle('Sync history'), h('p', { class: 'muted subtitle' }, 'Every run, newest first. Pick one for its configuration, metrics and log.'))),
		h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter runs', onsubmit: (e) => e.preventDefault() },
			field('f-crm', 'CRM', crmSel), field('f-model', 'Model', modelSel), field('f-status', 'Status', statusSel),
			field('f-from', 'From', from), field('f-to', 'To', to, toError), h('div', { class: 'field field-end' }, clearBtn)),
		errorSlot, body, pager, retention.el);
}
