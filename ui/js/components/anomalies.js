// What was unusual about a finished run (crm_api.sync_runs.anomalies): a
// warning with one sentence per anomaly, e.g. "3.4× slower than usual".

import { h } from '../dom.js';

// The anomalies of a run as a warning box, or null when there are none.
export function anomalyList(anomalies) {
	if (!Array.isArray(anomalies) || !anomalies.length) return null;
	return h('div', { class: 'alert alert-warning anomalies', role: 'status' },
		h('strong', {}, 'Unusual for this model: '),
		h('ul', { class: 'inline-list' }, anomalies.map((a) => h('li', { dataset: { anomaly: a.kind } }, a.message))));
}

// The anomalies of a run as one line of text (for titles), or ''.
export function anomalyText(anomalies) {
	return Array.isArray(anomalies) ? anomalies.map((a) => a.message).join('; ') : '';
}
