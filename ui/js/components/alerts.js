// Alerts in the frame and on the pages: the bell with the count of open
// alerts (live over the event stream), severity and status badges, and the
// per-model counts that badge CRM cards and model rows.

import { get, session } from '../api.js';
import { h, replace, throttle } from '../dom.js';
import * as live from '../live.js';

const SEVERITY = {
	critical: { icon: '🔴', label: 'Critical', tone: 'danger' },
	warning: { icon: '🟠', label: 'Warning', tone: 'warning' },
	info: { icon: '🔵', label: 'Info', tone: 'info' },
};
const STATUS = {
	open: { label: 'Open', tone: 'danger' },
	acknowledged: { label: 'Acknowledged', tone: 'warning' },
	snoozed: { label: 'Snoozed', tone: 'muted' },
	resolved: { label: 'Resolved', tone: 'success' },
};

// A badge for an alert's severity.
export function severityBadge(severity) {
	const s = SEVERITY[severity] || SEVERITY.warning;
	return h('span', { class: `badge badge-${s.tone}`, dataset: { severity } },
		h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, s.icon), s.label);
}

// A badge for an alert's status.
export function alertStatusBadge(status) {
	const s = STATUS[status] || STATUS.open;
	return h('span', { class: `badge badge-${s.tone}`, dataset: { alertStatus: status } }, s.label);
}

// The badge of a CRM card or model row: "2 alerts" (worst severity), or nothing.
export function alertCountBadge(counts, href) {
	if (!counts || !(counts.open + counts.acknowledged)) return null;
	const n = counts.open + counts.acknowledged;
	const s = SEVERITY[counts.severity] || SEVERITY.warning;
	return h('a', { class: `badge badge-${s.tone} alert-badge`, href, title: counts.latest_title || '',
		dataset: { alerts: n } },
	h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, '🔔'), `${n} ${n === 1 ? 'alert' : 'alerts'}`);
}

// Unresolved alerts per model: {'crm/model': counts} and per CRM {crm: counts}.
export async function alertCounts(opts) {
	const rows = await get('alert_counts', {}, opts);
	const byModel = {};
	const byCrm = {};
	const rank = (s) => ['critical', 'warning', 'info'].indexOf(s);
	for (const r of rows) {
		byModel[`${r.crm}/${r.model}`] = r;
		const c = byCrm[r.crm] || (byCrm[r.crm] = { open: 0, acknowledged: 0, snoozed: 0, severity: null, latest_title: r.latest_title });
		c.open += r.open;
		c.acknowledged += r.acknowledged;
		c.snoozed += r.snoozed;
		if (r.severity && (c.severity === null || rank(r.severity) < rank(c.severity))) c.severity = r.severity;
	}
	return { byModel, byCrm };
}

// Call fn whenever alerts may have changed (an alert event, or a poll), at most every 500 ms.
export function onAlertsChanged(fn) {
	const t = throttle(fn, 500);
	const off = live.onAlert(() => t());
	return () => {
		off();
		t.cancel?.();
	};
}

// The bell of the header: the open alerts' count, a link to the alerts page.
export function mountBell(slot) {
	const count = h('span', { class: 'bell-count', 'aria-hidden': 'true' });
	const link = h('a', { class: 'bell', href: '/alerts', id: 'bell' },
		h('span', { class: 'bell-icon', 'aria-hidden': 'true' }, '🔔'), count);
	replace(slot, link);

	// Ask for the summary and paint it.
	async function refresh() {
		if (!session()) return;
		try {
			const [s] = await get('alert_summary');
			const n = s ? s.open : 0;
			count.textContent = n > 99 ? '99+' : String(n);
			link.dataset.open = String(n);
			link.classList.toggle('bell-quiet', n === 0);
			link.classList.toggle('bell-critical', !!s && s.open_critical > 0);
			link.setAttribute('aria-label', `${n} open ${n === 1 ? 'alert' : 'alerts'}${s && s.failing_channels ? `; ${s.failing_channels} failing channel${s.failing_channels === 1 ? '' : 's'}` : ''}`);
			link.title = link.getAttribute('aria-label');
		} catch (err) {
			if (err.name !== 'AbortError') link.title = 'Could not read the alerts';
		}
	}
	onAlertsChanged(refresh);
	return refresh;
}
