// Shared helpers of the client-library tests: the server's address and
// users (from cluster.py through run.sh), postgrest-js clients signed in the
// way an application signs in, and SQL through psql to check answers against.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PostgrestClient } from '@supabase/postgrest-js';

export const BASE = process.env.CRM_URL || 'http://127.0.0.1:24591';
export const API = `${BASE}/api`;

// The users cluster.py made, by name: { user, password }.
export const USERS = Object.fromEntries(['admin', 'operator', 'viewer'].map((name) => {
	const key = name.toUpperCase();
	return [name, { user: process.env[`CRM_${key}_USER`] || name, password: process.env[`CRM_${key}_PASSWORD`] }];
}));

// A postgrest-js client of the API, sending a bearer token when given one.
// Retries are off: the server answers 503 only for a real outage, and a
// test should see that answer rather than wait for three retries.  With
// { exchanges: [] } every request and its response's status and headers are
// recorded there (the client's own fetch still does the work), so that a
// test can check what the library sent, not only what it made of the answer.
export function client(token, { exchanges, ...options } = {}) {
	const headers = token ? { Authorization: `Bearer ${token}` } : {};
	const config = { headers, retry: false, ...options };
	if (exchanges) {
		config.fetch = async (url, init) => {
			const res = await fetch(url, init);
			exchanges.push({
				method: init.method, url: new URL(url), headers: new Headers(init.headers),
				status: res.status, responseHeaders: res.headers,
			});
			return res;
		};
	}
	return new PostgrestClient(API, config);
}

// Sign in as an application does: POST /api/rpc/login with postgrest-js,
// without a token; returns the token (and fails the test on any error).
// who is a user's name in USERS or { user, password }.
export async function login(who) {
	const { user, password } = typeof who === 'string' ? USERS[who] : who;
	const { data, error, status } = await client().rpc('login', { username: user, password });
	if (error || status !== 200 || typeof data?.token !== 'string') {
		throw new Error(`login of ${user} failed: ${status} ${JSON.stringify(error ?? data)}`);
	}
	return data.token;
}

// A signed-in client for one of the users.
export async function signedIn(name) {
	return client(await login(name));
}

// A dashboard user of its own for a test that signs out (logging out
// revokes every token of the user) or deletes it: { user, password }.
export function tempUser(prefix, role = 'viewer') {
	const user = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
	const password = randomBytes(12).toString('hex');
	sql(`SELECT crm_api.create_user('${user}', '${password}', '${role}')`);
	return { user, password };
}

// Run one SQL statement through psql (PGHOST etc. from run.sh); rows of
// tab-separated fields, NULL as the empty string.
export function sql(query) {
	const out = execFileSync('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query],
		{ encoding: 'utf8' });
	return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// Rows of a query as objects keyed by the given column names (all text).
export function sqlObjects(query, columns) {
	return sql(query).map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])));
}

// Objects with every value as text (NULL as ''), to compare JSON rows with psql's.
export function asText(rows) {
	return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? '' : String(v)])));
}

// Poll fn until it returns a truthy value (or throw after timeout ms).
export async function until(fn, timeout = 30000, interval = 100) {
	const end = Date.now() + timeout;
	let last;
	while (Date.now() < end) {
		last = await fn();
		if (last) return last;
		await new Promise((r) => setTimeout(r, interval));
	}
	throw new Error(`timed out after ${timeout} ms (last: ${JSON.stringify(last)})`);
}
