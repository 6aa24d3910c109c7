// CRM overview: one card per CRM (health, freshness, pauses, models needing
// action), running syncs at a glance, search and refresh.

import { get } from '../api.js';
import { setQuery } from '../router.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { ago } from '../components/ago.js';
import { badge } from '../components/status.js';
import { freshnessBadge } from '../components/freshness.js';
import { alertCounts, alertCountBadge, onAlertsChanged } from '../components/alerts.js';
import { pauseText } from '../components/pause.js';

// Render the overview; it reloads itself whenever a run changes.
export function render(ctx) {
	let sources = null;
	let running = [];
	let alerts = null;
	const search = h('input', { type: 'search', id: 'crm-search', placeholder: 'Search CRMs…', value: ctx.query.get('q') || '', autocomplete: 'off' });
	const refreshBtn = h('button', { type: 'button', class: 'btn' }, '⟳ Refresh all');
	const summary = h('p', { class: 'muted subtitle' });
	const runningSlot = h('div');
	// Only the number of running syncs is announced, not every percentage.
	const announce = h('p', { class: 'sr-only', 'aria-live': 'polite' });
	const grid = h('div', { class: 'crm-grid' }, loading('Loading CRMs…'));
	const errorSlot = h('div');

	// Reload everything; the button says so while it works (it is not disabled, so it keeps focus).
	async function load() {
		refreshBtn.setAttribute('aria-busy', 'true');
		try {
			[sources, running, alerts] = await Promise.all([
				get('crm_sources', {}, { signal: ctx.signal }),
				get('sync_runs', { select: 'id,crm,model,status,records_processed,records_total,start_time', status: 'in.(queued,running)', order: 'id.asc' }, { signal: ctx.signal }),
				alertCounts({ signal: ctx.signal }),
			]);
			errorSlot.replaceChildren();
			paint();
		} catch (err) {
			if (err.name === 'AbortError') return;
			replace(errorSlot, errorBox(err, 'Could not load the CRMs'));
			if (!sources) grid.replaceChildren();
		} finally {
			refreshBtn.removeAttribute('aria-busy');
		}
	}

	// Draw the summary line, the running strip and the cards.
	function paint() {
		const names = Object.fromEntries(sources.map((s) => [s.crm, s.display_name]));
		const models = sources.reduce((a, s) => a + Number(s.model_count || 0), 0);
		const records = sources.reduce((a, s) => a + Math.max(0, Number(s.estimated_records || 0)), 0);
		summary.textContent = `${sources.length} CRMs · ${fmt.int(models)} models · ≈ ${fmt.compact(records)} records`;
		const count = running.length ? `${running.length} ${running.length === 1 ? 'sync' : 'syncs'} in progress` : 'No sync is running';
		if (announce.textContent !== count && (running.length || announce.textContent)) announce.textContent = count;
		replace(runningSlot, running.length ? h('section', { class: 'running-strip', 'aria-label': 'Running syncs' },
			h('span', { class: 'running-title' }, badge('running'), ` ${running.length} ${running.length === 1 ? 'sync' : 'syncs'} in progress`),
			h('ul', { class: 'chips' }, running.map((r) => h('li', {},
				h('a', { class: 'chip', href: `/history/${r.id}` }, `${names[r.crm] || r.crm} · ${fmt.modelLabel(r.model)}`,
					h('span', { class: 'muted' }, r.status === 'queued' ? ' queued' : r.records_total
						? ` ${Math.floor((100 * r.records_processed) / r.records_total)}%` : ` ${fmt.int(r.records_processed)}`)))))) : null);
		const q = search.value.trim().toLowerCase();
		const shown = sources.filter((s) => !q || s.crm.includes(q) || String(s.display_name).toLowerCase().includes(q));
		setQuery({ q: search.value.trim() });
		keepFocus(grid, () => replace(grid, shown.length ? shown.map(card) : empty(`No CRM matches “${search.value.trim()}”.`, 'Clear the search to see every CRM.')));
	}

	// One CRM card; the whole card is the link.
	function card(s) {
		const link = h('a', { class: 'card-link', href: `/crm/${encodeURIComponent(s.crm)}` }, s.display_name);
		return h('article', { class: ['card', 'crm-card', `tone-${s.health || 'never'}`], dataset: { crm: s.crm } },
			h('div', { class: 'crm-card-head' },
				h('span', { class: 'crm-icon', 'aria-hidden': 'true' }, s.icon),
				h('div', { class: 'crm-name' }, h('h2', {}, link),
					h('div', { class: 'crm-meta' }, badge(s.health), h('span', { class: 'muted small mono' }, s.crm),
						alertCountBadge(alerts && alerts.byCrm[s.crm], `/alerts?crm=${encodeURIComponent(s.crm)}`)))),
			h('dl', { class: 'crm-stats' },
				h('div', {}, h('dt', {}, 'Models'), h('dd', {}, fmt.int(s.model_count))),
				h('div', {}, h('dt', {}, 'Records'), h('dd', { title: fmt.int(s.estimated_records) }, `≈ ${fmt.compact(s.estimated_records)}`)),
				h('div', {}, h('dt', {}, 'Last sync'), h('dd', {}, ago(s.last_sync_at))),
				h('div', {}, h('dt', {}, 'Freshness'), h('dd', {}, freshnessBadge(s.freshness)))),
			s.running_count > 0 ? h('p', { class: 'crm-running' }, h('span', { class: 'pulse-dot', 'aria-hidden': 'true' }),
				`${s.running_count} ${s.running_count === 1 ? 'sync' : 'syncs'} running now`) : null,
			s.paused ? h('p', { class: 'muted small pause-note' }, `⏸ ${pauseText({ ...s, pause_scope: 'crm' })}`)
				: s.paused_models ? h('p', { class: 'muted small pause-note' }, `⏸ ${s.paused_models} ${s.paused_models === 1 ? 'model' : 'models'} paused`) : null,
			s.action_required_models ? h('p', { class: 'text-danger small action-note' },
				`🛠️ ${s.action_required_models} ${s.action_required_models === 1 ? 'model needs' : 'models need'} action`) : null);
	}

	search.addEventListener('input', () => sources && paint());
	refreshBtn.addEventListener('click', load);
	const reload = throttle(load, 1000);
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(onSync(reload));
	ctx.onCleanup(onAlertsChanged(load));
	load();

	return h('div', { class: 'page' },
		h('div', { class: 'page-head' },
			h('div', {}, pageTitle('CRM overview'), summary),
			h('div', { class: 'page-actions' }, h('a', { class: 'btn btn-ghost', href: '/history' }, 'All syncs →'), refreshBtn)),
		h('div', { class: 'toolbar' }, h('label', { for: 'crm-search', class: 'sr-only' }, 'Search CRMs'), search),
		errorSlot, announce, runningSlot, grid);
}
