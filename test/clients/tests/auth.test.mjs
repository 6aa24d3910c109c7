// Signing in and out with @supabase/postgrest-js: POST /api/rpc/login, the
// token in headers: { Authorization: 'Bearer ...' }, the claims reaching SQL,
// and the 401s (and 403s) an application sees for a missing, forged,
// malformed, expired or revoked token and for a wrong password.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { client, login, sql, tempUser } from './lib.mjs';

let secret;
let quitter;

before(() => {
	// the server's secret (superusers may read it), to sign tokens here
	secret = sql(`SHOW crm_dashboard.jwt_secret`)[0][0];
	assert.ok(secret.length >= 32);
	quitter = tempUser('quitter');
});

after(() => {
	sql(`SELECT crm_api.delete_user('${quitter.user}')`);
});

function b64url(data) {
	return Buffer.from(data).toString('base64url');
}

// A JWT with the given claims, signed with HS256 (or left unsigned for alg none).
function sign(claims, { key = secret, alg = 'HS256' } = {}) {
	const head = b64url(JSON.stringify({ alg, typ: 'JWT' }));
	const body = b64url(JSON.stringify(claims));
	const sig = alg === 'none' ? '' : createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
	return `${head}.${body}.${sig}`;
}

// The claims of a token (not verified: the server did that).
function claims(token) {
	return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

test('login gives a token the client sends as a bearer header; whoami sees its claims', async () => {
	const { data, error, status } = await client().rpc('login', { username: 'viewer', password: process.env.CRM_VIEWER_PASSWORD });
	assert.equal(error, null);
	assert.equal(status, 200);
	assert.equal(data.username, 'viewer');
	assert.equal(data.role, 'crm_dashboard_viewer');
	assert.equal(data.token.split('.').length, 3);
	assert.equal(claims(data.token).role, 'crm_dashboard_viewer');
	const exchanges = [];
	const me = await client(data.token, { exchanges }).rpc('whoami', {}, { get: true });
	assert.equal(me.error, null);
	assert.equal(exchanges[0].headers.get('authorization'), `Bearer ${data.token}`);
	assert.deepEqual(me.data, { username: 'viewer', role: 'crm_dashboard_viewer' });
	const rows = await client(data.token).from('crm_sources').select('crm').eq('crm', 'hubspot');
	assert.deepEqual(rows.data, [{ crm: 'hubspot' }]);
});

test('a wrong password is refused with 403 28P01 and no token', async () => {
	const { data, error, status } = await client().rpc('login', { username: quitter.user, password: 'not the password' });
	assert.equal(status, 403);
	assert.equal(data, null);
	assert.equal(error.code, '28P01');
	assert.deepEqual(Object.keys(error).sort(), ['code', 'details', 'hint', 'message']);
});

test('without a token a view is 401 PGRST302 with WWW-Authenticate: Bearer', async () => {
	const exchanges = [];
	const { data, error, status } = await client(null, { exchanges }).from('sync_runs').select('id');
	assert.equal(status, 401);
	assert.equal(data, null);
	assert.equal(error.code, 'PGRST302');
	assert.match(exchanges[0].responseHeaders.get('www-authenticate'), /^Bearer/);
});

test('a token signed with another secret is 401 PGRST301', async () => {
	const forged = sign({ role: 'crm_dashboard_admin', exp: Math.floor(Date.now() / 1000) + 600 },
		{ key: 'another secret, long enough to be a real one, really' });
	const { data, error, status } = await client(forged).from('sync_runs').select('id');
	assert.equal(status, 401);
	assert.equal(data, null);
	assert.equal(error.code, 'PGRST301');
	const rpc = await client(forged).rpc('whoami', {});
	assert.equal(rpc.status, 401);
	assert.equal(rpc.error.code, 'PGRST301');
});

test('a malformed token and an unsigned (alg none) token are 401', async () => {
	for (const bad of ['not-a-token', 'a.b.c', sign({ role: 'crm_dashboard_admin' }, { alg: 'none' })]) {
		const { status, error, data } = await client(bad).from('crm_sources').select('crm');
		assert.equal(status, 401, bad);
		assert.equal(data, null);
		assert.match(error.code, /^PGRST30/, JSON.stringify(error));
	}
});

test('an expired token is 401 PGRST303 with error="invalid_token"', async () => {
	// expired well beyond the 30 seconds of clock skew the server allows
	const expired = sign({ role: 'crm_dashboard_viewer', exp: Math.floor(Date.now() / 1000) - 120 });
	const exchanges = [];
	const { status, error } = await client(expired, { exchanges }).from('crm_sources').select('crm');
	assert.equal(status, 401);
	assert.equal(error.code, 'PGRST303');
	assert.match(exchanges[0].responseHeaders.get('www-authenticate'), /error="invalid_token"/);
	// the same claims, not expired, are accepted: it is the expiry that was refused
	const fresh = sign({ role: 'crm_dashboard_viewer', exp: Math.floor(Date.now() / 1000) + 120 });
	const ok = await client(fresh).from('crm_sources').select('crm').eq('crm', 'genius');
	assert.equal(ok.error, null);
	assert.deepEqual(ok.data, [{ crm: 'genius' }]);
});

test('a token whose role is not a dashboard role is 401', async () => {
	const token = sign({ role: 'postgres', exp: Math.floor(Date.now() / 1000) + 120 });
	const { status, error } = await client(token).from('crm_sources').select('crm');
	assert.equal(status, 401);
	assert.ok(error.code, JSON.stringify(error));
});

test('logout (a void rpc) revokes the token; a new login works', async () => {
	const token = await login(quitter);
	const db = client(token);
	const before = await db.rpc('whoami', {}, { get: true });
	assert.equal(before.error, null);
	assert.equal(before.data.username, quitter.user);
	const out = await db.rpc('logout');
	assert.equal(out.error, null);
	assert.equal(out.status, 204);
	assert.equal(out.data, null);
	const after = await db.from('crm_sources').select('crm');
	assert.equal(after.status, 401);
	assert.equal(after.data, null);
	assert.ok(after.error.code, JSON.stringify(after.error));
	const again = await client(await login(quitter)).rpc('whoami', {}, { get: true });
	assert.equal(again.error, null);
	assert.equal(again.data.username, quitter.user);
});
