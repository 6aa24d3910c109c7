// The session lives in the tab (sessionStorage): a reload keeps it, a new tab
// gets it from a tab of the dashboard that is already open (BroadcastChannel),
// and without an open tab a new one signs in; the login cookie, which only
// the event stream accepts, never signs a tab in by itself.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, launch, newPage, login, until } from './lib.mjs';

let browser;
let page;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await login(page, ADMIN);
});
after(async () => { await browser?.close(); });

const signedInAs = async (p) => (await p.locator('#user').innerText()).trim();
const storedToken = (p) => p.evaluate(() => JSON.parse(sessionStorage.getItem('crm_dashboard.session') || 'null')?.token || null);

test('a reload keeps the session, and the live stream comes back', async () => {
	await page.goto(`${BASE}/history`);
	await page.getByRole('heading', { level: 1, name: 'Sync history' }).waitFor();
	const token = await storedToken(page);
	assert.ok(token, 'the tab holds its token');
	await page.reload();
	await page.getByRole('heading', { level: 1, name: 'Sync history' }).waitFor();
	assert.match(await signedInAs(page), /admin/);
	assert.equal(await storedToken(page), token);
	await until(async () => (await page.locator('#live-state').innerText()) === 'Live');
});

test('a second tab adopts the session of the open tab', async () => {
	const tab = await page.context().newPage();
	await tab.goto(`${BASE}/schedules`);
	await tab.getByRole('heading', { level: 1, name: 'Schedules' }).waitFor();
	assert.match(await signedInAs(tab), /admin/);
	assert.equal(await storedToken(tab), await storedToken(page));
	// the event stream authenticates with the cookie set at sign-in
	await until(async () => (await tab.locator('#live-state').innerText()) === 'Live');
	await tab.close();
});

test('signing out in one tab signs the other tabs out', async () => {
	const tab = await page.context().newPage();
	await tab.goto(`${BASE}/history`);
	await tab.getByRole('heading', { level: 1, name: 'Sync history' }).waitFor();
	await tab.getByRole('button', { name: 'Log out' }).click();
	await tab.waitForURL(/\/login/);
	await page.waitForURL(/\/login/);
	assert.equal(await storedToken(page), null);
	await tab.close();
	await login(page, ADMIN);
});

test('without an open tab, a new tab shows the sign-in page despite the cookie', async () => {
	const context = page.context();
	const cookies = (await context.cookies()).filter((c) => c.name === 'crm_dashboard_token');
	assert.equal(cookies.length, 1, 'the login cookie is still in the browser');
	assert.equal(cookies[0].path, '/api/events');
	assert.ok(cookies[0].httpOnly);
	await page.close();
	page = await context.newPage();
	await page.goto(`${BASE}/history`);
	await page.waitForURL(/\/login\?next=%2Fhistory/);
	await page.getByRole('button', { name: 'Sign in' }).waitFor();
	assert.equal(await storedToken(page), null);
});
