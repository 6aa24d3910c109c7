// The page for unknown paths.

import { h, pageTitle } from '../dom.js';

// Render a short "not found" message with a way back.
export function render() {
	return h('div', { class: 'page' }, pageTitle('Page not found'),
		h('p', {}, 'There is nothing at this address. '), h('a', { href: '/' }, '← Back to the overview'));
}
