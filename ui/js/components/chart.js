// A time chart drawn with uPlot (vendored in ui/vendor/uplot), in the
// page's colours (light or dark, as the system says), resized with its
// card, with the same figures as a table for screen readers and for
// anyone who prefers numbers.

import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { h } from '../dom.js';

// A CSS custom property of the page (the theme's colours).
function cssVar(name) {
	return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

// Series colours by role, from the theme.
const COLORS = { success: '--success', danger: '--danger', warning: '--warning', accent: '--accent', info: '--info', neutral: '--neutral' };

// chart({id, title, days, series: [{label, values, color}], yFormat, axisFormat}):
// a figure with the chart, a caption and a table of the same figures
// (yFormat for the table, axisFormat, shorter, for the axis).
export function chart({ title, days, series, yFormat = (v) => String(v), axisFormat = yFormat, id }) {
	const plotBox = h('div', { class: 'chart-plot', 'aria-hidden': 'true' });
	const table = h('table', { class: 'chart-table' },
		h('caption', { class: 'sr-only' }, title),
		h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), series.map((s) => h('th', { scope: 'col' }, s.label)))),
		h('tbody', {}, days.map((d, i) => h('tr', {}, h('th', { scope: 'row' }, d),
			series.map((s) => h('td', {}, s.values[i] === null || s.values[i] === undefined ? '—' : yFormat(s.values[i])))))));
	const legend = h('ul', { class: 'chart-legend', 'aria-hidden': 'true' }, series.map((s) =>
		h('li', { dataset: { color: s.color } }, h('span', { class: `swatch swatch-${s.color}` }), s.label)));
	const fig = h('figure', { class: 'chart', id, 'aria-labelledby': `${id}-title` },
		h('figcaption', { id: `${id}-title`, class: 'chart-title' }, title),
		legend, plotBox,
		h('details', { class: 'chart-data' }, h('summary', {}, 'Show the figures as a table'), table));
	let plot = null;

	// (Re)draw at the box's width, in the current theme.
	function draw() {
		const width = Math.max(200, Math.floor(plotBox.clientWidth || fig.clientWidth || 300));
		if (plot) plot.destroy();
		const text = cssVar('--muted');
		const grid = cssVar('--border');
		const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
		plot = new uPlot({
			width,
			height: 180,
			legend: { show: false },
			cursor: { drag: { x: false, y: false } },
			scales: { x: { time: true } },
			axes: [
				{ stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
				{ stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 64, values: (u, vals) => vals.map((v) => axisFormat(v)) },
			],
			series: [{}, ...series.map((s) => ({
				label: s.label, stroke: cssVar(COLORS[s.color] || '--accent'), width: 2, spanGaps: false,
				points: { show: days.length <= 31 },
			}))],
		}, [xs, ...series.map((s) => s.values.map((v) => (v === undefined ? null : v)))], plotBox);
	}

	const resize = new ResizeObserver(() => {
		if (plot && Math.abs(plot.width - plotBox.clientWidth) > 4) draw();
	});
	const scheme = window.matchMedia('(prefers-color-scheme: dark)');
	const onScheme = () => draw();
	return {
		el: fig,
		// Draw once the figure is in the page (it needs its width).
		mount() {
			draw();
			resize.observe(plotBox);
			scheme.addEventListener('change', onScheme);
		},
		destroy() {
			resize.disconnect();
			scheme.removeEventListener('change', onScheme);
			if (plot) plot.destroy();
		},
	};
}
