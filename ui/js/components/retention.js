// The history's retention: what is kept, since when, and who applies it, for
// everyone; administrators change the policy here (crm_api.set_retention).

import { get, rpc, session } from '../api.js';
import { h, replace, errorBox } from '../dom.js';
import * as fmt from '../format.js';
import { ago } from './ago.js';

const APPLIERS = {
	launcher: 'the sync launcher, every 10 s',
	pg_cron: 'the pg_cron job "crm_dashboard retention", every minute',
	nobody: 'nobody: the launcher serves another database and pg_cron is not installed here',
};

// The fields of the policy: the server validates them and names the one at fault.
const FIELDS = [
	['keep_runs', 'Keep runs for', 'e.g. 90 days; empty keeps them for ever'],
	['keep_failed_runs', 'Keep failed runs for', 'at least as long; empty: as long as the others'],
	['keep_logs', 'Keep logs for', 'e.g. 14 days; at most as long as runs'],
];

// One term and its description.
function fact(term, ...value) {
	return h('div', {}, h('dt', {}, term), h('dd', {}, ...value));
}

// The policy and what it did, in words.
function facts(r) {
	const set = r.keep_runs || r.keep_logs;
	const runs = r.keep_runs ? `kept ${r.keep_runs}${r.keep_failed_runs ? ` (failed ones ${r.keep_failed_runs})` : ''}` : 'kept for ever';
	const logs = r.keep_logs ? `kept ${r.keep_logs}` : r.keep_runs ? 'kept as long as their runs' : 'kept for ever';
	return h('dl', { class: 'kv retention-facts' },
		fact('Runs', runs, r.keep_runs ? h('div', { class: 'muted small' }, 'Each model\'s latest run and latest success are always kept.') : null),
		fact('Logs', logs),
		set ? fact('Applied by', APPLIERS[r.applied_by] || r.applied_by) : null,
		fact('History kept since', r.history_kept_since ? fmt.dateTime(r.history_kept_since) : 'the first run (nothing removed)'),
		r.logs_kept_since ? fact('Logs kept since', fmt.dateTime(r.logs_kept_since)) : null,
		r.last_pass_at ? fact('Last pass', ago(r.last_pass_at), ` by ${r.last_pass_by}: ${fmt.int(r.last_pass_runs)} runs, ${fmt.int(r.last_pass_log_chunks)} log chunks${r.behind ? ' (catching up)' : ''}`) : null,
		fact('Removed so far', `${fmt.int(r.runs_removed)} runs, ${fmt.int(r.log_chunks_removed)} log chunks`),
		r.updated_by ? fact('Policy set', `by ${r.updated_by} `, ago(r.updated_at)) : null);
}

// The administrators' form; fill(r) shows the policy in force.
function policyForm(onSaved) {
	const general = h('div', { 'aria-live': 'polite' });
	const inputs = {};
	const errors = {};
	const fields = FIELDS.map(([name, label, help]) => {
		inputs[name] = h('input', { id: `ret-${name}`, autocomplete: 'off', placeholder: help, 'aria-describedby': `ret-${name}-err` });
		errors[name] = h('p', { class: 'field-error', id: `ret-${name}-err`, 'aria-live': 'polite' });
		return h('div', { class: 'field' }, h('label', { for: `ret-${name}` }, label), inputs[name], errors[name]);
	});
	const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save policy');
	const el = h('form', { class: 'retention-form', 'aria-label': 'Retention policy', novalidate: true },
		general, h('div', { class: 'field-grid' }, fields), h('div', { class: 'form-actions' }, submit));

	el.addEventListener('submit', async (e) => {
		e.preventDefault();
		general.replaceChildren();
		for (const p of Object.values(errors)) p.textContent = '';
		const args = Object.fromEntries(FIELDS.map(([name]) => [name, inputs[name].value.trim() || null]));
		submit.disabled = true;
		try {
			onSaved(await rpc('set_retention', args));
			replace(general, h('p', { class: 'muted small' }, 'Saved. Old runs go in small batches, without blocking readers.'));
		} catch (err) {
			// the server names the field at fault in details
			const slot = errors[err.details];
			if (slot) slot.textContent = err.hint ? `${err.message}. ${err.hint}` : err.message;
			else replace(general, errorBox(err, 'Could not save the policy'));
		} finally {
			submit.disabled = false;
		}
	});

	return {
		el,
		fill(r) {
			for (const [name] of FIELDS) inputs[name].value = r[name] || '';
		},
	};
}

// The retention card of the history page.
export function retentionCard({ signal }) {
	const admin = session()?.role === 'crm_dashboard_admin';
	const status = h('div', { 'aria-live': 'polite' });
	const summary = h('div', {});
	const form = admin ? policyForm((r) => paint(r, true)) : null;
	const el = h('section', { class: 'card retention-card', 'aria-labelledby': 'retention-title' },
		h('div', { class: 'card-head' }, h('h2', { id: 'retention-title' }, 'Retention')), status, summary, form?.el);

	let filled = false;
	// Show the policy and what it did; the form shows the policy once, and
	// again after a save, never over what someone is typing.
	function paint(r, fill = !filled) {
		replace(summary, facts(r));
		if (form && fill) form.fill(r);
		filled = true;
	}

	// Fetch them.
	async function load() {
		try {
			const [r] = await get('retention', {}, { signal });
			status.replaceChildren();
			paint(r);
		} catch (err) {
			if (err.name !== 'AbortError') replace(status, errorBox(err, 'Could not load the retention policy'));
		}
	}

	load();
	return { el, reload: load };
}
