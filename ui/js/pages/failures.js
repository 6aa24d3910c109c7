// Failures grouped by the fingerprint of their error (crm_api.failures):
// how many runs, models and CRMs, first and last seen, the trend of the
// last 14 days; each opens to its latest runs.  Counts update live.

import { get } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle, keepFocus } from '../dom.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { badge } from '../components/status.js';

const TRENDS = { rising: '↑ rising', falling: '↓ falling', steady: '→ steady' };

// Render the failures page; ?fingerprint= opens that one.
export function render(ctx) {
	const wanted = ctx.query.get('fingerprint');
	const body = h('div', {}, loading('Loading the failures…'));
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const open = new Set(wanted ? [wanted] : []);
	const runs = new Map();
	let rows = [];

	// Fetch the fingerprints (and the runs of those that are open).
	async function load() {
		try {
			rows = await get('failures', {}, { signal: ctx.signal });
			await Promise.all([...open].map(loadRuns));
			keepFocus(root, paint);
			replace(errorSlot);
		} catch (err) {
			if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the failures'));
		}
	}

	// The latest runs of one fingerprint.
	async function loadRuns(fingerprint) {
		runs.set(fingerprint, await get('sync_runs', {
			select: 'id,crm,model,status,start_time,error_message', error_fingerprint: `eq.${fingerprint}`,
			order: 'start_time.desc,id.desc', limit: 20,
		}, { signal: ctx.signal }));
	}

	// Draw the list: one card per fingerprint, most recent first.
	function paint() {
		if (!rows.length) {
			replace(body, empty('No failures.', 'Failed and partial runs appear here, grouped by what went wrong.'));
			return;
		}
		replace(body, h('ul', { class: 'failures' }, rows.map((f) => {
			const details = h('details', { class: 'failure-runs', open: open.has(f.fingerprint) },
				h('summary', {}, `Latest runs (${fmt.int(f.runs)} in all)`),
				runs.has(f.fingerprint) ? h('ul', { class: 'child-runs' }, runs.get(f.fingerprint).map((r) => h('li', {},
					badge(r.status), ' ', h('a', { href: `/history/${r.id}` }, `#${r.id}`), ' ',
					h('span', {}, `${r.crm} ${r.model}`), ' ', h('span', { class: 'muted small' }, fmt.dateTime(r.start_time)),
					h('div', { class: 'muted small failure-message' }, r.error_message)))) : loading('Loading its runs…'));
			details.addEventListener('toggle', async () => {
				if (!details.open) {
					open.delete(f.fingerprint);
					return;
				}
				open.add(f.fingerprint);
				if (!runs.has(f.fingerprint)) {
					await loadRuns(f.fingerprint).catch(() => null);
					keepFocus(root, paint);
				}
			});
			return h('li', { class: 'card failure', dataset: { fingerprint: f.fingerprint } },
				h('p', { class: 'fingerprint' }, h('code', {}, f.fingerprint)),
				h('dl', { class: 'stats' },
					stat('Runs', fmt.int(f.runs), 'runs'), stat('Models', fmt.int(f.models), 'models'),
					stat('CRMs', f.crms.join(', ')), stat('First seen', fmt.dateTime(f.first_seen)),
					stat('Last seen', fmt.dateTime(f.last_seen)),
					stat('Last 7 days', `${fmt.int(f.runs_7d)} (${TRENDS[f.trend] || f.trend})`, 'trend')),
				sparkline(f.daily_runs),
				details);
		})));
	}

	const reload = throttle(load, 2000);
	ctx.onCleanup(reload.cancel);
	// a run that fails changes the counts: follow them as they happen
	ctx.onCleanup(onSync((e) => { if (e.status === 'failed' || e.status === 'partial') reload(); }));
	const root = h('div', { class: 'page' },
		h('div', { class: 'page-head' }, h('div', {}, pageTitle('Failures'),
			h('p', { class: 'muted subtitle' }, 'Failed and partial runs grouped by their error, with numbers, ids, quoted values, URLs and times set aside.'))),
		errorSlot, body);
	load();
	return root;
}

// One figure of a failure.
function stat(label, value, key) {
	return h('div', { class: 'stat', dataset: key ? { stat: key } : undefined }, h('dt', {}, label), h('dd', {}, value));
}

// Runs per day of the last 14 days as small bars, with the numbers for screen readers.
function sparkline(daily) {
	const max = Math.max(1, ...(daily || []));
	return h('div', { class: 'sparkline', role: 'img', 'aria-label': `Runs per day, last 14 days: ${(daily || []).join(', ')}` },
		(daily || []).map((n) => h('span', { class: 'bar', dataset: { n: String(n), h: String(Math.round((n / max) * 10)) } })));
}
