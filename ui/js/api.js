// Talking to the crm_api HTTP surface: the token, PostgREST-shaped errors, reads and RPCs.
//
// The session {token, username, role, expires_at} lives in this tab's
// sessionStorage: a reload keeps it, and every request sends the token as
// "Authorization: Bearer".  The server's login cookie only opens the event
// stream (EventSource cannot send headers) and never signs a tab in.  A new
// tab asks the dashboard's open tabs for their session over a BroadcastChannel
// (same origin only); with no open tab it shows the sign-in page.

const KEY = 'crm_dashboard.session';
const ASK_TIMEOUT_MS = 400;
const listeners = new Set();
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('crm_dashboard.session') : null;

// An API failure carrying PostgREST's {code, message, details, hint} and the HTTP status.
export class ApiError extends Error {
	constructor(status, body) {
		super(body && body.message ? body.message : `The server answered HTTP ${status}.`);
		this.status = status;
		this.code = body && body.code ? body.code : null;
		this.details = body && body.details ? body.details : null;
		this.hint = body && body.hint ? body.hint : null;
	}
}

// Whether s is a usable session: a token, a user and a role, not expired.
function usable(s) {
	return !!s && typeof s.token === 'string' && s.token !== '' && typeof s.username === 'string' &&
		typeof s.role === 'string' && !(s.expires_at && new Date(s.expires_at).getTime() < Date.now());
}

// The signed-in session {token, username, role, expires_at}, or null.
export function session() {
	try {
		const s = JSON.parse(sessionStorage.getItem(KEY));
		if (s && !usable(s)) sessionStorage.removeItem(KEY);
		return usable(s) ? s : null;
	} catch {
		return null;
	}
}

// True when the signed-in role may start, stop and schedule syncs.
export function canOperate() {
	const s = session();
	return !!s && (s.role === 'crm_dashboard_operator' || s.role === 'crm_dashboard_admin');
}

// Be told when the session ends: fn(reason), 'logout' or 'expired' (a 401).
export function onSignOut(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

// Forget the session and tell the listeners why.
function endSession(reason) {
	sessionStorage.removeItem(KEY);
	for (const fn of listeners) fn(reason);
}

// Answer the dashboard's other tabs: a new tab asks for the session, and a
// sign-out in one tab ends the session in all of them.
channel?.addEventListener('message', (e) => {
	const m = e.data || {};
	if (m.type === 'ask') {
		const s = session();
		if (s) channel.postMessage({ type: 'session', session: s });
	} else if (m.type === 'logout' && session()) {
		endSession('logout');
	}
});

// An ApiError from a failed response (PostgREST's JSON, or the status in words).
async function errorFrom(res) {
	let body = null;
	try {
		body = await res.json();
	} catch {
		body = { message: `The server answered HTTP ${res.status} ${res.statusText}.` };
	}
	return new ApiError(res.status, body);
}

// One request; JSON in and out unless opts.accept says otherwise.
export async function request(method, path, { body, accept, prefer, signal, raw } = {}) {
	const headers = { Accept: accept || 'application/json' };
	const s = session();
	if (s && s.token) headers.Authorization = `Bearer ${s.token}`;
	if (prefer) headers.Prefer = prefer;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	let res;
	try {
		res = await fetch(`/api/${path}`, {
			method, headers, signal, credentials: 'same-origin',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
	} catch (e) {
		if (e.name === 'AbortError') throw e;
		throw new ApiError(0, { message: 'The server cannot be reached. Check that PostgreSQL and the dashboard are running.' });
	}
	if (!res.ok) {
		const err = await errorFrom(res);
		if (res.status === 401 && s && !path.startsWith('rpc/login')) endSession('expired');
		throw err;
	}
	if (raw) return res;
	if (res.status === 204) return null;
	const text = await res.text();
	return text ? JSON.parse(text) : null;
}

// GET /api/<view>?params; with count: {rows, total} from Content-Range.
export async function get(view, params = {}, { count, signal } = {}) {
	const qs = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) {
		for (const one of Array.isArray(v) ? v : [v]) {
			if (one !== undefined && one !== null && one !== '') qs.append(k, one);
		}
	}
	const path = `${view}${qs.toString() ? `?${qs}` : ''}`;
	if (!count) return request('GET', path, { signal });
	const res = await request('GET', path, { signal, prefer: 'count=exact', raw: true });
	const rows = await res.json();
	const range = res.headers.get('Content-Range') || '';
	const total = Number(range.split('/')[1]);
	return { rows, total: Number.isFinite(total) ? total : null };
}

// POST /api/rpc/<fn> with a JSON object of named arguments.
export function rpc(fn, args = {}, opts = {}) {
	return request('POST', `rpc/${fn}`, { ...opts, body: args });
}

// Sign in; keeps the session for this tab (the server also sets an HttpOnly
// cookie that only the event stream accepts).
export async function login(username, password) {
	const s = await rpc('login', { username, password });
	sessionStorage.setItem(KEY, JSON.stringify(s));
	return s;
}

// In a tab without a session, adopt the session of an open tab of the
// dashboard, if one answers in time; quietly nothing otherwise.
export function restoreSession() {
	if (session() || !channel) return Promise.resolve();
	return new Promise((resolve) => {
		const done = () => {
			clearTimeout(timer);
			channel.removeEventListener('message', answer);
			resolve();
		};
		const answer = (e) => {
			const m = e.data || {};
			if (m.type !== 'session' || !usable(m.session)) return;
			const { token, username, role, expires_at } = m.session;
			sessionStorage.setItem(KEY, JSON.stringify({ token, username, role, expires_at }));
			done();
		};
		const timer = setTimeout(done, ASK_TIMEOUT_MS);
		channel.addEventListener('message', answer);
		channel.postMessage({ type: 'ask' });
	});
}

// Sign out here, in the other tabs and on the server (which clears the
// cookie); never fails.
export async function logout() {
	try {
		await rpc('logout', {});
	} catch {
		/* the session ends locally whatever the server says */
	}
	channel?.postMessage({ type: 'logout' });
	endSession('logout');
}

// Download a POST /api/rpc/<fn> answer as a file (CSV or Excel export);
// rename(name) may adjust the server's file name.  Returns the name used;
// onNote(text) hears the server's Export-Note (what Excel's limits cut).
export async function download(fn, args, accept, fallbackName, rename = (n) => n, onNote = () => {}) {
	const res = await request('POST', `rpc/${fn}`, { body: args, accept, raw: true });
	const blob = await res.blob();
	const note = res.headers.get('Export-Note');
	if (note) onNote(note);
	const disposition = res.headers.get('Content-Disposition') || '';
	const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
	const name = rename(match ? decodeURIComponent(match[1]) : fallbackName);
	const url = URL.createObjectURL(blob);
	const a = document.createElement('a');
	a.href = url;
	a.download = name;
	a.hidden = true;
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10000);
	return name;
}
