// Schedules (pg_cron): list, add and remove recurring syncs.

import { get, rpc, canOperate } from '../api.js';
import { h, replace, loading, empty, errorBox, pageTitle } from '../dom.js';
import { optionFields } from '../components/option-fields.js';
import { capabilities } from '../capabilities.js';
import { renderValue } from '../components/value.js';
import { ago } from '../components/ago.js';

const EXAMPLES = [['*/15 * * * *', 'every 15 min'], ['0 3 * * *', 'daily at 03:00']];

// Render the schedules page; without pg_cron it says so and offers nothing to edit.
export function render(ctx) {
	const operate = canOperate();
	const list = h('div', {}, loading('Loading schedules…'));
	const formSlot = h('div');
	const errorSlot = h('div', { 'aria-live': 'polite' });

	// Fetch the schedules (and build the add form once).
	async function load() {
		try {
			const caps = await capabilities();
			if (!caps.pg_cron) {
				unavailable({ message: 'pg_cron is not installed in this database.',
					hint: 'An administrator can add pg_cron to shared_preload_libraries, set cron.database_name to this database and run CREATE EXTENSION pg_cron.' });
				return;
			}
			const rows = await get('schedules', { order: 'id.asc' }, { signal: ctx.signal });
			errorSlot.replaceChildren();
			paint(rows);
			if (operate && !formSlot.firstChild) formSlot.append(await addForm(caps.sync_options || []));
		} catch (err) {
			if (err.name === 'AbortError') return;
			if (err.code === '0A000') unavailable(err);
			else {
				replace(list, errorBox(err, 'Could not load the schedules'));
			}
		}
	}

	// Without pg_cron: say so, with the server's words, and offer nothing to edit.
	function unavailable(err) {
		replace(list, h('div', { class: 'alert alert-info', role: 'status' }, h('strong', {}, 'Schedules are unavailable. '), err.message,
			err.hint ? h('div', { class: 'alert-extra' }, err.hint) : null));
		formSlot.replaceChildren();
	}

	// The schedules table.
	function paint(rows) {
		if (!rows.length) {
			replace(list, empty('No schedules yet.', operate ? 'Add one below to run a sync on a cron schedule.' : 'An operator can add one.'));
			return;
		}
		replace(list, h('div', { class: 'table-wrap' }, h('table', { class: 'table stack-mobile' },
			h('thead', {}, h('tr', {}, ['Name', 'CRM · model', 'Cron', 'Options', 'Active', 'Last run', operate ? 'Actions' : null].filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map((s) => h('tr', { dataset: { schedule: s.id } },
				h('td', { 'data-label': 'Name' }, s.name),
				h('td', { 'data-label': 'CRM · model' }, `${s.crm} · ${s.model === 'all' ? 'all models' : s.model}`),
				h('td', { 'data-label': 'Cron' }, h('code', {}, s.cron)),
				h('td', { 'data-label': 'Options' }, renderValue(s.options && Object.keys(s.options).length ? s.options : null)),
				h('td', { 'data-label': 'Active' }, s.active ? 'yes' : 'no'),
				h('td', { 'data-label': 'Last run' },
					s.last_run_at ? [ago(s.last_run_at), ' ', h('span', { class: 'muted small' }, s.last_run_status || '')] : h('span', { class: 'muted' }, 'not yet')),
				operate ? h('td', { 'data-label': 'Actions' }, removeButton(s)) : null))))));
	}

	// A Remove button for one schedule.
	function removeButton(s) {
		const btn = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Remove schedule ${s.name}` }, 'Remove');
		btn.addEventListener('click', async () => {
			btn.disabled = true;
			try {
				await rpc('unschedule_sync', { id: s.id });
				load();
			} catch (err) {
				replace(errorSlot, errorBox(err, 'Could not remove the schedule'));
				btn.disabled = false;
			}
		});
		return btn;
	}

	// The form that adds a schedule: CRM, model, cron expression, and every sync option.
	async function addForm(defs) {
		const models = await get('crm_models', { select: 'crm,model', order: 'crm.asc,model.asc' }, { signal: ctx.signal });
		const crms = [...new Set(models.map((m) => m.crm))];
		const crmSel = h('select', { id: 's-crm', required: true }, crms.map((c) => h('option', { value: c }, c)));
		const modelSel = h('select', { id: 's-model' });
		const cron = h('input', { id: 's-cron', required: true, placeholder: '0 3 * * *', autocomplete: 'off', 'aria-describedby': 's-cron-help s-cron-err' });
		const cronErr = h('p', { class: 'field-error', id: 's-cron-err' });
		const opts = optionFields(defs, 's');
		const general = h('div', { 'aria-live': 'polite' });
		const paintModels = () => replace(modelSel, h('option', { value: 'all' }, 'all models'),
			models.filter((m) => m.crm === crmSel.value).map((m) => h('option', { value: m.model }, m.model)));
		crmSel.addEventListener('change', paintModels);
		paintModels();
		const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, '+ Add schedule');
		const form = h('form', { class: 'card schedule-form', 'aria-labelledby': 'add-title', novalidate: true },
			h('div', { class: 'card-head' }, h('h2', { id: 'add-title' }, 'Add a schedule')),
			general,
			h('div', { class: 'field-grid' },
				h('div', { class: 'field' }, h('label', { for: 's-crm' }, 'CRM'), crmSel),
				h('div', { class: 'field' }, h('label', { for: 's-model' }, 'Model'), modelSel),
				h('div', { class: 'field' }, h('label', { for: 's-cron' }, 'Cron expression'), cron,
					h('p', { class: 'help', id: 's-cron-help' }, 'minute hour day month weekday; e.g. ',
						EXAMPLES.map(([c, d], i) => [i ? ', ' : '', h('code', {}, c), ` (${d})`])), cronErr)),
			h('details', { class: 'schedule-options' }, h('summary', {}, 'Sync options'),
				h('div', { class: 'checks' }, opts.checks), h('div', { class: 'field-grid' }, opts.inputs)),
			h('div', { class: 'form-actions' }, submit));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			general.replaceChildren();
			cronErr.replaceChildren();
			opts.clearErrors();
			if (!opts.checkLocally()) return;
			submit.disabled = true;
			try {
				await rpc('schedule_sync', { crm: crmSel.value, model: modelSel.value, cron: cron.value.trim(), options: opts.value() });
				cron.value = '';
				load();
			} catch (err) {
				// the server names the argument at fault in details: cron, or an option
				if (err.code === '0A000') unavailable(err);
				else if (err.details === 'cron') cronErr.textContent = err.hint ? `${err.message}. ${err.hint}` : err.message;
				else if (!opts.showError(err)) replace(general, errorBox(err, 'Could not add the schedule'));
			} finally {
				submit.disabled = false;
			}
		});
		return form;
	}

	load();
	return h('div', { class: 'page' },
		h('div', { class: 'page-head' }, h('div', {}, pageTitle('Schedules'), h('p', { class: 'muted subtitle' }, 'Recurring syncs run by pg_cron.'))),
		errorSlot, list, formSlot);
}
