// Relative times ("3 min. ago") that stay true: one clock refreshes every one on the page.

import { h } from '../dom.js';
import * as fmt from '../format.js';

const EVERY_MS = 15000;
let clock = null;

// A <time> showing iso relative to now, the exact time on hover; the never text when absent.
export function ago(iso, never = 'never') {
	const d = fmt.toDate(iso);
	if (!iso || Number.isNaN(d.getTime())) return h('span', {}, iso ? String(iso) : never);
	startClock();
	return h('time', { datetime: d.toISOString(), title: fmt.dateTime(iso), dataset: { ago: '' } }, fmt.relative(iso));
}

// Start the one page-wide clock (idempotent); elements come and go with the pages.
function startClock() {
	if (clock) return;
	clock = setInterval(() => {
		for (const el of document.querySelectorAll('time[data-ago]')) {
			const text = fmt.relative(el.dateTime);
			if (el.textContent !== text) el.textContent = text;
		}
	}, EVERY_MS);
}
