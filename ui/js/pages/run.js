// One run: status, attempts, why it waits, metrics and ETA, configuration (with
// the exact command), child runs, data-quality results and the log.

import { get, rpc, canOperate } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { badge, isActive } from '../components/status.js';
import { renderValue } from '../components/value.js';
import { attemptText, waitText, ERROR_CLASSES, actionBadge } from '../components/attempts.js';
import { runLog } from '../components/run-log.js';
import { anomalyList } from '../components/anomalies.js';
import { runChecks } from '../components/checks.js';

// Render run ctx.params.id; it follows the run live until it finishes.
export function render(ctx) {
	const id = Number(ctx.params.id);
	const title = pageTitle(`Run #${ctx.params.id}`);
	const headBadge = h('span');
	const subtitle = h('p', { class: 'muted subtitle' });
	const actions = h('div', { class: 'page-actions' });
	const content = h('div', { class: 'stack' }, loading('Loading the run…'));
	const log = runLog(id);
	const errorSlot = h('div', { 'aria-live': 'polite' });
	let run = null;
	let children = [];
	let attempts = [];
	const checksSlot = h('div', {});
	let checksShown = false;

	if (!Number.isInteger(id) || id <= 0) {
		return h('div', { class: 'page' }, title, empty(`“${ctx.params.id}” is not a run number.`));
	}

	// Fetch the run, its log and its model runs.
	async function load() {
		try {
			const [rows, kids] = await Promise.all([
				get('sync_runs', { id: `eq.${id}` }, { signal: ctx.signal }),
				get('sync_runs', { select: 'id,model,status,records_processed,records_total,start_time,end_time,attempt,max_attempts,wait_reason', parent_id: `eq.${id}`, order: 'id.asc' }, { signal: ctx.signal }),
			]);
			if (!rows.length) {
				replace(content, empty(`There is no run #${id}.`, 'It may have been deleted; see the sync history.'));
				clearInterval(poller);
				return;
			}
			run = rows[0];
			children = kids;
			attempts = await attemptsOf(run);
			log.update(run);
			keepFocus(root, paint);
			if (!isActive(run.status)) clearInterval(poller);
			// the results before the run exist at once, those after it when it ends
			if (!checksShown || !isActive(run.status)) {
				checksShown = !isActive(run.status);
				runChecks(id, ctx.signal).then((card) => replace(checksSlot, card)).catch(() => {});
			}
		} catch (err) {
			if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the run'));
		}
	}

	// Every attempt of the run's request, oldest first (one row when it is not retried).
	async function attemptsOf(r) {
		const first = r.first_attempt_id || r.id;
		const select = 'id,attempt,max_attempts,status,error_class,start_time,not_before';
		const [head, rest] = await Promise.all([
			get('sync_runs', { select, id: `eq.${first}` }, { signal: ctx.signal }),
			get('sync_runs', { select, first_attempt_id: `eq.${first}`, order: 'id.asc' }, { signal: ctx.signal }),
		]);
		return [...head, ...rest];
	}

	// Draw every section of the run.
	function paint() {
		const r = run;
		const dur = r.duration_seconds ?? fmt.secondsBetween(r.start_time, r.end_time);
		const cfg = r.configuration || {};
		const metrics = r.performance_metrics || {};
		replace(headBadge, badge(r.status));
		replace(subtitle, h('a', { href: `/crm/${encodeURIComponent(r.crm)}` }, r.crm), ' · ',
			r.model === 'all' ? 'all models' : h('a', { href: `/crm/${encodeURIComponent(r.crm)}/${encodeURIComponent(r.model)}` }, r.model));
		const stop = h('button', { type: 'button', class: 'btn btn-danger' }, '■ Stop');
		stop.addEventListener('click', async () => {
			stop.disabled = true;
			stop.textContent = 'Stopping…';
			try {
				await rpc('stop_sync', { id });
				load();
			} catch (err) {
				replace(errorSlot, errorBox(err, 'Could not stop'));
				stop.disabled = false;
				stop.textContent = '■ Stop';
			}
		});
		replace(actions, h('a', { class: 'btn btn-ghost', href: `/history?crm=${encodeURIComponent(r.crm)}` }, '← History'),
			canOperate() && isActive(r.status) ? stop : null);
		const progress = h('progress', { class: 'progress', max: String(r.records_total || 1), 'aria-label': 'Progress' });
		if (r.records_total) progress.value = Math.min(r.records_processed, r.records_total);
		else if (!isActive(r.status)) progress.value = 1;
		const argv = cfg.argv || cfg.command;
		// Repainting must not close what the reader opened or lose the log's scroll position.
		const rawOpen = !!content.querySelector('details.raw[open]');
		const logLines = log.el.querySelector('.log-lines');
		const logScroll = logLines.scrollTop;
		const waiting = waitText(r);
		replace(content,
			r.error_class === 'permanent' ? h('div', { class: 'alert alert-error action-required', role: 'alert' }, actionBadge(), ' ',
				'Retrying cannot fix this: fix the cause (a revoked key, a setting), then sync again.') : null,
			r.error_message ? h('div', { class: 'alert alert-error', role: 'alert' }, h('strong', {}, 'Error: '), r.error_message,
				r.error_fingerprint ? h('p', { class: 'small' }, h('a', { href: `/failures?fingerprint=${encodeURIComponent(r.error_fingerprint)}` }, 'Other runs with this failure')) : null) : null,
			anomalyList(r.anomalies),
			waiting ? h('div', { class: 'alert alert-info wait-reason', role: 'status', dataset: { wait: r.status } },
				h('strong', {}, r.status === 'queued' ? 'Waiting: ' : 'Waiting '), r.status === 'queued' ? waiting : waiting.replace(/^waiting /, '')) : null,
			h('div', { class: 'detail-grid' },
				h('section', { class: 'card', 'aria-labelledby': 'run-title' },
					h('div', { class: 'card-head' }, h('h2', { id: 'run-title' }, 'Run')),
					h('dl', { class: 'kv' },
						kv('Status', badge(r.status)),
						attemptText(r) ? kv('Attempt', h('span', { dataset: { attempt: String(r.attempt) } }, attemptText(r))) : null,
						r.first_attempt_id ? kv('Retry of', h('a', { href: `/history/${r.first_attempt_id}` }, `run #${r.first_attempt_id}`)) : null,
						r.error_class ? kv('Why it failed', ERROR_CLASSES[r.error_class] || r.error_class) : null,
						kv('Queued', fmt.dateTime(r.queued_at)),
						r.status === 'queued' && r.not_before ? kv('Not before', fmt.dateTime(r.not_before)) : null,
						kv('Started', r.status === 'queued' ? '—' : fmt.dateTime(r.start_time)),
						kv('Ended', fmt.dateTime(r.end_time)),
						kv('Duration', isActive(r.status) ? `${fmt.duration(dur)} so far` : fmt.duration(dur)),
						kv('Requested by', r.requested_by),
						kv('Requested via', r.requested_via),
						r.parent_id ? kv('Part of', h('a', { href: `/history/${r.parent_id}` }, `run #${r.parent_id}`)) : null,
						r.exit_code !== null && r.exit_code !== undefined ? kv('Exit code', String(r.exit_code)) : null,
						r.exit_signal ? kv('Signal', String(r.exit_signal)) : null)),
				h('section', { class: 'card', 'aria-labelledby': 'metrics-title' },
					h('div', { class: 'card-head' }, h('h2', { id: 'metrics-title' }, 'Metrics')),
					progress,
					h('p', { class: 'progress-text' }, r.records_total ? `${fmt.int(r.records_processed)} / ${fmt.int(r.records_total)} records` : `${fmt.int(r.records_processed)} records`),
					h('dl', { class: 'stats' },
						stat('Created', fmt.int(r.records_created)), stat('Updated', fmt.int(r.records_updated)),
						stat('Failed', fmt.int(r.records_failed)),
						stat('Records/s', fmt.rate(metrics.records_per_second ?? (dur ? r.records_processed / dur : null))),
						r.status === 'running' ? stat('ETA', r.eta_seconds !== null && r.eta_seconds !== undefined ? fmt.duration(r.eta_seconds) : '—') : null),
					Object.keys(metrics).length ? h('dl', { class: 'kv kv-small' }, Object.entries(metrics).map(([k, v]) => kv(k.replace(/_/g, ' '), renderValue(v)))) : null)),
			h('section', { class: 'card', 'aria-labelledby': 'config-title' },
				h('div', { class: 'card-head' }, h('h2', { id: 'config-title' }, 'Configuration')),
				argv ? h('div', { class: 'command-box' }, h('div', { class: 'command-head' }, 'Command'),
					h('pre', {}, h('code', { class: 'command' }, Array.isArray(argv) ? fmt.commandLine(argv) : String(argv)))) : null,
				cfg.options && Object.keys(cfg.options).length
					? h('dl', { class: 'kv' }, Object.entries(cfg.options).map(([k, v]) => kv(k, renderValue(v))))
					: h('p', { class: 'muted' }, 'No options: a default sync.'),
				h('details', { class: 'raw', open: rawOpen }, h('summary', {}, 'Full configuration (JSON)'), h('pre', { class: 'json' }, JSON.stringify(cfg, null, 2)))),
			attempts.length > 1 ? h('section', { class: 'card', 'aria-labelledby': 'attempts-title' },
				h('div', { class: 'card-head' }, h('h2', { id: 'attempts-title' }, 'Attempts')),
				h('ol', { class: 'child-runs attempts' }, attempts.map((a) => h('li', { dataset: { run: String(a.id) } }, badge(a.status), ' ',
					a.id === r.id ? h('strong', {}, `#${a.id}`) : h('a', { href: `/history/${a.id}` }, `#${a.id}`), ' ',
					h('span', { class: 'muted' }, attemptText(a) || `attempt ${a.attempt}`),
					a.error_class ? h('span', { class: 'muted small' }, ` · ${a.error_class.replace('_', ' ')}`) : null,
					a.status === 'queued' ? h('span', { class: 'muted small' }, ` · not before ${fmt.dateTime(a.not_before)}`) : null)))) : null,
			children.length ? h('section', { class: 'card', 'aria-labelledby': 'children-title' },
				h('div', { class: 'card-head' }, h('h2', { id: 'children-title' }, 'Model runs')),
				h('ul', { class: 'child-runs' }, children.map((c) => h('li', {}, badge(c.status), ' ',
					h('a', { href: `/history/${c.id}` }, `#${c.id} ${c.model}`), ' ',
					h('span', { class: 'muted' }, c.records_total ? `${fmt.int(c.records_processed)} / ${fmt.int(c.records_total)}` : fmt.int(c.records_processed)),
					attemptText(c) ? h('span', { class: 'muted small' }, ` · ${attemptText(c)}`) : null,
					c.status === 'queued' && c.wait_reason ? h('span', { class: 'muted small' }, ` · ${c.wait_reason}`) : null)))) : null,
			h('section', { class: 'card', 'aria-labelledby': 'log-title' },
				h('div', { class: 'card-head' }, h('h2', { id: 'log-title' }, 'Log'), isActive(r.status) ? h('span', { class: 'muted small' }, 'new lines every 2 s') : null),
				log.el));
		logLines.scrollTop = logScroll;
	}

	const reload = throttle(load, 1000);
	const poller = setInterval(load, 2000);
	ctx.onCleanup(() => clearInterval(poller));
	ctx.onCleanup(() => log.stop());
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(onSync((e) => {
		if (e.id === id || e.parent_id === id) reload();
	}));

	const root = h('div', { class: 'page' },
		h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/history' }, 'Sync history'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, `Run #${id}`)),
		h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-line' }, title, headBadge), subtitle), actions),
		errorSlot, content, checksSlot);
	load();
	return root;
}

// One key/value pair of a definition list.
function kv(key, value) {
	return h('div', {}, h('dt', {}, key), h('dd', {}, value));
}

// One figure of the metrics grid.
function stat(label, value) {
	return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', {}, value));
}
