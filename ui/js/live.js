// Live updates: run changes and alert changes as Server-Sent Events from
// /api/events, or polling when the stream fails.

import { get } from './api.js';

const POLL_MS = 3000;
const RETRY_SSE_MS = 30000;
const listeners = new Set();
const alertListeners = new Set();
const stateListeners = new Set();
let source = null;
let pollTimer = null;
let retryTimer = null;
let state = 'off';
let active = new Set();

// Subscribe to run changes; fn gets {id, crm, model, status, processed, ...}. Returns an unsubscribe.
export function onSync(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

// Subscribe to alert changes; fn gets {id, action, status, crm, model, severity, title},
// or null after a poll (something may have changed). Returns an unsubscribe.
export function onAlert(fn) {
	alertListeners.add(fn);
	return () => alertListeners.delete(fn);
}

// Hand one alert change to every subscriber.
function emitAlert(change) {
	for (const fn of alertListeners) {
		try {
			fn(change);
		} catch (e) {
			console.error(e);
		}
	}
}

// Subscribe to the connection state: 'live', 'connecting', 'polling', 'offline' or 'off'.
export function onState(fn) {
	stateListeners.add(fn);
	fn(state);
	return () => stateListeners.delete(fn);
}

// Record the connection state and tell the listeners.
function setState(s) {
	state = s;
	for (const fn of stateListeners) fn(s);
}

// Hand one run change to every subscriber (one failing does not stop the others).
function emit(run) {
	for (const fn of listeners) {
		try {
			fn(run);
		} catch (e) {
			console.error(e);
		}
	}
}

// Start listening (after sign-in).
export function connect() {
	disconnect();
	openStream();
}

// Stop listening (sign-out).
export function disconnect() {
	if (source) source.close();
	source = null;
	clearInterval(pollTimer);
	clearTimeout(retryTimer);
	pollTimer = null;
	setState('off');
}

// Open the event stream; poll whenever it is down.
function openStream() {
	if (typeof EventSource === 'undefined') {
		startPolling();
		return;
	}
	setState(state === 'polling' ? 'polling' : 'connecting');
	const es = new EventSource('/api/events');
	source = es;
	es.addEventListener('open', () => {
		stopPolling();
		setState('live');
	});
	es.addEventListener('sync', (e) => {
		try {
			emit(JSON.parse(e.data));
		} catch (err) {
			console.error('bad sync event', err);
		}
	});
	es.addEventListener('alert', (e) => {
		try {
			emitAlert(JSON.parse(e.data));
		} catch (err) {
			console.error('bad alert event', err);
		}
	});
	es.addEventListener('error', () => {
		// Poll while the stream is down; the browser retries the stream by itself
		// unless the server refused it (then try again later).
		startPolling();
		if (es.readyState === EventSource.CLOSED) {
			if (source === es) source = null;
			clearTimeout(retryTimer);
			retryTimer = setTimeout(openStream, RETRY_SSE_MS);
		}
	});
}

// Poll every POLL_MS (idempotent).
function startPolling() {
	if (state !== 'offline') setState('polling');
	if (pollTimer) return;
	poll();
	pollTimer = setInterval(poll, POLL_MS);
}

// Stop polling (the stream is back).
function stopPolling() {
	clearInterval(pollTimer);
	pollTimer = null;
}

const SELECT = 'id,crm,model,status,records_processed,records_created,records_updated,records_failed,records_total,performance_metrics,start_time,end_time,parent_id';

// Turn a sync_runs row into the shape of an SSE event.
export function eventFromRun(r) {
	const m = r.performance_metrics || {};
	return {
		id: r.id, crm: r.crm, model: r.model, status: r.status,
		processed: r.records_processed, created: r.records_created, updated: r.records_updated,
		failed: r.records_failed, total: r.records_total,
		records_per_second: m.records_per_second ?? null,
		start_time: r.start_time, end_time: r.end_time, parent_id: r.parent_id,
	};
}

// One poll: active runs, plus the final state of runs that stopped being active.
async function poll() {
	try {
		const running = await get('sync_runs', { select: SELECT, status: 'in.(queued,running)' });
		const now = new Set(running.map((r) => r.id));
		const finished = [...active].filter((id) => !now.has(id));
		let done = [];
		if (finished.length) done = await get('sync_runs', { select: SELECT, id: `in.(${finished.join(',')})` });
		active = now;
		if (state === 'offline') setState('polling');
		for (const r of [...running, ...done]) emit(eventFromRun(r));
		emitAlert(null);
	} catch (e) {
		if (e.status === 401) disconnect();
		// Say so when the server is gone rather than claim to be polling it.
		else if (e.name !== 'AbortError' && state === 'polling') setState('offline');
	}
}
