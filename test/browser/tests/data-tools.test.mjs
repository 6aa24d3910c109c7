// Data tools as an operator uses them: selecting several models (a click,
// then a shift-click range) and syncing them together with a per-model
// outcome; a filter with two groups, shared by its URL; CSV and Excel exports
// of the filtered rows (the workbook opened with openpyxl); a model's
// data-quality checks, run from its page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { BASE, ADMIN, launch, newPage, login, sql, until, parseCsv } from './lib.mjs';

let browser;
let page;
let filteredUrl = null;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await login(page, ADMIN);
});
after(async () => {
	sql("DELETE FROM crm_dashboard.quality_check WHERE crm = 'hubspot' AND model = 'contact' AND name = 'email_present'");
	await browser?.close();
});

// The rows of an xlsx file, as openpyxl reads them (values, with dates as ISO text).
function readXlsx(path) {
	const script = `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.worksheets[0]
rows = [[c.isoformat() if hasattr(c, 'isoformat') else c for c in r] for r in ws.iter_rows(values_only=True)]
print(json.dumps({"sheets": wb.sheetnames, "rows": rows, "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref}))`;
	return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, path], { encoding: 'utf8', maxBuffer: 1 << 30 }));
}

test('several models are selected with a click and a shift-click, and synced together with an outcome each', async () => {
	await page.goto(`${BASE}/crm/salespro`);
	const boxes = page.locator('input.select-model');
	await until(async () => (await boxes.count()) >= 3);
	const models = await boxes.evaluateAll((els) => els.map((e) => e.dataset.model));
	await page.getByLabel(`Select ${models[0]}`).click();
	await page.getByLabel(`Select ${models[2]}`).click({ modifiers: ['Shift'] });
	const bar = page.getByRole('region', { name: 'Bulk actions' });
	await bar.getByRole('button', { name: 'Sync 3 models' }).waitFor();
	assert.equal(await page.getByLabel('Select all models').evaluate((e) => e.indeterminate), models.length > 3);
	await bar.getByRole('button', { name: 'Sync 3 models' }).click();
	const dialog = page.getByRole('dialog');
	assert.deepEqual(await dialog.locator('.bulk-plan li').allInnerTexts(), models.slice(0, 3).sort());
	await dialog.getByRole('button', { name: 'Sync 3' }).click();
	const outcomes = dialog.locator('.bulk-outcomes li');
	await until(async () => (await outcomes.count()) === 3);
	const got = await outcomes.evaluateAll((els) => els.map((e) => e.dataset.outcome));
	assert.deepEqual(got, ['started', 'started', 'started']);
	const [[parents]] = sql(`SELECT count(DISTINCT parent_id) FROM crm_dashboard.sync_history
		WHERE crm_source = 'salespro' AND sync_type IN (${models.slice(0, 3).map((m) => `'${m}'`).join(',')}) AND parent_id IS NOT NULL`);
	assert.equal(parents, '1', 'one parent run');
	await dialog.getByRole('button', { name: 'Close dialog' }).click();
	// the selection is cleared, so the bar is gone
	await until(async () => !(await bar.isVisible()));
	// a second round names the models already active, and the others start
	await page.getByLabel('Select all models').check();
	await bar.getByRole('button', { name: `Sync ${models.length} models` }).click();
	await page.getByRole('dialog').getByRole('button', { name: `Sync ${models.length}` }).click();
	await until(async () => (await page.locator('.bulk-outcomes li').count()) === models.length);
	const second = await page.locator('.bulk-outcomes li').evaluateAll((els) => els.map((e) => e.dataset.outcome));
	assert.ok(second.some((o) => o === 'already_running' || o === 'already_queued' || o === 'started'), second.join());
	await page.getByRole('dialog').getByRole('button', { name: 'Close dialog' }).click();
	// stop them together: the bar counts the selected models' active runs
	await until(() => sql("SELECT count(*) FROM crm_dashboard.sync_history WHERE crm_source = 'salespro' AND sync_type <> 'all' AND status IN ('queued', 'running')")[0][0] !== '0');
	await page.getByLabel('Select all models').check();
	const stop = bar.getByRole('button', { name: /^■ Stop \d+ runs?$/ });
	await stop.waitFor();
	const n = Number((await stop.innerText()).match(/\d+/)[0]);
	await stop.click();
	await page.getByRole('dialog').getByRole('button', { name: `Stop ${n}` }).click();
	await until(async () => (await page.locator('.bulk-outcomes li').count()) === n);
	const stopped = await page.locator('.bulk-outcomes li').evaluateAll((els) => els.map((e) => e.dataset.outcome));
	assert.ok(stopped.every((o) => ['cancelled', 'stopping', 'already_finished'].includes(o)), stopped.join());
	await page.getByRole('dialog').getByRole('button', { name: 'Close dialog' }).click();
	// wait for every salespro run to settle before the other tests
	await until(() => sql("SELECT count(*) FROM crm_dashboard.sync_history WHERE crm_source = 'salespro' AND status IN ('queued', 'running')")[0][0] === '0', 180000, 500);
	assert.deepEqual(page.problems, []);
});

