// Cross-site request forgery from another port of the same host: while an admin
// is signed in, a page served on another port of 127.0.0.1 (the same site to the
// browser, but another origin) tries to create an admin user with a text/plain
// form, a form-encoded form and fetch(credentials: 'include', mode: 'no-cors').
// Each request must reach the server and be refused; no user may be created.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { BASE, ADMIN, launch, newPage, login, sql } from './lib.mjs';

const TARGET = `${BASE}/api/rpc/create_user`;
const NAMES = ['csrf_text_form', 'csrf_url_form', 'csrf_fetch'];

let browser;
let page;
let evil;
let evilBase;

// An HTML attribute value in double quotes.
const attr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');

// The attacker's pages.  A text/plain form sends "name=value\r\n": the name
// opens the JSON and the value closes it, the '=' falling inside the password.
const PAGES = {
	'/text-form': `<!doctype html><title>text form</title>
		<form id="f" method="post" enctype="text/plain" action="${TARGET}">
		<input type="hidden" name="${attr('{"username": "csrf_text_form", "password": "csrf-pass')}"
		       value="${attr('word-1", "role": "admin"}')}">
		</form><script>document.getElementById('f').submit();</script>`,
	'/url-form': `<!doctype html><title>form-encoded form</title>
		<form id="f" method="post" action="${TARGET}">
		<input type="hidden" name="username" value="csrf_url_form">
		<input type="hidden" name="password" value="csrf-password-1">
		<input type="hidden" name="role" value="admin">
		</form><script>document.getElementById('f').submit();</script>`,
	'/fetch': `<!doctype html><title>fetch</title><script>
		fetch(${JSON.stringify(TARGET)}, {
			method: 'POST', mode: 'no-cors', credentials: 'include',
			headers: { 'Content-Type': 'text/plain' },
			body: JSON.stringify({ username: 'csrf_fetch', password: 'csrf-password-1', role: 'admin' }),
		}).then(() => { document.title = 'sent'; }, (e) => { document.title = 'failed: ' + e; });
		</script>`,
};

// Serve the attacker's pages on a free port of 127.0.0.1.
function startEvilServer() {
	return new Promise((resolve) => {
		const server = createServer((req, res) => {
			const body = PAGES[req.url];
			res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
			res.end(body || 'not found');
		});
		server.listen(0, '127.0.0.1', () => resolve(server));
	});
}

const createdUsers = () => sql(`SELECT username FROM crm_api.users
	WHERE username IN (${NAMES.map((n) => `'${n}'`).join(', ')}) ORDER BY username`).map((r) => r[0]);

before(async () => {
	sql(`SELECT crm_api.delete_user(username) FROM crm_api.users WHERE username LIKE 'csrf\\_%'`);
	evil = await startEvilServer();
	evilBase = `http://127.0.0.1:${evil.address().port}`;
	assert.notEqual(new URL(evilBase).port, new URL(BASE).port);
	browser = await launch();
	page = await newPage(browser);
	await login(page, ADMIN);
});
after(async () => {
	await browser?.close();
	evil?.close();
});

test('a page on another port cannot create a user for the signed-in admin', async () => {
	const attacker = await page.context().newPage();
	const statuses = {};
	for (const path of Object.keys(PAGES)) {
		// The request itself reaches the server: the browser sees its real answer.
		const answered = attacker.waitForResponse((r) => r.url() === TARGET, { timeout: 30000 });
		await attacker.goto(`${evilBase}${path}`);
		statuses[path] = (await answered).status();
	}
	await attacker.close();
	assert.deepEqual(createdUsers(), [], `users created by another origin's page (answers ${JSON.stringify(statuses)})`);
	assert.deepEqual(statuses, { '/text-form': 403, '/url-form': 403, '/fetch': 403 });
});

test('the admin is still signed in and can create a user from the dashboard itself', async () => {
	await page.goto(`${BASE}/`);
	await page.getByRole('heading', { level: 1, name: 'CRM overview' }).waitFor();
	const result = await page.evaluate(async () => {
		const { rpc } = await import('/ui/js/api.js');
		const made = await rpc('create_user', { username: 'csrf_own_page', password: 'own-page-password-1', role: 'viewer' });
		await rpc('delete_user', { username: 'csrf_own_page' });
		return made.username;
	});
	assert.equal(result, 'csrf_own_page');
	assert.deepEqual(page.problems, []);
});
