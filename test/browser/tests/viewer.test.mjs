// A viewer: sees everything, can change nothing; hostile values show as text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, VIEWER, launch, newPage, login, sql, until } from './lib.mjs';

let browser;
let page;
let runId = null;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await login(page, VIEWER);
});
after(async () => {
	if (runId) sql(`SELECT crm_api.stop_sync(${runId})`);
	await browser?.close();
});

test('the header names the viewer role', async () => {
	assert.match(await page.locator('#user').innerText(), /viewer/);
});

test('a viewer finds no Sync or Stop buttons, even while a sync runs', async () => {
	[[runId]] = sql(`SELECT crm_api.start_sync('genius', 'appointment', '{"full": true}')`);
	await page.goto(`${BASE}/crm/genius`);
	await page.getByRole('heading', { level: 1, name: 'Genius' }).waitFor();
	const row = page.locator('tr[data-model="appointment"]');
	await until(async () => (await row.locator('[data-status="running"], [data-status="queued"]').count()) === 1, 30000);
	assert.equal(await page.getByRole('button', { name: /^(Sync|Stop)\b/ }).count(), 0);
	assert.equal(await page.getByRole('button', { name: /Sync all/ }).count(), 0);
	await row.getByRole('link', { name: 'View appointment' }).waitFor();

	await page.goto(`${BASE}/crm/genius/appointment`);
	await page.getByRole('heading', { name: 'Summary' }).waitFor();
	await page.locator('.data-table').waitFor();
	assert.equal(await page.getByRole('button', { name: /Sync|Stop/ }).count(), 0);

	await page.goto(`${BASE}/history/${runId}`);
	await page.getByRole('heading', { level: 1, name: `Run #${runId}` }).waitFor();
	await page.getByRole('heading', { name: 'Metrics' }).waitFor();
	assert.equal(await page.getByRole('button', { name: /Stop/ }).count(), 0);
});

test('a viewer sees schedules without editing controls', async () => {
	await page.goto(`${BASE}/schedules`);
	await page.getByRole('heading', { level: 1, name: 'Schedules' }).waitFor();
	await until(async () => (await page.locator('.alert, .empty, table').count()) > 0);
	assert.equal(await page.locator('.schedule-form').count(), 0);
	assert.equal(await page.getByRole('button', { name: /Remove|Add schedule/ }).count(), 0);
});

test('markup in the data is shown as text and never runs', async () => {
	await page.goto(`${BASE}/crm/hubspot/contact?q=alert(1)`);
	const rows = page.locator('.data-table tbody tr');
	await until(async () => (await rows.count()) >= 2);
	const names = await page.locator('.data-table td[data-col="firstname"]').allInnerTexts();
	assert.ok(names.includes('<script>alert(1)</script>'), `literal script tag in ${JSON.stringify(names)}`);
	assert.ok(names.includes('<img src=x onerror=alert(1)>'), 'literal img tag');
	assert.equal(await page.locator('main img[src="x"], main script').count(), 0);

	await page.goto(`${BASE}/crm/callrail/call?q=onerror`);
	const tags = page.locator('.data-table td[data-col="tags"]');
	await until(async () => (await tags.count()) >= 1);
	assert.match(await tags.first().innerText(), /<script>alert\(1\)<\/script>/);
	assert.match(await page.locator('.data-table td[data-col="customer_name"]').first().innerText(), /<img src=x onerror=alert\(1\)>/);

	await page.goto(`${BASE}/crm/leadconduit/lead?q=didn't validate`);
	const reason = page.locator('.data-table td[data-col="reason"]').first();
	await reason.waitFor();
	await reason.getByRole('button', { name: 'Expand' }).click();
	assert.match(await reason.innerText(), /didn't validate <script>alert\(1\)<\/script>/);
	assert.equal(await reason.getByRole('button', { name: 'Collapse' }).getAttribute('aria-expanded'), 'true');
	// Any image the payload smuggled in would have been requested by now.
	await page.waitForLoadState('networkidle');
	assert.deepEqual(page.dialogs, []);
	assert.deepEqual(page.problems, []);
});

test('a new tab is signed in too (the open tab hands over its session), with the same role', async () => {
	const tab = await page.context().newPage();
	await tab.goto(`${BASE}/history`);
	await tab.getByRole('heading', { level: 1, name: 'Sync history' }).waitFor();
	await tab.locator('.runs-table').waitFor();
	assert.match(await tab.locator('#user').innerText(), /viewer/);
	await tab.close();
});

test('signing out returns to the sign-in page and protects the pages', async () => {
	await page.getByRole('button', { name: 'Log out' }).click();
	await page.waitForURL(/\/login/);
	await page.goto(`${BASE}/history`);
	await page.waitForURL(/\/login\?next=%2Fhistory/);
	const res = await page.request.get(`${BASE}/api/events`, { timeout: 10000 });
	assert.equal(res.status(), 401, 'the cookie was cleared by logout');
});
