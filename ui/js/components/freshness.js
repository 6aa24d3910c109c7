// Freshness in words: on time, late or overdue against the expected cadence,
// with when the next success is expected, the last success, and how new the
// data itself is (the data watermark, or "not indexed").

import { h } from '../dom.js';
import * as fmt from '../format.js';
import { ago } from './ago.js';

const STATES = {
	on_time: { icon: '🟢', label: 'On time', tone: 'success' },
	late: { icon: '🟡', label: 'Late', tone: 'warning' },
	overdue: { icon: '🔴', label: 'Overdue', tone: 'danger' },
	unknown: { icon: '⚪', label: 'No expected cadence', tone: 'muted' },
};

const SOURCES = { sla: 'SLA', schedule: 'schedule', learned: 'learned from its history' };
const NOTES = {
	'not indexed': 'not indexed (no index leads with the updated column, so it is not read)',
	'no updated column': 'no updated column',
};

// A badge for a freshness state; unknown when absent.
export function freshnessBadge(state) {
	const s = STATES[state] || STATES.unknown;
	return h('span', { class: `badge badge-${s.tone}`, dataset: { freshness: state || 'unknown' } },
		h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, s.icon), s.label);
}

// 21600 → "6 hours", 600 → "10 minutes", 45000 → "12.5 hours".
export function every(seconds) {
	const s = Number(seconds);
	if (!Number.isFinite(s) || s <= 0) return '—';
	for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
		if (s >= size) {
			const v = Math.round((s / size) * 10) / 10;
			return `${v} ${unit}${v === 1 ? '' : 's'}`;
		}
	}
	const v = Math.round(s);
	return `${v} second${v === 1 ? '' : 's'}`;
}

// "every 6 hours (SLA)", or "—" without a cadence.
export function cadenceText(seconds, source) {
	return seconds ? `every ${every(seconds)} (${SOURCES[source] || source})` : '—';
}

// The data watermark: how long ago the newest record changed, or why it is not shown.
export function watermark(value, note) {
	if (value) return ago(value);
	return h('span', { class: 'muted', dataset: { watermark: note || 'none' } }, NOTES[note] || note || 'no data');
}

// Definition-list pairs [label, value] of a model's freshness
// (f: freshness, expected_by, last_success_at, cadence_seconds, cadence_source, data_watermark, watermark_note).
export function freshnessFacts(f) {
	return [
		['Freshness', freshnessBadge(f.freshness)],
		['Expected by', f.expected_by ? h('span', { title: fmt.dateTime(f.expected_by) }, ago(f.expected_by)) : '—'],
		['Last success', ago(f.last_success_at)],
		['Cadence', cadenceText(f.cadence_seconds, f.cadence_source)],
		['Data watermark', watermark(f.data_watermark, f.watermark_note)],
	];
}
