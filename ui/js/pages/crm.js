// A CRM's models: last sync, status (with why a queued run waits, a pause,
// "action required"), freshness, records, duration; View / Sync / Stop /
// Pause / Resume; Sync all; pausing the whole CRM; selecting several models
// to sync or stop together.

import { get, rpc, canOperate } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import { setQuery } from '../router.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { ago } from '../components/ago.js';
import { badge, isActive } from '../components/status.js';
import { openSyncModal } from '../components/sync-modal.js';
import { waitNote, actionBadge } from '../components/attempts.js';
import { freshnessBadge, watermark } from '../components/freshness.js';
import { alertCounts, alertCountBadge, onAlertsChanged } from '../components/alerts.js';
import { pauseBanner, pauseButton, resumeButton, pauseText } from '../components/pause.js';
import { selection, bulkBar } from '../components/bulk.js';

// Render the models table of ctx.params.crm; rows follow live run changes.
export function render(ctx) {
	const crm = ctx.params.crm;
	const operate = canOperate();
	let source = null;
	let models = null;
	let activeRuns = new Map();
	let alerts = {};
	const live = new Map();
	const title = pageTitle(crm);
	const icon = h('span', { class: 'crm-icon', 'aria-hidden': 'true' });
	const headBadge = h('span');
	const subtitle = h('p', { class: 'muted subtitle' });
	const pauseSlot = h('div', { 'aria-live': 'polite' });
	const crmPauseBtn = operate ? h('span') : null;
	const search = h('input', { type: 'search', id: 'model-search', placeholder: 'Search models…', value: ctx.query.get('q') || '', autocomplete: 'off' });
	const body = h('div', {}, loading('Loading models…'));
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const syncAll = operate ? h('button', { type: 'button', class: 'btn btn-primary' }, '▶ Sync all models') : null;
	const actions = h('div', { class: 'page-actions' }, h('a', { class: 'btn btn-ghost', href: `/history?crm=${encodeURIComponent(crm)}` }, 'Sync history →'), crmPauseBtn, syncAll);
	const toolbar = h('div', { class: 'toolbar' }, h('label', { for: 'model-search', class: 'sr-only' }, 'Search models'), search);
	let shownNames = [];
	const sel = selection(() => {
		if (models) paint();
	});
	// The active runs of the selected models, for "Stop N runs".
	const selectedRuns = () => (models || []).filter((m) => sel.chosen.has(m.model)).map((m) => {
		const ev = live.get(m.model);
		const status = ev ? ev.status : m.last_status;
		const id = ev ? ev.id : m.active_run_id;
		return isActive(status) && id ? { id, model: m.model, status } : null;
	}).filter(Boolean);
	const bar = operate ? bulkBar({ crm, sel, runs: selectedRuns, onDone: load }) : null;

	// Fetch the CRM and its models.
	async function load() {
		try {
			const [sources, rows, runs, counts] = await Promise.all([
				get('crm_sources', { crm: `eq.${crm}` }, { signal: ctx.signal }),
				get('crm_models', { crm: `eq.${crm}`, order: 'model.asc' }, { signal: ctx.signal }),
				get('sync_runs', { select: 'id,model,status,wait_reason,attempt,max_attempts,rate_limited_until', crm: `eq.${crm}`, status: 'in.(queued,running)' }, { signal: ctx.signal }),
				alertCounts({ signal: ctx.signal }),
			]);
			alerts = counts.byModel;
			activeRuns = new Map(runs.map((r) => [r.model, r]));
			if (!sources.length) {
				replace(body, empty(`There is no CRM called “${crm}”.`, 'Go back to the overview to pick one.'));
				for (const el of [icon, toolbar, actions]) el.hidden = true;
				return;
			}
			source = sources[0];
			models = rows;
			for (const m of rows) if (!isActive(m.last_status)) live.delete(m.model);
			paint();
		} catch (err) {
			if (err.name === 'AbortError') return;
			replace(errorSlot, errorBox(err, 'Could not load the models'));
			if (!models) body.replaceChildren();
		}
	}

	// Draw the header and the models table.
	function paint() {
		title.textContent = source.display_name;
		document.title = `${source.display_name} · CRM Dashboard`;
		icon.textContent = source.icon;
		replace(headBadge, badge(source.health), ' ', freshnessBadge(source.freshness));
		replace(subtitle, `${fmt.int(source.model_count)} models · ≈ ${fmt.compact(source.estimated_records)} records · last sync `, ago(source.last_sync_at),
			source.action_required_models ? ` · ${source.action_required_models} need action` : '',
			source.late_models || source.overdue_models ? ` · ${source.overdue_models} overdue, ${source.late_models} late` : '');
		const crmPause = source.paused ? { ...source, pause_scope: 'crm' } : null;
		replace(pauseSlot, crmPause ? pauseBanner(crmPause, operate ? resumeButton({ crm, onDone: load, errorSlot }) : null) : null);
		if (crmPauseBtn) replace(crmPauseBtn, source.paused ? null : pauseButton({ crm, onDone: load, label: '⏸ Pause CRM' }));
		const q = search.value.trim().toLowerCase();
		setQuery({ q: search.value.trim() });
		const shown = models.filter((m) => !q || m.model.toLowerCase().includes(q) || m.table_name.toLowerCase().includes(q));
		shownNames = shown.map((m) => m.model);
		if (bar) bar.update();
		if (!models.length) {
			replace(body, empty('No models found for this CRM.', `Tables named ${crm}_<model> in the configured schemas appear here.`));
			return;
		}
		if (!shown.length) {
			replace(body, empty(`No model matches “${search.value.trim()}”.`));
			return;
		}
		keepFocus(body, () => replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'table models-table stack-mobile' },
			h('thead', {}, h('tr', {}, operate ? h('th', { scope: 'col', class: 'select-cell' }, sel.all(() => shownNames)) : null,
				['Model', 'Status', 'Freshness', 'Last sync', 'Records', 'Duration', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, shown.map(row))))));
	}

	// One model row; a live event for the model overrides the loaded state.
	function row(m) {
		const ev = live.get(m.model);
		const status = ev ? ev.status : m.last_status;
		const active = isActive(status);
		const runId = ev ? ev.id : m.active_run_id;
		const started = ev ? ev.start_time : m.last_started_at;
		const href = `/crm/${encodeURIComponent(crm)}/${encodeURIComponent(m.model)}`;
		let progress = null;
		if (active && ev) {
			progress = h('div', { class: 'muted small' }, ev.total
				? `${fmt.int(ev.processed)} / ${fmt.int(ev.total)} synced` : `${fmt.int(ev.processed)} synced`);
		}
		const actions = [h('a', { class: 'btn btn-small', href, 'aria-label': `View ${m.model}` }, 'View')];
		if (operate && !active && !m.name_problem) {
			actions.push(h('button', { type: 'button', class: 'btn btn-small btn-primary', 'aria-label': `Sync ${m.model}`,
				onclick: () => openSyncModal({ crm, model: m.model, crmName: source.display_name }) }, 'Sync'));
		}
		// A table whose name cannot go into a command line: say why instead of offering Sync.
		const refusal = m.name_problem
			? h('div', { class: 'muted small name-problem', role: 'note' }, `Can't be synced: its name is unsafe in a command (${m.name_problem}).`)
			: null;
		if (active && runId) {
			actions.push(h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Progress of ${m.model}`,
				onclick: () => (operate ? openSyncModal({ crm, model: m.model, crmName: source.display_name, runId }) : ctx.navigate(`/history/${runId}`)) }, 'Progress'));
		}
		if (operate && active && runId) actions.push(stopButton(m.model, runId));
		if (operate && m.paused && m.pause_scope === 'model') actions.push(resumeButton({ crm, model: m.model, onDone: load, errorSlot }));
		else if (operate && !m.paused) actions.push(pauseButton({ crm, model: m.model, onDone: load }));
		const run = activeRuns.get(m.model);
		return h('tr', { dataset: { model: m.model } },
			operate ? h('td', { class: 'select-cell', 'data-label': 'Select' }, sel.box(m.model, `Select ${m.model}`, () => shownNames)) : null,
			h('td', { 'data-label': 'Model' }, h('a', { href, class: 'strong' }, m.model),
				alertCountBadge(alerts[`${crm}/${m.model}`], `/alerts?crm=${encodeURIComponent(crm)}`),
				h('div', { class: 'muted small mono' }, m.table_name), refusal),
			h('td', { 'data-label': 'Status' }, badge(status), progress,
				active && run && (!ev || ev.id === run.id) ? waitNote({ ...run, status }) : null,
				m.action_required ? h('div', { title: m.action_required_error || '' }, actionBadge()) : null,
				m.paused ? h('div', { class: 'muted small pause-note' }, pauseText(m)) : null),
			h('td', { 'data-label': 'Freshness' }, freshnessBadge(m.freshness),
				m.expected_by ? h('div', { class: 'muted small' }, 'expected ', ago(m.expected_by)) : null,
				h('div', { class: 'muted small' }, 'data ', watermark(m.data_watermark, m.watermark_note))),
			h('td', { 'data-label': 'Last sync' }, ago(started)),
			h('td', { 'data-label': 'Records', class: 'num', title: m.estimated_rows >= 0 ? `${fmt.int(m.estimated_rows)} (estimated)` : 'unknown' }, `≈ ${fmt.compact(m.estimated_rows)}`),
			h('td', { 'data-label': 'Duration' }, active ? 'running…' : fmt.duration(m.last_duration_seconds)),
			h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' }, actions)));
	}

	// A Stop button for a running model.
	function stopButton(model, runId) {
		const btn = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Stop ${model}` }, 'Stop');
		btn.addEventListener('click', async () => {
			btn.disabled = true;
			btn.textContent = 'Stopping…';
			try {
				await rpc('stop_sync', { id: runId });
				errorSlot.replaceChildren();
			} catch (err) {
				replace(errorSlot, errorBox(err, `Could not stop ${model}`));
				btn.disabled = false;
				btn.textContent = 'Stop';
			}
		});
		return btn;
	}

	const reload = throttle(load, 1500);
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(onAlertsChanged(load));
	ctx.onCleanup(onSync((e) => {
		if (e.crm !== crm) return;
		// The stream and the polling fallback may cross: never step a run's count back.
		const seen = live.get(e.model);
		const stale = seen && seen.id === e.id && isActive(e.status) && (!isActive(seen.status) || e.processed < seen.processed);
		if (e.model && e.model !== 'all' && !stale) live.set(e.model, e);
		if (models) paint();
		reload();
	}));
	search.addEventListener('input', () => models && paint());
	if (syncAll) syncAll.addEventListener('click', () => openSyncModal({ crm, model: 'all', crmName: source ? source.display_name : crm }));
	load();

	return h('div', { class: 'page' },
		h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/' }, 'Overview'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, crm)),
		h('div', { class: 'page-head' },
			h('div', { class: 'title-row' }, icon, h('div', {}, h('div', { class: 'title-line' }, title, headBadge), subtitle)),
			actions),
		pauseSlot, toolbar, errorSlot, body, bar ? bar.el : null);
}
