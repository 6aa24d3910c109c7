// GET /api/events with the eventsource package (the WHATWG EventSource for
// Node), unchanged: the bearer token goes in through its fetch option, as
// its README shows.  The stream opens, run changes made in SQL arrive,
// a dropped connection is resumed by the library itself with Last-Event-ID
// and nothing is lost or repeated, and a revoked token ends the stream.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventSource } from 'eventsource';
import { BASE, client, login, sql, tempUser, until } from './lib.mjs';

const created = [];
const users = [];

after(() => {
	// leave the history as the other test files expect it
	if (created.length) sql(`DELETE FROM crm_dashboard.sync_history WHERE id IN (${created.join(',')})`);
	for (const u of users) sql(`SELECT crm_api.delete_user('${u}')`);
});

// A new finished run of genius/lead made in SQL (one event); its id.
function newRun() {
	const id = Number(sql(`INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, end_time)
	                       VALUES ('genius', 'lead', 'success', now()) RETURNING id`)[0][0]);
	created.push(id);
	return id;
}

// Change a run's processed count in SQL (one event).
function setProcessed(id, n) {
	sql(`UPDATE crm_dashboard.sync_history SET records_processed = ${Number(n)} WHERE id = ${Number(id)}`);
}

// An EventSource on /api/events (through url when given) that records its
// sync events, errors and requests.  token: sent as a bearer header.
function stream(token, url = `${BASE}/api/events`) {
	const requests = [];
	const fetchWithToken = (input, init) => {
		const headers = { ...init.headers };
		if (token) headers.Authorization = `Bearer ${token}`;
		requests.push(headers);
		return fetch(input, { ...init, headers });
	};
	const es = new EventSource(url, { fetch: fetchWithToken });
	const s = { es, requests, events: [], errors: [], opens: 0 };
	es.addEventListener('open', () => { s.opens += 1; });
	es.addEventListener('error', (e) => { s.errors.push({ code: e.code, message: e.message, readyState: es.readyState }); });
	es.addEventListener('sync', (e) => { s.events.push({ lastEventId: e.lastEventId, type: e.type, data: JSON.parse(e.data) }); });
	return s;
}

// The recorded events of one run.
function eventsOf(s, runId) {
	return s.events.filter((e) => e.data.id === runId);
}

test('the stream opens with a bearer token and a run change made in SQL arrives as a sync event', async () => {
	const s = stream(await login('viewer'));
	try {
		await until(() => s.es.readyState === EventSource.OPEN);
		assert.equal(s.opens, 1);
		assert.equal(s.requests[0].Accept, 'text/event-stream');
		const id = newRun();
		const [inserted] = await until(() => eventsOf(s, id).length >= 1 && eventsOf(s, id));
		assert.equal(inserted.type, 'sync');
		assert.match(inserted.lastEventId, /^\d+$/);
		assert.equal(inserted.data.crm, 'genius');
		assert.equal(inserted.data.model, 'lead');
		assert.equal(inserted.data.status, 'success');
		assert.equal(inserted.data.processed, 0);
		setProcessed(id, 42);
		const updated = await until(() => eventsOf(s, id).find((e) => e.data.processed === 42));
		assert.ok(Number(updated.lastEventId) > Number(inserted.lastEventId), 'event ids increase');
		assert.deepEqual(s.errors, []);
	} finally {
		s.es.close();
	}
});

test('without a token the stream fails with 401 and the library does not retry', async () => {
	const s = stream(null);
	try {
		await until(() => s.errors.length > 0);
		assert.equal(s.errors[0].code, 401);
		assert.equal(s.es.readyState, EventSource.CLOSED);
		assert.equal(s.opens, 0);
	} finally {
		s.es.close();
	}
});

// A TCP proxy in front of the HTTP server whose connections can be cut (as
// a network failure would) and that can hold new connections until
// released, so that a test can change runs while a client is away.  It
// keeps the head of every request it forwards.
class CuttableProxy {
	constructor(port) {
		this.target = port;
		this.sockets = new Set();
		this.held = [];
		this.holding = false;
		this.heads = [];
	}

