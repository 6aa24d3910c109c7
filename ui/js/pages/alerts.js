// Alerts: open, acknowledged, snoozed and resolved alerts with filters;
// operators acknowledge, snooze (until a time, with a reason) and resolve
// them.  /alerts/:id shows one alert with what happened to it.  Follows
// alert changes live.

import { get, rpc, canOperate, session } from '../api.js';
import { h, replace, loading, empty, errorBox, pageTitle } from '../dom.js';
import { setQuery } from '../router.js';
import { ago } from '../components/ago.js';
import { severityBadge, alertStatusBadge, onAlertsChanged } from '../components/alerts.js';

const STATUSES = [['unresolved', 'Unresolved'], ['open', 'Open'], ['acknowledged', 'Acknowledged'], ['snoozed', 'Snoozed'],
	['resolved', 'Resolved'], ['all', 'All']];
const SEVERITIES = [['', 'Any severity'], ['critical', 'Critical'], ['warning', 'Warning'], ['info', 'Info']];
const SNOOZES = [['1', '1 hour'], ['4', '4 hours'], ['24', '1 day'], ['168', '1 week']];
const PAGE = 100;

// Render the alerts page (or one alert's page).
export function render(ctx) {
	const operate = canOperate();
	const admin = session()?.role === 'crm_dashboard_admin';
	const one = ctx.params.id ? Number(ctx.params.id) : null;
	const list = h('div', {}, loading('Loading alerts…'));
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const status = h('select', { id: 'a-status' }, STATUSES.map(([v, t]) => h('option', { value: v }, t)));
	const severity = h('select', { id: 'a-severity' }, SEVERITIES.map(([v, t]) => h('option', { value: v }, t)));
	const crm = h('select', { id: 'a-crm' }, h('option', { value: '' }, 'Every CRM'));
	status.value = STATUSES.some(([v]) => v === ctx.query.get('status')) ? ctx.query.get('status') : 'unresolved';
	severity.value = ctx.query.get('severity') || '';
	const wantedCrm = ctx.query.get('crm') || '';

	// The filters as query parameters of crm_api.alerts.
	function params() {
		const p = { order: 'last_seen.desc,id.desc', limit: PAGE };
		if (one) p.id = `eq.${one}`;
		else {
			if (status.value === 'unresolved') p.status = 'neq.resolved';
			else if (status.value !== 'all') p.status = `eq.${status.value}`;
			if (severity.value) p.severity = `eq.${severity.value}`;
			if (crm.value) p.crm = `eq.${crm.value}`;
		}
		return p;
	}

	// Fetch and paint the alerts (and the CRM filter's choices once).
	async function load() {
		try {
			if (crm.options.length === 1) {
				const sources = await get('crm_sources', { select: 'crm,display_name', order: 'crm.asc' }, { signal: ctx.signal });
				for (const s of sources) crm.append(h('option', { value: s.crm }, s.display_name));
				crm.value = wantedCrm;
			}
			if (!one) setQuery({ status: status.value === 'unresolved' ? '' : status.value, severity: severity.value, crm: crm.value });
			const rows = await get('alerts', params(), { signal: ctx.signal });
			const history = one ? await get('alert_history', { alert_id: `eq.${one}` }, { signal: ctx.signal }) : null;
			errorSlot.replaceChildren();
			paint(rows, history);
		} catch (err) {
			if (err.name !== 'AbortError') replace(list, errorBox(err, 'Could not load the alerts'));
		}
	}

	// The table of alerts (and, for one alert, its history).
	function paint(rows, history) {
		if (!rows.length) {
			replace(list, one ? empty(`There is no alert ${one}.`, 'It may have been deleted with its rule.')
				: empty(status.value === 'unresolved' ? 'No unresolved alerts.' : 'No alert matches these filters.',
					'Alerts open when a rule\'s condition is met; rules are set under "Rules and channels".'));
			return;
		}
		replace(list, h('div', { class: 'table-wrap' }, h('table', { class: 'table stack-mobile alerts-table' },
			h('thead', {}, h('tr', {}, ['Severity', 'Alert', 'Status', 'Seen', 'Notified', operate ? 'Actions' : null]
				.filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map(row)))),
		history ? historyList(history) : null);
	}

	// One alert's row.
	function row(a) {
		const modelHref = `/crm/${encodeURIComponent(a.crm)}/${encodeURIComponent(a.model)}`;
		const n = a.notifications || {};
		return h('tr', { dataset: { alert: a.id, status: a.status } },
			h('td', { 'data-label': 'Severity' }, severityBadge(a.severity)),
			h('td', { 'data-label': 'Alert' },
				h('a', { href: `/alerts/${a.id}`, class: 'strong' }, a.title),
				a.message ? h('div', { class: 'alert-message' }, a.message) : null,
				h('div', { class: 'muted small' }, h('a', { href: modelHref }, `${a.crm} · ${a.model}`), ` · rule “${a.rule_name}”`,
					a.run_id ? [' · ', h('a', { href: `/history/${a.run_id}` }, `run ${a.run_id}`)] : null)),
			h('td', { 'data-label': 'Status' }, alertStatusBadge(a.status), statusNote(a)),
			h('td', { 'data-label': 'Seen' }, a.occurrences > 1 ? `${a.occurrences} times, last ` : '', ago(a.last_seen),
				h('div', { class: 'muted small' }, 'first ', ago(a.first_seen))),
			h('td', { 'data-label': 'Notified' }, notified(n)),
			operate ? h('td', { 'data-label': 'Actions' }, a.status === 'resolved' ? h('span', { class: 'muted' }, '—') : actions(a)) : null);
	}

	// Who acknowledged or snoozed it, how it resolved.
	function statusNote(a) {
		if (a.status === 'resolved') return h('div', { class: 'muted small' }, a.resolve_reason, ' ', ago(a.resolved_at));
		if (a.status === 'snoozed') return h('div', { class: 'muted small' }, `by ${a.snoozed_by} until `, ago(a.snoozed_until), `: ${a.snooze_reason}`);
		if (a.status === 'acknowledged') return h('div', { class: 'muted small' }, `by ${a.acknowledged_by} `, ago(a.acknowledged_at));
		return null;
	}

	// The notifications of an alert by outcome.
	function notified(n) {
		const parts = [];
		if (n.delivered) parts.push(h('span', {}, `${n.delivered} delivered`));
		if (n.pending) parts.push(h('span', { class: 'muted' }, `${n.pending} pending`));
		if (n.failed) parts.push(h('span', { class: 'text-danger' }, `${n.failed} failed`));
		return parts.length ? parts.map((p, i) => [i ? ', ' : '', p]) : h('span', { class: 'muted' }, 'none');
	}

	// Acknowledge, Snooze and Resolve for an open alert.
	function actions(a) {
		const box = h('div', { class: 'alert-actions' });
		const run = async (btn, fn, args, what) => {
			btn.disabled = true;
			try {
				await rpc(fn, args);
				load();
			} catch (err) {
				replace(errorSlot, errorBox(err, `Could not ${what} alert ${a.id}`));
				btn.disabled = false;
			}
		};
		if (a.status === 'open') {
			const ack = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Acknowledge alert ${a.id}` }, 'Acknowledge');
			ack.addEventListener('click', () => run(ack, 'acknowledge_alert', { id: a.id }, 'acknowledge'));
			box.append(ack);
		}
		if (a.status !== 'snoozed') {
			const snooze = h('button', { type: 'button', class: 'btn btn-small', 'aria-expanded': 'false', 'aria-label': `Snooze alert ${a.id}` }, 'Snooze…');
			snooze.addEventListener('click', () => {
				snooze.setAttribute('aria-expanded', 'true');
				snooze.replaceWith(snoozeForm(a, run));
			});
			box.append(snooze);
		} else {
			const wake = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `End the snooze of alert ${a.id}` }, 'Unsnooze');
			wake.addEventListener('click', () => run(wake, 'unsnooze_alert', { id: a.id }, 'unsnooze'));
			box.append(wake);
		}
		const resolve = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Resolve alert ${a.id}` }, 'Resolve');
		resolve.addEventListener('click', () => run(resolve, 'resolve_alert', { id: a.id }, 'resolve'));
		box.append(resolve);
		return box;
	}

	// The snooze form: for how long, and why (the server insists on a reason).
	function snoozeForm(a, run) {
		const id = `snooze-${a.id}`;
		const hours = h('select', { id: `${id}-for`, 'aria-label': 'Snooze for' }, SNOOZES.map(([v, t]) => h('option', { value: v }, t)));
		const reason = h('input', { id: `${id}-why`, placeholder: 'Why? e.g. HubSpot maintenance', 'aria-label': 'Reason', maxlength: 500 });
		const err = h('p', { class: 'field-error', 'aria-live': 'polite' });
		const go = h('button', { type: 'submit', class: 'btn btn-small btn-primary' }, 'Snooze');
		const form = h('form', { class: 'snooze-form', novalidate: true }, hours, reason, go, err);
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			err.replaceChildren();
			if (!reason.value.trim()) {
				err.textContent = 'Say why the alert is snoozed.';
				reason.focus();
				return;
			}
			const until = new Date(Date.now() + Number(hours.value) * 3600 * 1000).toISOString();
			await run(go, 'snooze_alert', { id: a.id, until, reason: reason.value.trim() }, 'snooze');
		});
		queueMicrotask(() => reason.focus());
		return form;
	}

	// What happened to one alert, newest first.
	function historyList(rows) {
		return h('section', { class: 'card alert-history', 'aria-labelledby': 'ah-title' },
			h('div', { class: 'card-head' }, h('h2', { id: 'ah-title' }, 'History')),
			h('ol', { class: 'timeline' }, rows.map((r) => h('li', {},
				h('strong', {}, r.action), ' ', r.by ? `by ${r.by} ` : 'by the rules ', ago(r.at), r.note ? h('div', { class: 'muted small' }, r.note) : null))));
	}

	for (const sel of [status, severity, crm]) sel.addEventListener('change', load);
	ctx.onCleanup(onAlertsChanged(load));
	load();
	const filters = one ? null : h('div', { class: 'filters', role: 'search' },
		h('div', { class: 'field' }, h('label', { for: 'a-status' }, 'Status'), status),
		h('div', { class: 'field' }, h('label', { for: 'a-severity' }, 'Severity'), severity),
		h('div', { class: 'field' }, h('label', { for: 'a-crm' }, 'CRM'), crm));
	return h('div', { class: 'page' },
		h('div', { class: 'page-head' },
			h('div', {}, pageTitle(one ? `Alert ${one}` : 'Alerts'),
				h('p', { class: 'muted subtitle' }, one ? h('a', { href: '/alerts' }, '← All alerts') : 'What the alert rules found, and what was done about it.')),
			h('div', { class: 'page-actions' }, h('a', { class: 'btn', href: '/alerts/settings' }, admin ? 'Rules and channels' : 'Rules and channels (read only)'))),
		filters, errorSlot, list);
}
