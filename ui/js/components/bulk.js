// Bulk actions on a CRM's models: which models are selected (checkboxes,
// select-all, shift-click ranges), a sticky action bar ("Sync 3 models",
// "Stop 2 runs"), a confirmation that lists what will happen, and the outcome
// of each model afterwards (crm_api.start_syncs and stop_syncs).

import { rpc } from '../api.js';
import { h, replace, errorBox } from '../dom.js';
import { openModal } from './modal.js';

// What each outcome of start_syncs / stop_syncs means, in words.
const OUTCOMES = {
	started: 'queued',
	already_running: 'already running',
	already_queued: 'already queued',
	paused: 'paused',
	failing_checks: 'refused: data-quality checks failed',
	unsafe_name: 'refused: unsafe name',
	unknown_model: 'unknown model',
	no_command: 'no sync command registered',
	duplicate: 'listed twice',
	invalid: 'invalid',
	cancelled: 'cancelled',
	stopping: 'stopping',
	already_finished: 'already finished',
	unknown: 'unknown run',
};

// The selection of a table of models; onChange() runs after every change.
export function selection(onChange) {
	const chosen = new Set();
	let anchor = null;
	return {
		chosen,
		// A row's checkbox: a shift-click selects or clears the range from the last click.
		box(model, label, order) {
			const box = h('input', { type: 'checkbox', class: 'select-model', checked: chosen.has(model), 'aria-label': label, dataset: { model } });
			box.addEventListener('click', (e) => {
				const names = order();
				if (e.shiftKey && anchor !== null && names.includes(anchor)) {
					const [a, b] = [names.indexOf(anchor), names.indexOf(model)].sort((x, y) => x - y);
					for (const n of names.slice(a, b + 1)) {
						if (box.checked) chosen.add(n);
						else chosen.delete(n);
					}
				} else if (box.checked) chosen.add(model);
				else chosen.delete(model);
				anchor = model;
				onChange();
			});
			return box;
		},
		// The header checkbox: all shown models, or none (indeterminate when some).
		all(order) {
			const names = order();
			const n = names.filter((m) => chosen.has(m)).length;
			const box = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all models',
				checked: names.length > 0 && n === names.length, indeterminate: n > 0 && n < names.length });
			box.addEventListener('change', () => {
				for (const m of names) {
					if (box.checked) chosen.add(m);
					else chosen.delete(m);
				}
				anchor = null;
				onChange();
			});
			return box;
		},
		clear() {
			chosen.clear();
			anchor = null;
			onChange();
		},
	};
}

// The sticky bar: a count and the two actions.  runs() gives the active runs
// of the selected models.
export function bulkBar({ crm, sel, runs, onDone }) {
	const count = h('span', { class: 'strong', 'aria-live': 'polite' });
	const sync = h('button', { type: 'button', class: 'btn btn-primary', id: 'bulk-sync' });
	const stop = h('button', { type: 'button', class: 'btn btn-danger', id: 'bulk-stop' });
	const clear = h('button', { type: 'button', class: 'btn btn-ghost', id: 'bulk-clear', onclick: () => sel.clear() }, 'Clear selection');
	const bar = h('div', { class: 'bulk-bar', role: 'region', 'aria-label': 'Bulk actions', hidden: true }, count, sync, stop, clear);

	sync.addEventListener('click', () => confirmSync([...sel.chosen].sort()));
	stop.addEventListener('click', () => confirmStop(runs()));

	// Ask before queueing the models, with one set of options.
	function confirmSync(models) {
		const m = openModal({ title: `Sync ${models.length} ${models.length === 1 ? 'model' : 'models'} of ${crm}?` });
		const full = h('input', { type: 'checkbox', id: 'bulk-full' });
		const force = h('input', { type: 'checkbox', id: 'bulk-force' });
		const result = h('div', { 'aria-live': 'polite' });
		const go = h('button', { type: 'button', class: 'btn btn-primary', id: 'bulk-confirm' }, `Sync ${models.length}`);
		m.body.append(
			h('p', {}, 'These models will be queued together, under one parent run, and run one after another:'),
			h('ul', { class: 'outcome-list bulk-plan' }, models.map((x) => h('li', {}, x))),
			h('div', { class: 'check' }, full, h('label', { for: 'bulk-full' }, 'Full sync (every record, not only changes)')),
			h('div', { class: 'check' }, force, h('label', { for: 'bulk-force' }, 'Force (even if data-quality checks fail)')),
			h('p', { class: 'muted small' }, 'A model that cannot start (already running, paused, failing checks) is listed afterwards with the reason; the others start.'),
			result);
		m.footer.append(h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Cancel'), go);
		go.addEventListener('click', async () => {
			go.disabled = true;
			const options = {};
			if (full.checked) options.full = true;
			if (force.checked) options.force = true;
			try {
				const rows = await rpc('start_syncs', { crm, models, options });
				replace(result, outcomes(rows, 'model'));
				go.hidden = true;
				sel.clear();
				onDone();
			} catch (err) {
				replace(result, errorBox(err, 'Could not start the syncs'));
				go.disabled = false;
			}
		});
	}

	// Ask before stopping the selected models' active runs.
	function confirmStop(active) {
		const m = openModal({ title: `Stop ${active.length} ${active.length === 1 ? 'run' : 'runs'}?` });
		const result = h('div', { 'aria-live': 'polite' });
		const go = h('button', { type: 'button', class: 'btn btn-danger', id: 'bulk-stop-confirm' }, `Stop ${active.length}`);
		m.body.append(h('p', {}, 'Queued runs are cancelled; running ones are stopped (SIGTERM, then SIGKILL):'),
			h('ul', { class: 'outcome-list bulk-plan' }, active.map((r) => h('li', {}, `${r.model} (run #${r.id}, ${r.status})`))), result);
		m.footer.append(h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Cancel'), go);
		go.addEventListener('click', async () => {
			go.disabled = true;
			try {
				const rows = await rpc('stop_syncs', { ids: active.map((r) => r.id) });
				const names = new Map(active.map((r) => [r.id, r.model]));
				replace(result, outcomes(rows.map((r) => ({ ...r, model: `${names.get(r.run_id) || ''} #${r.run_id}` })), 'model'));
				go.hidden = true;
				sel.clear();
				onDone();
			} catch (err) {
				replace(result, errorBox(err, 'Could not stop the runs'));
				go.disabled = false;
			}
		});
	}

	return {
		el: bar,
		// Show the bar and its labels for the current selection.
		update() {
			const n = sel.chosen.size;
			const active = runs();
			bar.hidden = n === 0;
			count.textContent = `${n} selected`;
			sync.textContent = `▶ Sync ${n} ${n === 1 ? 'model' : 'models'}`;
			stop.textContent = `■ Stop ${active.length} ${active.length === 1 ? 'run' : 'runs'}`;
			stop.hidden = active.length === 0;
		},
	};
}

// The outcome of each model (or run), in words, with the server's message.
export function outcomes(rows, key) {
	return h('ul', { class: 'outcome-list bulk-outcomes' }, rows.map((r) => h('li', { dataset: { outcome: r.outcome }, class: `outcome-${r.outcome}` },
		h('span', { class: 'strong' }, r[key]), `: ${OUTCOMES[r.outcome] || r.outcome}`,
		r.message ? h('div', { class: 'muted small' }, r.message) : null)));
}
