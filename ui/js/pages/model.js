// Model detail: summary with exact count on demand, its pause and "action
// required", freshness (on time / late / overdue, expected by, last success,
// data watermark), the retry policy, recent errors with logs, the data-quality
// checks, and the data table.

import { rpc, canOperate } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { ago } from '../components/ago.js';
import { badge, isActive } from '../components/status.js';
import { openSyncModal } from '../components/sync-modal.js';
import { openTextModal } from '../components/modal.js';
import { dataTable } from '../components/data-table.js';
import { attemptText, actionBadge } from '../components/attempts.js';
import { freshnessFacts, every } from '../components/freshness.js';
import { pauseBanner, pauseButton, resumeButton } from '../components/pause.js';
import { checksCard } from '../components/checks.js';

// Render the detail page of ctx.params.crm / ctx.params.model.
export function render(ctx) {
	const { crm, model } = ctx.params;
	const operate = canOperate();
	let detail = null;
	let exact = null;
	const summary = h('section', { class: 'card', 'aria-labelledby': 'summary-title' }, loading('Loading summary…'));
	const errorsCard = h('section', { class: 'card', 'aria-labelledby': 'errors-title' });
	const freshnessCard = h('section', { class: 'card', 'aria-labelledby': 'freshness-title' });
	const banners = h('div', { 'aria-live': 'polite' });
	const actions = h('div', { class: 'page-actions' });
	const notice = h('div', { 'aria-live': 'polite' });
	const table = dataTable({ crm, model, query: ctx.query, signal: ctx.signal });
	const checks = checksCard({ crm, model, operate, signal: ctx.signal });

	// Fetch the model summary.
	async function load() {
		try {
			detail = await rpc('model_detail', { crm, model, exact_count: false }, { signal: ctx.signal });
			keepFocus(document.body, paint);
		} catch (err) {
			if (err.name === 'AbortError') return;
			replace(summary, errorBox(err, 'Could not load this model'));
			errorsCard.hidden = true;
			freshnessCard.hidden = true;
		}
	}

	// Draw the summary card, the actions and the errors.
	function paint() {
		const r = detail.latest_run;
		const active = r && isActive(r.status);
		const dur = r ? (r.duration_seconds ?? fmt.secondsBetween(r.start_time, r.end_time)) : null;
		const exactBtn = h('button', { type: 'button', class: 'btn btn-small' }, 'Exact count');
		exactBtn.addEventListener('click', async () => {
			exactBtn.disabled = true;
			exactBtn.textContent = 'Counting…';
			try {
				const d = await rpc('model_detail', { crm, model, exact_count: true }, { signal: ctx.signal });
				exact = d.exact_rows;
				paint();
			} catch (err) {
				if (err.name !== 'AbortError') replace(exactBtn.parentElement, errorBox(err, 'Count failed'));
			}
		});
		const records = exact !== null
			? h('dd', {}, h('span', { dataset: { exact: 'true' } }, fmt.int(exact)), h('span', { class: 'muted small' }, ' exact'))
			: h('dd', {}, h('span', { title: 'From the planner statistics' }, `≈ ${fmt.int(Math.max(0, detail.estimated_rows))}`), ' ', exactBtn);
		replace(summary,
			h('div', { class: 'card-head' }, h('h2', { id: 'summary-title' }, 'Summary'), badge(r ? r.status : null)),
			h('dl', { class: 'summary-grid' },
				h('div', {}, h('dt', {}, 'Records'), records),
				h('div', {}, h('dt', {}, 'Last sync'), h('dd', {}, ago(r && r.start_time))),
				h('div', {}, h('dt', {}, 'Duration'), h('dd', {}, active ? `${fmt.duration(dur)} so far` : fmt.duration(dur))),
				h('div', {}, h('dt', {}, 'Created'), h('dd', {}, r ? fmt.int(r.records_created) : '—')),
				h('div', {}, h('dt', {}, 'Updated'), h('dd', {}, r ? fmt.int(r.records_updated) : '—')),
				h('div', {}, h('dt', {}, 'Failed'), h('dd', { class: r && r.records_failed > 0 ? 'text-danger' : '' }, r ? fmt.int(r.records_failed) : '—')),
				h('div', {}, h('dt', {}, 'Last success'), h('dd', {}, ago(detail.last_success_at))),
				h('div', {}, h('dt', {}, 'Table'), h('dd', { class: 'mono small' }, detail.table_name)),
				r && attemptText(r) ? h('div', {}, h('dt', {}, 'Attempt'), h('dd', {}, attemptText(r))) : null),
			r && r.error_message ? h('div', { class: 'alert alert-error' }, r.error_message) : null);
		paintActions(r, active);
		paintBanners();
		paintFreshness();
		paintErrors();
	}

	// The pause holding the model, and "action required" with the error that needs it.
	function paintBanners() {
		const st = detail.state || {};
		replace(banners,
			st.paused ? pauseBanner(st, operate && st.pause_scope === 'model' ? resumeButton({ crm, model, onDone: load, errorSlot: notice }) : null) : null,
			st.action_required ? h('div', { class: 'alert alert-error action-required', role: 'alert' }, actionBadge(), ' ',
				h('span', { class: 'action-error' }, st.action_required_error || 'The last run failed for good.'), ' ',
				h('a', { href: `/history/${st.action_required_run_id}` }, `Run #${st.action_required_run_id}`),
				h('div', { class: 'alert-extra' }, 'Retrying cannot fix it: fix the cause (a revoked key, a setting), then sync again.')) : null);
	}

	// Freshness on both sides: the schedule's promise and the data's own newest change.
	function paintFreshness() {
		const f = detail.freshness || {};
		const policy = detail.policy || {};
		const skips = detail.skips || [];
		replace(freshnessCard,
			h('div', { class: 'card-head' }, h('h2', { id: 'freshness-title' }, 'Freshness')),
			h('dl', { class: 'kv freshness' }, freshnessFacts(f).map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
				h('div', {}, h('dt', {}, 'Retries'), h('dd', { class: 'small policy' },
					`${policy.max_attempts} attempts, backoff up to ${every(policy.backoff_cap_seconds)}, stalled after ${
						policy.stall_timeout_seconds ? every(policy.stall_timeout_seconds) : 'never'} without output, paused after ${
						policy.pause_after_failures ? `${policy.pause_after_failures} consecutive failures` : 'no number of failures'}.`))),
			skips.length ? h('div', {}, h('h3', { class: 'section-title' }, 'Skipped while paused'),
				h('ul', { class: 'child-runs skips' }, skips.map((k) => h('li', {}, ago(k.skipped_at), ' ',
					h('span', { class: 'muted small' }, `${k.requested_via} · ${k.reason}`))))) : null);
	}

	// History, and Sync or Stop for operators.
	function paintActions(r, active) {
		const list = [h('a', { class: 'btn btn-ghost', href: `/history?crm=${encodeURIComponent(crm)}&model=${encodeURIComponent(model)}` }, 'History →')];
		if (active) list.push(h('a', { class: 'btn', href: `/history/${r.id}` }, 'Run details'));
		if (operate && active) {
			list.push(h('button', { type: 'button', class: 'btn', onclick: () => openSyncModal({ crm, model, runId: r.id }) }, 'Progress'));
			const stop = h('button', { type: 'button', class: 'btn btn-danger' }, '■ Stop');
			stop.addEventListener('click', async () => {
				stop.disabled = true;
				try {
					await rpc('stop_sync', { id: r.id });
				} catch (err) {
					replace(notice, errorBox(err, 'Could not stop'));
					stop.disabled = false;
				}
			});
			list.push(stop);
		} else if (operate && detail && detail.name_problem) {
			list.push(h('p', { class: 'muted small name-problem', role: 'note' },
				`This model can't be synced: its name is unsafe in a command (${detail.name_problem}). Rename the table to use only a-z, 0-9 and _.`));
		} else if (operate) {
			list.push(h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openSyncModal({ crm, model }) }, '▶ Sync'));
		}
		if (operate && detail && !(detail.state || {}).paused) list.push(pauseButton({ crm, model, onDone: load }));
		replace(actions, list);
	}

	// The recent errors, each with its full log.
	function paintErrors() {
		const errs = detail.errors || [];
		replace(errorsCard,
			h('div', { class: 'card-head' }, h('h2', { id: 'errors-title' }, 'Recent errors'), h('span', { class: 'muted small' }, errs.length ? `${errs.length} shown` : '')),
			// The list scrolls within the card, so keyboard users must be able to reach it.
			errs.length ? h('ul', { class: 'error-list', tabindex: '0', 'aria-labelledby': 'errors-title' }, errs.map((e) => h('li', {},
				h('div', { class: 'error-meta' }, badge(e.status), h('span', { class: 'muted small' }, ago(e.time)),
					h('a', { href: `/history/${e.run_id}`, class: 'small' }, `Run #${e.run_id}`),
					h('button', { type: 'button', class: 'btn-link small', onclick: () => openTextModal(`Log of run #${e.run_id}`, () => rpc('sync_log', { id: e.run_id })) }, 'Full log')),
				h('p', { class: 'error-message' }, e.message))))
				: empty('No errors recorded.', 'Failed and partial runs of this model would be listed here.'));
	}

	const reload = throttle(load, 1500);
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(onSync((e) => {
		if (e.crm !== crm || e.model !== model) return;
		reload();
		if (!isActive(e.status)) {
			checks.reload();
			replace(notice, h('div', { class: 'alert alert-info' }, `A sync of ${model} finished (${e.status}). `,
				h('button', { type: 'button', class: 'btn-link', onclick: () => { notice.replaceChildren(); table.reload(); } }, 'Reload rows')));
		}
	}));
	load();

	return h('div', { class: 'page' },
		h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' },
			h('a', { href: '/' }, 'Overview'), h('span', { 'aria-hidden': 'true' }, ' / '),
			h('a', { href: `/crm/${encodeURIComponent(crm)}` }, crm), h('span', { 'aria-hidden': 'true' }, ' / '),
			h('span', { 'aria-current': 'page' }, model)),
		h('div', { class: 'page-head' }, h('div', {}, pageTitle(model), h('p', { class: 'muted subtitle' }, `${crm} model`)), actions),
		notice, banners,
		h('div', { class: 'detail-grid' }, summary, freshnessCard, errorsCard),
		checks.el,
		table.el);
}

