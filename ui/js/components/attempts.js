// A run's attempts, waits and error class in words: "attempt 2 of 3",
// "waiting for the CRM's rate limit until 10:42", "action required".

import { h } from '../dom.js';
import * as fmt from '../format.js';

const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

// Why a run failed, and what happens next, by its error class.
export const ERROR_CLASSES = {
	temporary: 'a temporary failure: retried by policy',
	rate_limited: "the CRM's rate limit: retried when it ends, without using an attempt",
	stalled: 'stalled (no output): retried by policy',
	timeout: 'timed out: retried by policy',
	lost: 'lost in a restart: retried by policy',
	permanent: 'action required: not retried',
};

// An ISO time as a wall-clock time, "10:42"; "—" when absent.
export function clockTime(iso) {
	const d = fmt.toDate(iso);
	return iso && !Number.isNaN(d.getTime()) ? clockFmt.format(d) : '—';
}

// "attempt 2 of 3", or null for a run that was never to be retried nor is a retry.
export function attemptText(r) {
	if (!r || !r.attempt) return null;
	const of = r.max_attempts ?? r.attempt;
	if (r.attempt <= 1 && of <= 1) return null;
	return `attempt ${r.attempt} of ${of}`;
}

// "waiting for the CRM's rate limit until 10:42" while a running run waits on its side.
export function rateWaitText(r, now = Date.now()) {
	if (!r || r.status !== 'running' || !r.rate_limited_until) return null;
	if (fmt.toDate(r.rate_limited_until).getTime() <= now) return null;
	return `waiting for the CRM's rate limit until ${clockTime(r.rate_limited_until)}`;
}

// What an active run is doing besides progressing: why it waits (queued) or its rate-limit wait.
export function waitText(r, now = Date.now()) {
	if (!r) return null;
	if (r.status === 'queued') return r.wait_reason || null;
	return rateWaitText(r, now);
}

// A small line saying why a run waits, or nothing.
export function waitNote(r) {
	const text = waitText(r);
	return text ? h('div', { class: 'muted small wait-reason', dataset: { wait: r.status } }, text) : null;
}

// The "Action required" badge (a model whose latest run failed for good).
export function actionBadge() {
	const el = h('span', { class: 'badge badge-danger', dataset: { status: 'action-required' } },
		h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, '🛠️'), 'Action required');
	return el;
}
