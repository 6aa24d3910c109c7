// Function calls with @supabase/postgrest-js: POST with a JSON body,
// { get: true } for stable functions, { head: true }, scalars, JSON,
// arrays, sets with filters and ranges, void, and the errors an application
// branches on (unknown function, wrong arguments, missing privilege,
// volatile function over GET).  Answers are checked against SQL.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, login, sql } from './lib.mjs';

let viewer;
let operator;
let admin;
let viewerToken;

before(async () => {
	viewerToken = await login('viewer');
	viewer = client(viewerToken);
	operator = client(await login('operator'));
	admin = client(await login('admin'));
	// command_preview needs a registered command; a harmless one
	sql(`INSERT INTO crm_dashboard.sync_command (crm, model, argv)
	     VALUES ('genius', NULL, '{/bin/true,--crm,"{crm}","{model}"}')`);
});

after(() => {
	sql(`DELETE FROM crm_dashboard.sync_command WHERE crm = 'genius'`);
});

// One JSON value computed by SQL as the postgres superuser.
function sqlJson(query) {
	return JSON.parse(sql(query)[0][0]);
}

test('a stable function with { get: true } is a GET with the arguments in the query string', async () => {
	const exchanges = [];
	const { data, error, status } = await client(viewerToken, { exchanges })
		.rpc('count_rows', { crm: 'hubspot', model: 'contact' }, { get: true });
	assert.equal(error, null);
	assert.equal(status, 200);
	assert.equal(exchanges[0].method, 'GET');
	assert.equal(exchanges[0].url.searchParams.get('crm'), 'hubspot');
	// a bigint comes back bare: a number, not an object or an array
	assert.equal(data, Number(sql(`SELECT count(*) FROM ingestion.hubspot_contact`)[0][0]));
	assert.equal(data, 120);
});

test('booleans and numbers reach a GET call as their text', async () => {
	const { data, error } = await viewer.rpc('model_detail', { crm: 'hubspot', model: 'deal', exact_count: true }, { get: true });
	assert.equal(error, null);
	assert.equal(data.table_name, 'ingestion.hubspot_deal');
	assert.equal(data.exact_rows, 20);
	const status = await viewer.rpc('sync_status', { id: 2 }, { get: true });
	assert.equal(status.error, null);
	assert.equal(status.data.id, 2);
	assert.equal(status.data.error_message, 'api said no');
});

test('POST with a JSON body returns the JSON document the function returns', async () => {
	const args = { crm: 'hubspot', model: 'contact', per_page: 3, search: 'c1', sort: 'id', descending: true };
	const exchanges = [];
	const { data, error, status } = await client(viewerToken, { exchanges }).rpc('model_rows', args);
	assert.equal(error, null);
	assert.equal(status, 200);
	assert.equal(exchanges[0].method, 'POST');
	assert.equal(exchanges[0].headers.get('content-type'), 'application/json');
	const expected = sqlJson(`SELECT crm_api.model_rows(crm => 'hubspot', model => 'contact', per_page => 3,
	                                                     search => 'c1', sort => 'id', descending => true)`);
	assert.deepEqual(data, expected);
	assert.deepEqual(data.rows.map((r) => r.id), [120, 119, 118]);
	// the cursor of the next page works through the client too
	const next = await viewer.rpc('model_rows', { ...args, after: data.next });
	assert.equal(next.error, null);
	assert.deepEqual(next.data.rows.map((r) => r.id), [117, 116, 115]);
});

test('an object argument is sent as JSON (jsonb) and an array comes back as an array', async () => {
	const { data, error } = await viewer.rpc('command_preview', { crm: 'genius', model: 'lead', options: { full: true, batch_size: 50 } });
	assert.equal(error, null);
	const expected = sqlJson(`SELECT array_to_json(crm_api.command_preview('genius', 'lead', '{"full": true, "batch_size": 50}'))`);
	assert.deepEqual(data, expected);
	assert.equal(data[0], '/bin/true');
	assert.ok(data.includes('--full'), JSON.stringify(data));
	// an option the function refuses is a 400 with the server's words
	const bad = await viewer.rpc('command_preview', { crm: 'genius', model: 'lead', options: { batch_size: -1 } });
	assert.equal(bad.status, 400);
	assert.equal(bad.data, null);
	assert.ok(bad.error.code && bad.error.message, JSON.stringify(bad.error));
});

test('a set-returning function comes back as an array that ranges and HEAD apply to', async () => {
	const all = await viewer.rpc('export_rows', { crm: 'hubspot', model: 'deal', sort: 'id' });
	assert.equal(all.error, null);
	assert.equal(all.data.length, 20);
	assert.deepEqual(all.data[0], { id: 1, name: 'deal 1', amount: 10 });
	const page = await viewer.rpc('export_rows', { crm: 'hubspot', model: 'deal', sort: 'id' }).range(5, 7);
	assert.equal(page.error, null);
	assert.deepEqual(page.data.map((r) => r.id), [6, 7, 8]);
	const head = await viewer.rpc('export_rows', { crm: 'hubspot', model: 'deal' }, { head: true });
	assert.equal(head.error, null);
	assert.equal(head.status, 200);
	assert.equal(head.data, null);
});

test("count: 'exact' on a set-returning function gives the total", {
	todo: 'the server ignores Prefer: count=exact on /rpc/ and answers Content-Range: 0-1/* (README: not supported), '
		+ 'so postgrest-js reports count NaN; PostgREST and POSTGREST.md send the number (0-1/20, status 206)',
}, async () => {
	const { data, error, count, status } = await viewer.rpc('export_rows', { crm: 'hubspot', model: 'deal' }, { count: 'exact' }).range(0, 1);
	assert.equal(error, null);
	assert.equal(data.length, 2);
	assert.equal(count, 20);
	assert.equal(status, 206);
});

