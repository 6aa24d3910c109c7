// The sync modal: every option, the exact command live, then the run's live progress.

import { rpc, get, canOperate } from '../api.js';
import { h, replace, debounce, throttle, errorBox } from '../dom.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { openModal } from './modal.js';
import { badge, isActive } from './status.js';
import { syncOptions } from '../capabilities.js';
import { optionFields } from './option-fields.js';
import { attemptText, waitText } from './attempts.js';

// Open the modal to configure and start a sync of crm/model ('all' for every model);
// with runId, open straight on that run's progress.
export function openSyncModal({ crm, model, crmName, runId }) {
	const title = `Sync ${crmName || crm} · ${fmt.modelLabel(model)}`;
	const cleanups = [];
	const m = openModal({ title, wide: true, onClose: () => cleanups.forEach((fn) => fn()) });
	if (runId) showProgress(m, runId, cleanups);
	else {
		syncOptions().then((defs) => showForm(m, { crm, model }, defs, cleanups))
			.catch((err) => m.body.append(errorBox(err, 'Could not load the sync options')));
	}
	return m;
}

// The options form, built from the server's option list, with the live command preview; starts the run.
function showForm(m, { crm, model }, defs, cleanups) {
	const opts = optionFields(defs);
	const form = h('form', { class: 'sync-form', id: 'sync-form', novalidate: true });
	const general = h('div', { class: 'form-general', 'aria-live': 'polite' });
	const preview = h('code', { class: 'command', id: 'command-preview' }, '…');
	const previewBox = h('div', { class: 'command-box' },
		h('div', { class: 'command-head', id: 'command-label' }, 'Command that will run'),
		h('pre', { 'aria-labelledby': 'command-label' }, preview));
	const startBtn = h('button', { type: 'submit', form: 'sync-form', class: 'btn btn-primary' }, '▶ Start sync');
	const cancelBtn = h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Cancel');

	replace(form,
		general,
		h('fieldset', { class: 'fieldset' }, h('legend', {}, 'Mode'), h('div', { class: 'checks' }, opts.checks)),
		h('fieldset', { class: 'fieldset' }, h('legend', {}, 'Limits'), h('div', { class: 'field-grid' }, opts.inputs)),
		previewBox);
	m.body.append(form);
	m.footer.append(cancelBtn, startBtn);

	// Show a server error beside the option it names, else above the form.
	function showError(err) {
		if (!opts.showError(err)) general.replaceChildren(errorBox(err));
	}

	let seq = 0;
	const refresh = debounce(async () => {
		const mine = ++seq;
		general.replaceChildren();
		opts.clearErrors();
		if (!opts.checkLocally()) {
			preview.textContent = '(fix the options above)';
			return;
		}
		try {
			const argv = await rpc('command_preview', { crm, model, options: opts.value() });
			if (mine !== seq) return;
			preview.textContent = fmt.commandLine(argv);
			preview.classList.remove('command-invalid');
		} catch (err) {
			if (mine !== seq) return;
			preview.textContent = '(invalid options)';
			preview.classList.add('command-invalid');
			showError(err);
		}
	}, 250);
	cleanups.push(refresh.cancel);
	form.addEventListener('input', refresh);
	form.addEventListener('change', refresh);
	refresh();

	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		refresh.cancel();
		general.replaceChildren();
		opts.clearErrors();
		if (!opts.checkLocally()) return;
		startBtn.disabled = true;
		startBtn.textContent = 'Starting…';
		try {
			const id = await rpc('start_sync', { crm, model, options: opts.value() });
			replace(m.body);
			replace(m.footer);
			showProgress(m, id, cleanups);
		} catch (err) {
			showError(err);
			startBtn.disabled = false;
			startBtn.textContent = '▶ Start sync';
		}
	});
	(opts.fields.full || Object.values(opts.fields)[0]).focus();
}

