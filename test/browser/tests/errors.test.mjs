// Honest states: a server that stops answering, an API error, a session the server refuses.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, launch, newPage, login, sql, until } from './lib.mjs';

let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('when the server stops answering, pages and the header say so in words, and recover', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	const state = page.locator('#live-state');
	await until(async () => (await state.getAttribute('data-state')) === 'live');
	await page.goto(`${BASE}/crm/hubspot`);
	await page.locator('tr[data-model]').first().waitFor();
	await page.getByRole('link', { name: 'Overview' }).first().click();
	await page.locator('.crm-card').first().waitFor();

	// The server goes away: its HTTP workers are ended (dropping the open event
	// stream; the postmaster restarts them after a few seconds), and for this
	// page every new request fails at the network level until we say otherwise.
	await page.route('**/api/**', (route) => route.abort('connectionrefused'));
	await page.route('**/ui/js/pages/history.js', (route) => route.abort('connectionrefused'));
	sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'crm_dashboard http'`);
	await until(async () => (await state.getAttribute('data-state')) === 'offline');
	assert.match(await state.innerText(), /unreachable/i);

	await page.getByRole('link', { name: 'HubSpot', exact: true }).click();
	const alert = page.getByRole('alert');
	await alert.waitFor();
	assert.match(await alert.innerText(), /Could not load the models: The server cannot be reached/);
	assert.equal(await page.locator('.loading').count(), 0, 'no spinner is left turning');

	// A page whose code cannot be fetched says so too, instead of doing nothing.
	await page.getByRole('link', { name: 'Sync history' }).first().click();
	await page.getByRole('heading', { level: 1, name: 'This page could not be opened' }).waitFor();
	assert.match(await page.getByRole('alert').innerText(), /cannot be reached/);

	await page.unroute('**/api/**');
	await page.unroute('**/ui/js/pages/history.js');
	await until(async () => ['live', 'polling'].includes(await state.getAttribute('data-state')), 60000);
	await page.goto(`${BASE}/crm/hubspot`);
	await page.locator('tr[data-model]').first().waitFor();
	assert.deepEqual(page.problems, []);
	await page.context().close();
});

test('an API error is shown with its message and hint', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await page.route('**/api/crm_models**', (route) => route.fulfill({
		status: 500, contentType: 'application/json',
		body: JSON.stringify({ code: 'XX000', message: 'could not read block 7 of relation <b>x</b>', details: null, hint: 'Check the server log.' }),
	}));
	await page.goto(`${BASE}/crm/hubspot`);
	const alert = page.getByRole('alert');
	await alert.waitFor();
	const text = await alert.innerText();
	assert.match(text, /could not read block 7 of relation <b>x<\/b>/, 'the message, as text');
	assert.match(text, /Check the server log\./);
	await page.context().close();
});

test('a session the server refuses leads to the sign-in page, which says why', async () => {
	const page = await newPage(browser);
	await page.addInitScript(() => {
		if (!sessionStorage.getItem('crm_dashboard.session.seeded')) {
			sessionStorage.setItem('crm_dashboard.session.seeded', '1');
			sessionStorage.setItem('crm_dashboard.session', JSON.stringify({ token: 'not.a.token', username: 'admin', role: 'crm_dashboard_admin' }));
		}
	});
	await page.goto(`${BASE}/crm/hubspot`);
	await page.waitForURL(/\/login\?next=%2Fcrm%2Fhubspot&expired=1/);
	await page.getByText(/Your session has ended/).waitFor();
	await page.getByLabel('Username').waitFor();
	await page.context().close();
});
