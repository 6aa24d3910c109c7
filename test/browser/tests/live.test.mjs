// Live updates: through Server-Sent Events, and by polling when the stream is refused.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, launch, newPage, login, sql, until } from './lib.mjs';

let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Start a sync of about six seconds through SQL and follow it on the HubSpot page.
async function followSqlSync(page, model) {
	await page.goto(`${BASE}/crm/hubspot`);
	const row = page.locator(`tr[data-model="${model}"]`);
	await row.waitFor();
	await page.evaluate(() => { window.notReloaded = true; });
	const [[id]] = sql(`SELECT crm_api.start_sync('hubspot', '${model}', '{"max_records": 3000}')`);
	await until(async () => (await row.locator('[data-status="running"]').count()) === 1, 30000, 100);
	await until(async () => /synced/.test(await row.locator('td[data-label="Status"]').innerText()), 30000, 100);
	await until(async () => (await row.locator('[data-status="success"]').count()) === 1, 60000);
	assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
	const [[status]] = sql(`SELECT status FROM crm_dashboard.sync_history WHERE id = ${id}`);
	assert.equal(status, 'success');
}

test('runs started elsewhere appear and settle live through SSE', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await until(async () => (await page.locator('#live-state').getAttribute('data-state')) === 'live');
	await followSqlSync(page, 'deal');
	await page.context().close();
});

test('when the event stream is refused the UI says so and polls instead', async () => {
	const page = await newPage(browser);
	await page.route('**/api/events', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"code":"PGRST000","message":"stream unavailable","details":null,"hint":null}' }));
	await login(page, ADMIN);
	const state = page.locator('#live-state');
	await until(async () => (await state.getAttribute('data-state')) === 'polling');
	assert.match(await state.innerText(), /Polling every 3 s/);
	await followSqlSync(page, 'appointment');
	await page.context().close();
});
