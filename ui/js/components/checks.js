// Data-quality checks: a model's checks with their latest result (and "Run
// checks now" for operators), and the results of one run, before and after it.

import { get, rpc } from '../api.js';
import { h, replace, empty, errorBox } from '../dom.js';
import { ago } from './ago.js';

// A passed / failed / warning badge for one result.
function resultBadge(passed, severity) {
	if (passed === null || passed === undefined) return h('span', { class: 'badge' }, 'not run');
	if (passed) return h('span', { class: 'badge badge-success' }, 'passed');
	return h('span', { class: `badge ${severity === 'warn' ? 'badge-warning' : 'badge-danger'}` }, severity === 'warn' ? 'warning' : 'failed');
}

// The sample keys of a result, as short text.
function samples(keys) {
	if (!keys || !keys.length) return null;
	return h('div', { class: 'muted small mono sample-keys' }, `e.g. ${keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}${keys.length > 5 ? ` … (${keys.length} kept)` : ''}`);
}

// What a check asks, in words.
function describe(c) {
	const p = c.params || {};
	const col = c.column_name ? `${c.column_name} ` : '';
	switch (c.kind) {
		case 'not_null': return `${col}is never empty`;
		case 'unique': return `${col}is unique`;
		case 'accepted_values': return `${col}is one of ${(p.values || []).join(', ')}`;
		case 'regex': return `${col}matches ${p.pattern}`;
		case 'range': return `${col}is ${p.min !== undefined ? `≥ ${p.min}` : ''}${p.min !== undefined && p.max !== undefined ? ' and ' : ''}${p.max !== undefined ? `≤ ${p.max}` : ''}`;
		case 'referential': return `${col}exists in ${p.model}.${p.column}`;
		case 'freshness': return `newest ${col}is within ${p.max_age}`;
		case 'row_count_change': return `row count changes by at most ±${p.max_change_percent}%`;
		default: return c.kind;
	}
}

// The checks card of a model page.
export function checksCard({ crm, model, operate, signal }) {
	const list = h('div', {});
	const status = h('div', { 'aria-live': 'polite' });
	const runBtn = operate ? h('button', { type: 'button', class: 'btn btn-small', id: 'run-checks' }, 'Run checks now') : null;
	const card = h('section', { class: 'card checks-card', 'aria-labelledby': 'checks-title' },
		h('div', { class: 'card-head' }, h('h2', { id: 'checks-title' }, 'Data quality'), runBtn), status, list);

	// Fetch the checks and their latest results.
	async function load() {
		try {
			const rows = await get('quality_checks', { crm: `eq.${crm}`, model: `eq.${model}`, order: 'id.asc' }, { signal });
			paint(rows);
		} catch (err) {
			if (err.name !== 'AbortError') replace(status, errorBox(err, 'Could not load the checks'));
		}
	}

	// Draw one row per check.
	function paint(rows) {
		if (!rows.length) {
			replace(list, empty('No data-quality checks.', 'Operators add them with crm_api.add_check; they run before and after each sync.'));
			return;
		}
		replace(list, h('div', { class: 'table-wrap' }, h('table', { class: 'table checks-table' },
			h('thead', {}, h('tr', {}, ['Check', 'Asks', 'Severity', 'Last result', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map((c) => h('tr', { dataset: { check: c.name } },
				h('td', { class: 'strong' }, c.name),
				h('td', {}, describe(c)),
				h('td', {}, c.severity),
				h('td', {}, resultBadge(c.last_passed, c.severity), ' ', c.last_summary || '', c.last_sampled ? h('span', { class: 'muted small' }, ' (sampled)') : null,
					samples(c.last_sample_keys)),
				h('td', {}, c.last_checked_at ? ago(c.last_checked_at) : '—',
					c.last_run_id ? h('div', { class: 'small' }, h('a', { href: `/history/${c.last_run_id}` }, `${c.last_phase} run #${c.last_run_id}`)) : null)))))));
	}

	if (runBtn) {
		runBtn.addEventListener('click', async () => {
			runBtn.disabled = true;
			runBtn.textContent = 'Checking…';
			try {
				const results = await rpc('run_checks', { crm, model });
				const failed = results.filter((r) => !r.passed).length;
				replace(status, h('p', { class: 'muted small' }, `${results.length} ${results.length === 1 ? 'check' : 'checks'} run: ${
					failed ? `${failed} did not pass` : 'all passed'}.`));
				await load();
			} catch (err) {
				replace(status, errorBox(err, 'Could not run the checks'));
			} finally {
				runBtn.disabled = false;
				runBtn.textContent = 'Run checks now';
			}
		});
	}
	load();
	return { el: card, reload: load };
}

// The data-quality results of one run (before and after it); null when none.
export async function runChecks(runId, signal) {
	const rows = await get('quality_results', { run_id: `eq.${runId}`, order: 'id.asc' }, { signal });
	if (!rows.length) return null;
	return h('section', { class: 'card checks-card', 'aria-labelledby': 'run-checks-title' },
		h('div', { class: 'card-head' }, h('h2', { id: 'run-checks-title' }, 'Data quality')),
		h('div', { class: 'table-wrap' }, h('table', { class: 'table checks-table' },
			h('thead', {}, h('tr', {}, ['Check', 'When', 'Result', 'Failing rows', 'Time'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map((r) => h('tr', { dataset: { check: r.name, phase: r.phase } },
				h('td', { class: 'strong' }, r.name, h('div', { class: 'muted small' }, `${r.kind}${r.column_name ? ` on ${r.column_name}` : ''} · ${r.severity}`)),
				h('td', {}, r.phase === 'before' ? 'before the sync' : r.phase === 'after' ? 'after the sync' : 'on demand'),
				h('td', {}, resultBadge(r.passed, r.severity), ' ', r.summary, r.sampled ? h('span', { class: 'muted small' }, ' (sampled)') : null, samples(r.sample_keys)),
				h('td', { class: 'num' }, r.failing_rows ?? '—'),
				h('td', { class: 'num' }, `${Math.round(r.duration_ms)} ms`)))))));
}