// Normalise a run from sync_status / sync_runs / an SSE event into one shape.
function norm(r) {
	const pm = r.performance_metrics || {};
	return {
		id: r.id, crm: r.crm ?? r.crm_source, model: r.model ?? r.sync_type, status: r.status,
		processed: r.processed ?? r.records_processed ?? 0,
		created: r.created ?? r.records_created ?? 0,
		updated: r.updated ?? r.records_updated ?? 0,
		failed: r.failed ?? r.records_failed ?? 0,
		total: r.total ?? r.records_total ?? null,
		rps: r.records_per_second ?? pm.records_per_second ?? null,
		start: r.start_time, end: r.end_time, error: r.error_message ?? null,
		attempt: r.attempt, max_attempts: r.max_attempts, wait_reason: r.wait_reason,
		rate_limited_until: r.rate_limited_until, eta: r.eta_seconds,
	};
}

// The newer of two readings of one run.  The polled status and the stream race
// each other, so a slower answer may carry older figures: counters only move
// forward and a finished run never looks active again.
function merge(prev, next) {
	if (!prev) return next;
	const stale = isActive(next.status)
		&& (!isActive(prev.status) || next.processed < prev.processed);
	if (stale) return prev;
	// a stream event carries counters only: keep what the last full reading said
	const keep = ['attempt', 'max_attempts', 'wait_reason', 'rate_limited_until', 'eta'];
	const merged = { ...next, rps: next.rps ?? prev.rps };
	for (const k of keep) if (merged[k] === undefined) merged[k] = prev[k];
	return merged;
}