test('a filter with two groups narrows the rows, lives in the URL and opens the same from it', async () => {
	const cities = sql("SELECT city FROM ingestion.hubspot_contact WHERE city ~ '^[A-Za-z ]+$' GROUP BY city ORDER BY count(*) DESC, city LIMIT 2").map((r) => r[0]);
	await page.goto(`${BASE}/crm/hubspot/contact`);
	await page.locator('#filter-toggle').click();
	const builder = page.getByRole('group', { name: 'Filter rows' });
	// top level: archived is false, and a group: city is one or the other
	await builder.getByRole('button', { name: '+ Condition' }).click();
	let cond = builder.locator('.filter-condition').nth(0);
	await cond.getByLabel('Column').selectOption('archived');
	cond = builder.locator('.filter-condition').nth(0);
	await cond.getByLabel('Operator').selectOption('is_false');
	await builder.getByRole('button', { name: '+ Group' }).click();
	const group = builder.locator('.filter-subgroup');
	await group.getByLabel('Combine this group with').selectOption('or');
	await group.getByRole('button', { name: '+ Condition' }).click();
	for (const [i, city] of cities.entries()) {
		const c = builder.locator('.filter-subgroup .filter-condition').nth(i);
		await c.getByLabel('Column').selectOption('city');
		const c2 = builder.locator('.filter-subgroup .filter-condition').nth(i);
		await c2.getByLabel('Operator').selectOption('eq');
		await builder.locator('.filter-subgroup .filter-condition').nth(i).getByLabel('Value').fill(city);
	}
	await builder.getByRole('button', { name: 'Apply filter' }).click();
	await until(() => new URL(page.url()).searchParams.get('filter'));
	const filter = JSON.parse(new URL(page.url()).searchParams.get('filter'));
	assert.deepEqual(filter, { and: [{ column: 'archived', op: 'is_false' },
		{ or: cities.map((c) => ({ column: 'city', op: 'eq', value: c })) }] });
	await page.locator('#filter-toggle', { hasText: 'Filter (3)' }).waitFor();
	const where = `NOT archived AND (city = '${cities[0]}' OR city = '${cities[1]}')`;
	const want = sql(`SELECT id FROM ingestion.hubspot_contact WHERE ${where} ORDER BY id LIMIT 25`).map((r) => r[0]);
	const ids = () => page.locator('table.data-table tbody td[data-col="id"]').allInnerTexts();
	await until(async () => JSON.stringify(await ids()) === JSON.stringify(want));
	filteredUrl = page.url();

	// the shared address shows the same rows and the same filter
	const other = await newPage(browser);
	await login(other, ADMIN);
	await other.goto(filteredUrl);
	await until(async () => JSON.stringify(await other.locator('table.data-table tbody td[data-col="id"]').allInnerTexts()) === JSON.stringify(want));
	assert.equal(await other.locator('.filter-subgroup .filter-condition').count(), 2);
	assert.equal(await other.locator('.filter-subgroup .filter-value').nth(1).inputValue(), cities[1]);
	await other.context().close();
	assert.deepEqual(page.problems, []);
});

test('CSV and Excel exports hold every filtered row; the workbook opens in openpyxl with typed cells', async () => {
	assert.ok(filteredUrl, 'the filter test ran');
	const where = JSON.parse(new URL(filteredUrl).searchParams.get('filter')).and[1].or.map((c) => `city = '${c.value}'`).join(' OR ');
	const want = sql(`SELECT id, createdate FROM ingestion.hubspot_contact WHERE NOT archived AND (${where}) ORDER BY id`);

	const [csvFile] = await Promise.all([page.waitForEvent('download'), page.locator('#export-csv').click()]);
	const csv = parseCsv(readFileSync(await csvFile.path(), 'utf8'));
	assert.deepEqual(csv.slice(1).map((r) => r[csv[0].indexOf('id')]), want.map((r) => r[0]));

	const [xlsxFile] = await Promise.all([page.waitForEvent('download'), page.locator('#export-xlsx').click()]);
	assert.match(xlsxFile.suggestedFilename(), /^hubspot_contact_\d{4}-\d\d-\d\d\.xlsx$/);
	await page.getByText(`Downloaded ${xlsxFile.suggestedFilename()}`).waitFor();
	// openpyxl goes by the file name's extension
	const saved = join(mkdtempSync(join(tmpdir(), 'crm-xlsx-')), xlsxFile.suggestedFilename());
	await xlsxFile.saveAs(saved);
	const book = readXlsx(saved);
	assert.deepEqual(book.sheets, ['contact']);
	assert.equal(book.freeze, 'A2');
	const header = book.rows[0];
	assert.equal(header[0], 'id');
	const created = header.findIndex((c) => /^createdate \(.+\)$/.test(c));
	assert.ok(created >= 0, `the time zone is in the header: ${header}`);
	assert.equal(book.rows.length - 1, want.length, 'every filtered row');
	assert.deepEqual(book.rows.slice(1).map((r) => r[0]), want.map((r) => r[0]));
	const at = header.indexOf('archived');
	assert.ok(book.rows.slice(1).every((r) => r[at] === false), 'booleans are booleans');
	assert.match(book.rows[1][created], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'timestamps are dates');
	assert.deepEqual(page.problems, []);
});

test('a model page lists its data-quality checks and runs them on demand', async () => {
	sql("SELECT crm_api.add_check('hubspot', 'contact', 'email_present', 'not_null', 'email', severity => 'warn')");
	const [[nulls]] = sql('SELECT count(*) FROM ingestion.hubspot_contact WHERE email IS NULL');
	await page.goto(`${BASE}/crm/hubspot/contact`);
	const card = page.locator('.checks-card');
	await card.locator('tr[data-check="email_present"]').waitFor();
	await card.getByRole('button', { name: 'Run checks now' }).click();
	await card.getByText(/1 check run/).waitFor();
	const row = card.locator('tr[data-check="email_present"]');
	const want = nulls === '0' ? /passed/ : new RegExp(`warning[\\s\\S]*${nulls} failing row`);
	await until(async () => want.test(await row.innerText()));
	assert.deepEqual(page.problems, []);
});
