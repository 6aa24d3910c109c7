// Sync analytics: per CRM or model, the figures of 24 hours and 7, 30 and 90
// days (crm_api.model_analytics, crm_api.crm_analytics), charts of success
// rate, duration and records per day (crm_api.analytics_daily), and a heat
// strip of each model's latest run outcomes (crm_api.run_outcomes).

import { get, rpc } from '../api.js';
import { h, replace, loading, empty, errorBox, throttle, pageTitle } from '../dom.js';
import { setQuery } from '../router.js';
import * as fmt from '../format.js';
import { onSync } from '../live.js';
import { chart } from '../components/chart.js';
import { statusLabel } from '../components/status.js';
import { anomalyText } from '../components/anomalies.js';

const PERIODS = { '24h': 'Last 24 hours', '7d': '7 days', '30d': '30 days', '90d': '90 days' };
const DAYS = [7, 30, 90];

// Render the analytics page; the CRM, model and days chosen live in the URL.
export function render(ctx) {
	const q = ctx.query;
	const crmSel = h('select', { id: 'a-crm' }, h('option', { value: '' }, 'All CRMs'));
	const modelSel = h('select', { id: 'a-model' }, h('option', { value: '' }, 'All models'));
	const daysSel = h('select', { id: 'a-days' }, DAYS.map((d) => h('option', { value: String(d), selected: String(d) === (q.get('days') || '30') }, `${d} days`)));
	const figures = h('div', {}, loading('Loading the figures…'));
	const charts = h('div', { class: 'chart-grid' });
	const strip = h('div', {});
	const kept = h('p', { class: 'muted small', role: 'note' });
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
	let drawn = [];
	let models = [];

	// Fill the CRM and model choices.
	async function loadChoices() {
		const [sources, all] = await Promise.all([
			get('crm_sources', { select: 'crm,display_name' }, { signal: ctx.signal }),
			get('crm_models', { select: 'crm,model', order: 'crm.asc,model.asc' }, { signal: ctx.signal }),
		]);
		models = all;
		for (const s of sources) crmSel.append(h('option', { value: s.crm, selected: q.get('crm') === s.crm }, s.display_name));
		paintModels(q.get('model'));
	}

	// The model choice, narrowed to the chosen CRM.
	function paintModels(selected) {
		replace(modelSel, h('option', { value: '' }, crmSel.value ? 'All models of the CRM' : 'All models'),
			models.filter((m) => m.crm === crmSel.value).map((m) => h('option', { value: m.model, selected: m.model === selected }, m.model)));
		modelSel.disabled = !crmSel.value;
	}

	let seq = 0;
	// Fetch and draw everything for the current choice.
	async function load() {
		const mine = ++seq;
		const crm = crmSel.value || null;
		const model = crm && modelSel.value ? modelSel.value : null;
		const days = Number(daysSel.value);
		setQuery({ crm, model, days: days === 30 ? '' : days });
		try {
			const [rows, daily, outcomes] = await Promise.all([
				model ? get('model_analytics', { crm: `eq.${crm}`, model: `eq.${model}` }, { signal: ctx.signal })
					: get('crm_analytics', crm ? { crm: `eq.${crm}` } : {}, { signal: ctx.signal }),
				rpc('analytics_daily', { crm, model, days }, { signal: ctx.signal }),
				crm ? rpc('run_outcomes', { crm, max_runs: 48 }, { signal: ctx.signal }) : Promise.resolve(null),
			]);
			if (mine !== seq) return;
			paintFigures(rows, !!model);
			paintCharts(daily);
			paintStrip(outcomes && model ? outcomes.filter((o) => o.model === model) : outcomes);
			const since = rows.find((r) => r.history_kept_since)?.history_kept_since;
			kept.textContent = since ? `History kept since ${fmt.dateTime(since)} (older runs were removed by the retention policy; the daily figures of their days remain).` : '';
			replace(errorSlot);
		} catch (err) {
			if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the analytics'));
		}
	}

	// The figures of each period: one table, a row per CRM (or the model) and period.
	function paintFigures(rows, oneModel) {
		if (!rows.length) {
			replace(figures, empty('No runs to analyse yet.'));
			return;
		}
		const head = ['Period', oneModel ? null : 'CRM', 'Runs', 'Succeeded', 'Partial', 'Failed', 'Cancelled', 'Success rate',
			'Duration p50', 'Duration p95', 'Records/day', 'Records/s', 'Queued (avg)'].filter(Boolean);
		replace(figures, h('div', { class: 'table-wrap' }, h('table', { class: 'analytics-table' },
			h('caption', { class: 'sr-only' }, 'Figures per period'),
			h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
			h('tbody', {}, rows.map((r) => h('tr', { dataset: { period: r.period, crm: r.crm } },
				h('th', { scope: 'row' }, PERIODS[r.period] || r.period), oneModel ? null : h('td', {}, r.crm),
				h('td', {}, fmt.int(r.runs)), h('td', {}, fmt.int(r.succeeded)), h('td', {}, fmt.int(r.partial)),
				h('td', {}, fmt.int(r.failed)), h('td', {}, fmt.int(r.cancelled)),
				h('td', { dataset: { stat: 'success-rate' } }, percent(r.success_rate)),
				h('td', {}, fmt.duration(r.duration_p50_seconds)), h('td', {}, fmt.duration(r.duration_p95_seconds)),
				h('td', {}, fmt.int(Math.round(r.records_processed_per_day))), h('td', {}, fmt.rate(r.records_per_second)),
				h('td', {}, fmt.duration(r.queued_seconds_avg))))))));
	}

	// Success rate, durations and records per day.
	function paintCharts(daily) {
		for (const c of drawn) c.destroy();
		const days = daily.map((d) => d.day);
		drawn = [
			chart({ id: 'chart-success', title: 'Success rate per day', days, yFormat: (v) => `${Math.round(v * 100)} %`,
				series: [{ label: 'Success rate', color: 'success', values: daily.map((d) => d.success_rate) }] }),
			chart({ id: 'chart-duration', title: 'Duration per day (p50, p95)', days, yFormat: (v) => fmt.duration(v), axisFormat: shortDuration,
				series: [{ label: 'p50', color: 'accent', values: daily.map((d) => d.duration_p50_seconds) },
					{ label: 'p95', color: 'warning', values: daily.map((d) => d.duration_p95_seconds) }] }),
			chart({ id: 'chart-records', title: 'Records per day', days, yFormat: (v) => fmt.compact(v),
				series: [{ label: 'Processed', color: 'info', values: daily.map((d) => d.records_processed) },
					{ label: 'Failed', color: 'danger', values: daily.map((d) => d.records_failed) }] }),
		];
		replace(charts, drawn.map((c) => h('section', { class: 'card' }, c.el)));
		for (const c of drawn) c.mount();
	}

	// Each model's latest runs as a row of cells, oldest first, each a link to its run.
	function paintStrip(outcomes) {
		if (!outcomes) {
			replace(strip, h('p', { class: 'muted' }, 'Choose a CRM to see the outcomes of its models’ latest runs.'));
			return;
		}
		replace(strip, h('table', { class: 'heat-strip' },
			h('caption', {}, 'Latest runs per model, oldest first'),
			h('tbody', {}, outcomes.map((o) => h('tr', { dataset: { model: o.model } },
				h('th', { scope: 'row' }, o.model),
				h('td', {}, o.outcomes.length ? h('ol', { class: 'strip' }, o.outcomes.map((r) => {
					const unusual = anomalyText(r.anomalies);
					const label = `Run #${r.id}: ${statusLabel(r.status)}, ${fmt.dateTime(r.start_time)}${r.duration_seconds !== null ? `, ${fmt.duration(r.duration_seconds)}` : ''}${unusual ? `; ${unusual}` : ''}`;
					return h('li', {}, h('a', { href: `/history/${r.id}`, class: `cell cell-${r.status}${unusual ? ' cell-unusual' : ''}`, title: label, 'aria-label': label, dataset: { status: r.status } }));
				})) : h('span', { class: 'muted small' }, 'no runs')))))));
	}

	const reload = throttle(load, 3000);
	crmSel.addEventListener('change', () => { paintModels(null); load(); });
	modelSel.addEventListener('change', load);
	daysSel.addEventListener('change', load);
	ctx.onCleanup(reload.cancel);
	ctx.onCleanup(() => { for (const c of drawn) c.destroy(); });
	ctx.onCleanup(onSync((e) => { if (!['queued', 'running'].includes(e.status)) reload(); }));

	loadChoices().then(load).catch((err) => { if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the analytics')); });
	return h('div', { class: 'page analytics' },
		h('div', { class: 'page-head' }, h('div', {}, pageTitle('Analytics'),
			h('p', { class: 'muted subtitle' }, 'Success rates, durations and volumes of the syncs.'))),
		h('div', { class: 'filters card' }, field('a-crm', 'CRM', crmSel), field('a-model', 'Model', modelSel), field('a-days', 'Charts over', daysSel)),
		errorSlot, kept,
		h('section', { class: 'card', 'aria-labelledby': 'fig-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'fig-title' }, 'Figures')), figures),
		charts,
		h('section', { class: 'card', 'aria-labelledby': 'strip-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'strip-title' }, 'Run outcomes')), strip));
}

// Seconds in a few characters, for an axis: 45 s, 12 min, 1.5 h.
function shortDuration(v) {
	if (v < 60) return `${Math.round(v)} s`;
	if (v < 3600) return `${Math.round(v / 60)} min`;
	return `${(v / 3600).toFixed(1)} h`;
}

// A share as a percentage, or a dash.
function percent(share) {
	return share === null || share === undefined ? '—' : `${(share * 100).toFixed(share >= 0.995 || share === 0 ? 0 : 1)} %`;
}
