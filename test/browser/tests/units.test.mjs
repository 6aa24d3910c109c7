// The UI's small pure modules, exercised inside Chromium on the files the server serves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, VIEWER, launch, login, newPage, until } from './lib.mjs';

let browser;
let page;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await page.goto(`${BASE}/login`);
});
after(async () => { await browser?.close(); });

test('format: durations, rates, relative times, command lines and PostgreSQL timestamps', async () => {
	const got = await page.evaluate(async () => {
		const f = await import('/ui/js/format.js');
		return {
		d: [f.duration(0), f.duration(59.4), f.duration(65), f.duration(3725), f.duration(null)],
		rate: [f.rate(3.14159), f.rate(1234.5), f.rate(null)],
		rel: [f.relative(null), f.relative(new Date(Date.now() - 10000).toISOString()), f.relative(new Date(Date.now() - 3 * 3600e3).toISOString())],
		cmd: f.commandLine(['/bin/sync', '--crm', 'hubspot', '--since', '2024-01-31', "it's here", 'a b']),
		pg: f.toDate('2026-11-25 12:05:02.709314+00').toISOString(),
		pgOffset: f.toDate('2026-11-25 12:05:02+05:30').toISOString(),
		int: f.int(1234567),
		};
	});
	assert.deepEqual(got.d, ['0 s', '59 s', '1 min 05 s', '1 h 02 min', '—']);
	assert.deepEqual(got.rate, ['3.1/s', '1,235/s', '—']);
	assert.equal(got.rel[0], 'never');
	assert.equal(got.rel[1], 'just now');
	assert.match(got.rel[2], /^3 hr\. ago$/);
	assert.equal(got.cmd, `/bin/sync --crm hubspot --since 2024-01-31 'it'\\''s here' 'a b'`);
	assert.equal(got.pg, '2026-11-25T12:05:02.709Z');
	assert.equal(got.pgOffset, '2026-11-25T06:35:02.000Z');
	assert.equal(got.int, '1,234,567');
});

test('dom.h builds text, never markup', async () => {
	const got = await page.evaluate(async () => {
		const d = await import('/ui/js/dom.js');
		const el = d.h('div', { class: 'x', title: '"><img src=x onerror=alert(1)>', 'data-a': '<b>' },
			'<script>alert(1)</script>', null, false, ['<i>', 0]);
		return { elements: el.querySelectorAll('*').length, text: el.textContent, title: el.title, a: el.dataset.a, cls: el.className };
	});
	assert.deepEqual(got, { elements: 0, text: '<script>alert(1)</script><i>0', title: '"><img src=x onerror=alert(1)>', a: '<b>', cls: 'x' });
});

test('server errors are placed by their details field, never by their wording', async () => {
	const keys = await page.evaluate(async () => {
		const m = await import('/ui/js/capabilities.js');
		const names = ['batch_size', 'max_records', 'since'];
		return [
			m.fieldOfError({ message: 'reworded: the batch is too small', details: 'batch_size' }, names),
			m.fieldOfError({ message: 'sync option "max_records" is out of range: 0', details: null }, names),
			m.fieldOfError({ message: 'unknown sync option "bogus"', details: 'bogus' }, names),
		];
	});
	assert.deepEqual(keys, ['batch_size', null, null]);
});

test('values: NULL, booleans, timestamps, long text and JSON are readable', async () => {
	const got = await page.evaluate(async () => {
		const v = await import('/ui/js/components/value.js');
		return [
		v.renderValue(null).textContent,
		v.renderValue(true).textContent,
		v.renderValue('2026-11-25T12:05:02.709314+00:00', 'timestamp with time zone').textContent,
		v.renderValue({ a: 1 }, 'jsonb').textContent,
		v.renderValue('x'.repeat(100)).querySelector('button').textContent,
		v.renderValue({ long: 'y'.repeat(100) }, 'jsonb').querySelector('pre').textContent,
		];
	});
	assert.deepEqual(got.slice(0, 5), ['NULL', 'true', '2026-11-25 12:05:02+00:00', '{"a":1}', 'Expand']);
	assert.equal(got[5], JSON.stringify({ long: 'y'.repeat(100) }, null, 2));
});

test('the pager says "page X of Y" consistently with the next link and the estimate', async () => {
	const got = await page.evaluate(async () => {
		const t = await import('/ui/js/components/data-table.js');
		return [
		t.pageText(1, true, 1000, 25, 25),
		t.pageText(1, true, 5, 25, 25),
		t.pageText(3, false, 1000, 7, 25),
		t.pageText(1, false, 1000, 1, 25),
		t.pageText(2, true, null, 25, 25),
		];
	});
	assert.deepEqual(got, [
		'Page 1 of ≈ 40 · ≈ 1,000 rows',
		'Page 1 of ≈ 2 · ≈ 26 rows',
		'Page 3 of 3 · 57 rows',
		'Page 1 of 1 · 1 row',
		'Page 2',
	]);
});

test('relative times are <time> elements with the exact time on hover', async () => {
	const got = await page.evaluate(async () => {
		const { ago } = await import('/ui/js/components/ago.js');
		const never = ago(null);
		const el = ago(new Date(Date.now() - 3 * 3600e3).toISOString());
		return { never: never.textContent, tag: el.tagName, text: el.textContent, title: el.title, iso: el.dateTime };
	});
	assert.equal(got.never, 'never');
	assert.equal(got.tag, 'TIME');
	assert.match(got.text, /3 hr\. ago/);
	assert.match(got.title, /\d{4}/);
	assert.match(got.iso, /^\d{4}-\d\d-\d\dT/);
});

test('CSV exports are named after the model, the search and the day', async () => {
	const got = await page.evaluate(async () => {
		const t = await import('/ui/js/components/data-table.js');
		return [t.exportName('hubspot_contact.csv', '', '2026-11-25'), t.exportName('hubspot_contact.csv', " O'Brien & co ", '2026-11-25')];
	});
	assert.deepEqual(got, ['hubspot_contact_2026-11-25.csv', 'hubspot_contact_o-brien-co_2026-11-25.csv']);
});

test('relative times on the page move on as time passes', async () => {
	const p = await newPage(browser);
	await p.clock.install();
	await p.goto(`${BASE}/login`);
	await p.evaluate(async () => {
		const { ago } = await import('/ui/js/components/ago.js');
		document.body.append(ago(new Date(Date.now() - 10000).toISOString()));
	});
	const el = p.locator('time[data-ago]');
	assert.equal(await el.innerText(), 'just now');
	await p.clock.fastForward(5 * 60 * 1000);
	await until(async () => /^5 min\. ago$/.test(await el.innerText()));
	await p.context().close();
});

test('option inputs come from the server: names, ranges, help', async () => {
	await login(page, VIEWER);
	const got = await page.evaluate(async () => {
		const caps = await (await import('/ui/js/capabilities.js')).capabilities();
		const { optionFields } = await import('/ui/js/components/option-fields.js');
		const f = optionFields(caps.sync_options, 'unit');
		return { names: caps.sync_options.map((o) => o.name), max: f.fields.batch_size.max, type: f.fields.since.type };
	});
	assert.deepEqual(got.names, ['force', 'full', 'since', 'dry_run', 'max_records', 'batch_size', 'debug', 'timeout', 'ignore_pause']);
	assert.equal(got.max, '100000');
	assert.equal(got.type, 'date');
});