test('a void function answers 204 with no data and no error', async () => {
	const name = `temp_${process.pid}`;
	const created = await admin.rpc('create_user', { username: name, password: 'a long temporary password', role: 'viewer' });
	assert.equal(created.error, null);
	assert.equal(created.data.username, name);
	assert.equal(sql(`SELECT count(*) FROM crm_api.users WHERE username = '${name}'`)[0][0], '1');
	const removed = await admin.rpc('delete_user', { username: name });
	assert.equal(removed.error, null);
	assert.equal(removed.status, 204);
	assert.equal(removed.data, null);
	assert.equal(sql(`SELECT count(*) FROM crm_api.users WHERE username = '${name}'`)[0][0], '0');
});

test('an operator calls an operator function; a viewer gets 403 with PostgreSQL\'s code', async () => {
	const denied = await viewer.rpc('pause_sync', { crm: 'callrail', model: null, reason: 'maintenance' });
	assert.equal(denied.status, 403);
	assert.equal(denied.data, null);
	assert.deepEqual(Object.keys(denied.error).sort(), ['code', 'details', 'hint', 'message']);
	assert.equal(denied.error.code, '42501');
	assert.match(denied.error.message, /permission denied/);
	assert.equal(sql(`SELECT count(*) FROM crm_api.pauses WHERE crm = 'callrail' AND active`)[0][0], '0');

	const paused = await operator.rpc('pause_sync', { crm: 'callrail', model: null, reason: 'maintenance' });
	assert.equal(paused.error, null, JSON.stringify(paused.error));
	assert.equal(paused.status, 200);
	assert.equal(sql(`SELECT count(*) FROM crm_api.pauses WHERE crm = 'callrail' AND active`)[0][0], '1');
	const seen = await viewer.from('crm_sources').select('crm,paused,pause_reason').eq('crm', 'callrail').single();
	assert.deepEqual(seen.data, { crm: 'callrail', paused: true, pause_reason: 'maintenance' });
	const resumed = await operator.rpc('resume_sync', { crm: 'callrail', model: null });
	assert.equal(resumed.error, null, JSON.stringify(resumed.error));
	assert.equal(sql(`SELECT count(*) FROM crm_api.pauses WHERE crm = 'callrail' AND active`)[0][0], '0');
});

test('an admin function called by an operator is 403 too', async () => {
	const { status, error } = await operator.rpc('create_user', { username: 'nobody', password: 'whatever password', role: 'admin' });
	assert.equal(status, 403);
	assert.equal(error.code, '42501');
	assert.equal(sql(`SELECT count(*) FROM crm_api.users WHERE username = 'nobody'`)[0][0], '0');
});

test("a client made with schema: 'crm_api' sends Content-Profile on POST; another schema is 406 PGRST106", async () => {
	const exchanges = [];
	const ok = await client(viewerToken, { schema: 'crm_api', exchanges }).rpc('count_rows', { crm: 'hubspot', model: 'deal' });
	assert.equal(exchanges[0].method, 'POST');
	assert.equal(exchanges[0].headers.get('content-profile'), 'crm_api');
	assert.equal(ok.error, null);
	assert.equal(ok.data, 20);
	const other = await client(viewerToken, { schema: 'crm_dashboard' }).rpc('count_rows', { crm: 'hubspot', model: 'deal' });
	assert.equal(other.status, 406);
	assert.equal(other.error.code, 'PGRST106');
	assert.equal(other.data, null);
});

test('an unknown function, or unknown argument names, is 404 PGRST202', async () => {
	const fn = await viewer.rpc('no_such_function', { a: 1 });
	assert.equal(fn.status, 404);
	assert.equal(fn.data, null);
	assert.deepEqual(Object.keys(fn.error).sort(), ['code', 'details', 'hint', 'message']);
	assert.equal(fn.error.code, 'PGRST202');
	const args = await viewer.rpc('count_rows', { crm: 'hubspot', table: 'contact' });
	assert.equal(args.status, 404);
	assert.equal(args.error.code, 'PGRST202');
	const get = await viewer.rpc('no_such_function', {}, { get: true });
	assert.equal(get.status, 404);
	assert.equal(get.error.code, 'PGRST202');
});

test('a volatile function over GET is 405 and changes nothing', async () => {
	const { status, error } = await operator.rpc('pause_sync', { crm: 'genius', model: 'lead', reason: 'over GET' }, { get: true });
	assert.equal(status, 405);
	assert.ok(error.code && error.message, JSON.stringify(error));
	assert.equal(sql(`SELECT count(*) FROM crm_api.pauses WHERE crm = 'genius'`)[0][0], '0');
});

test('SQLSTATE PTnnn becomes status nnn (resuming what is not paused is 409)', async () => {
	const { status, error, data } = await operator.rpc('resume_sync', { crm: 'genius', model: 'lead' });
	assert.equal(status, 409);
	assert.equal(data, null);
	assert.equal(error.code, 'PT409');
	assert.match(error.message, /not paused/);
});

test('an error raised by a function keeps its code, message and hint', async () => {
	const { status, error, data } = await viewer.rpc('count_rows', { crm: 'no such crm', model: 'contact' });
	assert.equal(data, null);
	assert.equal(status, 400);
	assert.equal(error.code, '42704');
	assert.match(error.message, /no such crm/);
	assert.match(error.hint, /Known CRMs: .*hubspot/);
});