// The live progress of run id: counters, rate, ETA, log tail and Stop.
function showProgress(m, id, cleanups) {
	const st = {};
	const stat = (key, label) => {
		st[key] = h('dd', { dataset: { stat: key } }, '—');
		return h('div', { class: 'stat' }, h('dt', {}, label), st[key]);
	};
	const statusSlot = h('span', { class: 'run-status', 'aria-live': 'polite' });
	const attemptSlot = h('span', { class: 'muted small', dataset: { stat: 'attempt' } });
	const waitSlot = h('p', { class: 'muted wait-reason', dataset: { stat: 'wait' }, 'aria-live': 'polite' });
	const bar = h('progress', { class: 'progress', max: '100', 'aria-label': 'Progress' });
	const counter = h('p', { class: 'progress-text', dataset: { stat: 'progress' } }, 'Waiting for the run to start…');
	const errorSlot = h('div');
	const log = h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Last log lines' }, '');
	const children = h('ul', { class: 'child-runs' });
	const stopBtn = h('button', { type: 'button', class: 'btn btn-danger' }, '■ Stop');
	const runLink = h('a', { href: `/history/${id}`, class: 'btn btn-ghost' }, 'Run details');

	m.body.append(
		h('div', { class: 'progress-head' }, statusSlot, attemptSlot, h('span', { class: 'muted' }, `Run #${id}`)),
		bar, counter, waitSlot,
		h('dl', { class: 'stats' }, stat('rate', 'Records/s'), stat('elapsed', 'Elapsed'), stat('eta', 'ETA'),
			stat('created', 'Created'), stat('updated', 'Updated'), stat('failed', 'Failed')),
		errorSlot, children,
		h('h3', { class: 'section-title' }, 'Last log lines'), log);
	replace(m.footer, runLink, canOperate() ? stopBtn : null, h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Close'));

	let run = null;
	// Draw the run: badge, bar, figures, error.
	function paint() {
		if (!run) return;
		if (!statusSlot.firstChild || statusSlot.firstChild.dataset.status !== run.status) replace(statusSlot, badge(run.status));
		const elapsed = fmt.secondsBetween(run.start, run.end);
		const rps = run.rps ?? (elapsed ? run.processed / elapsed : null);
		if (run.total) {
			bar.max = run.total;
			bar.value = Math.min(run.processed, run.total);
		} else if (!isActive(run.status)) {
			bar.max = 1;
			bar.value = 1;
		} else {
			bar.removeAttribute('value');
		}
		counter.textContent = run.total
			? `${fmt.int(run.processed)} / ${fmt.int(run.total)} records (${Math.floor((100 * run.processed) / run.total)}%)`
			: `${fmt.int(run.processed)} records`;
		st.rate.textContent = run.status === 'queued' ? '—' : fmt.rate(rps);
		st.elapsed.textContent = run.start && run.status !== 'queued' ? fmt.duration(elapsed) : '—';
		// the server's ETA counts a rate-limit wait and, for all models, the models still to run
		st.eta.textContent = !isActive(run.status) ? 'done'
			: run.eta !== null && run.eta !== undefined ? fmt.duration(run.eta)
				: run.total && rps > 0 ? fmt.duration((run.total - run.processed) / rps) : '—';
		attemptSlot.textContent = attemptText(run) || '';
		waitSlot.textContent = waitText(run) || '';
		waitSlot.hidden = !waitSlot.textContent;
		st.created.textContent = fmt.int(run.created);
		st.updated.textContent = fmt.int(run.updated);
		st.failed.textContent = fmt.int(run.failed);
		st.failed.classList.toggle('text-danger', run.failed > 0);
		replace(errorSlot, run.error ? h('div', { class: 'alert alert-error' }, run.error) : null);
		stopBtn.hidden = !isActive(run.status);
	}

	// For a run of all models: one line per model run.
	function paintChildren(rows) {
		replace(children, rows.map((c) => h('li', {}, badge(c.status), ' ', h('span', { class: 'mono' }, c.model), ' ',
			h('span', { class: 'muted' }, c.records_total ? `${fmt.int(c.records_processed)} / ${fmt.int(c.records_total)}` : fmt.int(c.records_processed)))));
	}

	// Read the run and its log (every 2 s while open).
	async function pollOnce() {
		try {
			const [s, text] = await Promise.all([rpc('sync_status', { id }), rpc('sync_log', { id })]);
			run = merge(run, norm(s));
			const lines = (text || '').split('\n').filter((l) => l !== '');
			const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
			log.textContent = lines.length ? lines.slice(-15).join('\n') : '(no output yet)';
			if (atBottom) log.scrollTop = log.scrollHeight;
			paint();
			if (run.model === 'all') paintChildren(await childRuns(id));
			if (!isActive(run.status)) clearInterval(timer);
		} catch (err) {
			replace(errorSlot, errorBox(err, 'Could not read the run'));
		}
	}
	const timer = setInterval(pollOnce, 2000);
	const tick = setInterval(paint, 1000);
	cleanups.push(() => clearInterval(timer), () => clearInterval(tick));
	const refreshChildren = throttle(async () => {
		try {
			paintChildren(await childRuns(id));
		} catch (err) {
			replace(errorSlot, errorBox(err, 'Could not read the model runs'));
		}
	}, 1000);
	cleanups.push(refreshChildren.cancel);
	cleanups.push(onSync((e) => {
		if (e.parent_id === id) refreshChildren();
		if (e.id !== id) return;
		const wasActive = run && isActive(run.status);
		run = merge(run, { ...norm(e), error: run?.error ?? null });
		paint();
		if (wasActive && !isActive(run.status)) pollOnce();
	}));
	stopBtn.addEventListener('click', async () => {
		stopBtn.disabled = true;
		stopBtn.textContent = 'Stopping…';
		try {
			await rpc('stop_sync', { id });
			pollOnce();
		} catch (err) {
			replace(errorSlot, errorBox(err, 'Could not stop'));
		} finally {
			stopBtn.disabled = false;
			stopBtn.textContent = '■ Stop';
		}
	});
	pollOnce();
	m.footer.lastChild.focus();
}

// The model runs of a parent 'all' run.
function childRuns(parentId) {
	return get('sync_runs', { select: 'id,model,status,records_processed,records_total', parent_id: `eq.${parentId}`, order: 'id.asc' });
}