	async listen() {
		this.server = net.createServer((c) => (this.holding ? this.held.push(c) : this.forward(c)));
		await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
		return `http://127.0.0.1:${this.server.address().port}`;
	}

	forward(c) {
		const up = net.connect(this.target, '127.0.0.1');
		let head = '';
		c.on('data', (d) => {
			if (head.includes('\r\n\r\n')) return;
			head += d.toString('latin1');
			if (head.includes('\r\n\r\n')) this.heads.push(head);
		});
		for (const [a, b] of [[c, up], [up, c]]) {
			a.pipe(b);
			a.on('error', () => b.destroy());
			a.on('close', () => b.destroy());
			this.sockets.add(a);
		}
	}

	cut() {
		this.holding = true;
		for (const s of this.sockets) s.destroy();
		this.sockets.clear();
	}

	release() {
		this.holding = false;
		for (const c of this.held.splice(0)) this.forward(c);
	}

	close() {
		for (const s of [...this.sockets, ...this.held]) s.destroy();
		this.server.close();
	}
}

test('after a dropped connection the library reconnects with Last-Event-ID and gets every missed event once', async () => {
	const proxy = new CuttableProxy(Number(new URL(BASE).port));
	const url = await proxy.listen();
	const s = stream(await login('viewer'), `${url}/api/events`);
	try {
		await until(() => s.es.readyState === EventSource.OPEN);
		const id = newRun();
		setProcessed(id, 1);
		const seen = await until(() => eventsOf(s, id).find((e) => e.data.processed === 1));
		const before = s.events.length;

		// the network fails; while the client is away the run moves on
		proxy.cut();
		await until(() => proxy.held.length > 0, 30000);
		assert.equal(s.es.readyState, EventSource.CONNECTING);
		assert.ok(s.errors.length >= 1, 'the library reported the broken stream');
		for (const n of [2, 3, 4]) setProcessed(id, n);
		proxy.release();

		const missed = await until(() => {
			const got = eventsOf(s, id).filter((e) => e.data.processed >= 2);
			return got.length >= 3 && got;
		});
		assert.equal(s.opens, 2);
		// the reconnect asked for what came after the last event it had
		const reconnect = proxy.heads.at(-1).toLowerCase();
		assert.match(reconnect, /^get \/api\/events /);
		assert.ok(reconnect.includes(`\r\nlast-event-id: ${seen.lastEventId}\r\n`), reconnect);
		assert.deepEqual(missed.map((e) => e.data.processed), [2, 3, 4]);
		// nothing from before the cut came again, and the ids go on increasing
		const after = s.events.slice(before);
		assert.ok(after.every((e) => Number(e.lastEventId) > Number(seen.lastEventId)), JSON.stringify(after));
		const ids = s.events.map((e) => Number(e.lastEventId));
		assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
		assert.equal(new Set(ids).size, ids.length);
	} finally {
		s.es.close();
		proxy.close();
	}
});

test('logging out ends the stream, and the library stops on the 401 of its reconnect', async () => {
	const watcher = tempUser('watcher');
	users.push(watcher.user);
	const token = await login(watcher);
	const s = stream(token);
	try {
		await until(() => s.es.readyState === EventSource.OPEN);
		const id = newRun();
		await until(() => eventsOf(s, id).length > 0);

		const out = await client(token).rpc('logout');
		assert.equal(out.status, 204);
		assert.equal(out.error, null);
		// the server ends the stream; the library reconnects with the same
		// token, is refused, and closes for good
		await until(() => s.es.readyState === EventSource.CLOSED, 60000);
		assert.equal(s.errors[0].readyState, EventSource.CONNECTING, 'the stream ended and a reconnect was due');
		assert.equal(s.errors.at(-1).code, 401);
		assert.ok(s.requests.length >= 2, 'the library tried to reconnect');
		assert.equal(s.opens, 1);
	} finally {
		s.es.close();
	}
});
