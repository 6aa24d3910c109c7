// Sign-in page.

import { login } from '../api.js';
import { h, replace, errorBox } from '../dom.js';
import * as live from '../live.js';

// Render the sign-in form; on success go where the visitor was going.
export function render(ctx) {
	const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
	const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
	const msg = h('div', { 'aria-live': 'assertive' },
		ctx.query.get('expired') ? h('div', { class: 'alert alert-info' }, 'Your session has ended (it expired or the server was reconfigured). Sign in again to continue.') : null);
	const btn = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
	const form = h('form', { class: 'login-form', novalidate: true },
		h('div', { class: 'field' }, h('label', { for: 'username' }, 'Username'), user),
		h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), pass),
		msg, btn);

	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		msg.replaceChildren();
		if (!user.value.trim() || !pass.value) {
			replace(msg, errorBox({ message: 'Enter your username and password.' }));
			(user.value.trim() ? pass : user).focus();
			return;
		}
		btn.disabled = true;
		btn.textContent = 'Signing in…';
		try {
			await login(user.value.trim(), pass.value);
			live.connect();
			const next = ctx.query.get('next');
			ctx.navigate(next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/', { replace: true });
		} catch (err) {
			replace(msg, errorBox(err, 'Sign-in failed'));
			btn.disabled = false;
			btn.textContent = 'Sign in';
			pass.select();
		}
	});
	setTimeout(() => user.focus(), 0);

	return h('div', { class: 'login-page' },
		h('div', { class: 'login-card card' },
			h('div', { class: 'login-brand' }, h('img', { src: '/ui/favicon.svg', alt: '', width: '48', height: '48' })),
			h('h1', { class: 'page-title', tabindex: '-1' }, 'Sign in'),
			h('p', { class: 'muted' }, 'CRM Dashboard: the control room of your CRM data.'),
			form));
}
