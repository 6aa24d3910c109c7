// A table whose name would be unsafe in a command line shows in the UI with
// the reason it cannot be synced, and no Sync button.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, login, sql, BASE, ADMIN } from './lib.mjs';

let browser;
before(async () => {
	sql('CREATE TABLE ingestion."arrivy_--settings=evil" (id integer PRIMARY KEY)');
	browser = await launch();
});
after(async () => {
	await browser.close();
	sql('DROP TABLE IF EXISTS ingestion."arrivy_--settings=evil"');
});

test('an unsafe model name is listed with the reason it cannot be synced', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await page.goto(`${BASE}/crm/arrivy`);
	const row = page.locator('tr[data-model="--settings=evil"]');
	await row.waitFor();
	assert.match(await row.locator('.name-problem').innerText(), /can't be synced.*starts with "-"/i);
	assert.equal(await row.getByRole('button', { name: /^Sync/ }).count(), 0);
	// a safe model of the same CRM still offers Sync
	assert.equal(await page.locator('tr[data-model="task"]').getByRole('button', { name: 'Sync task' }).count(), 1);

	await row.getByRole('link', { name: 'View --settings=evil' }).click();
	// the CRM page has a .name-problem too: wait for the model's own page
	await page.getByRole('heading', { level: 1, name: '--settings=evil' }).waitFor();
	const problem = page.locator('.page-actions .name-problem');
	await problem.waitFor();
	assert.match(await problem.innerText(), /can't be synced/i);
	assert.equal(await page.getByRole('button', { name: '▶ Sync', exact: true }).count(), 0);
	assert.deepEqual(page.problems, []);
	await page.context().close();
});
