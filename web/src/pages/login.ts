// Login: a read key, checked against the server before it is kept.

import { ApiError, login } from '../api';
import { h, replace } from '../dom';
import { navigate, param } from '../state';

export function loginPage(root: HTMLElement, reason: string | null): void {
  const key = h('input', { type: 'password', id: 'read-key', name: 'read-key', autocomplete: 'off', placeholder: 'read key', required: true });
  const message = h('p', { class: 'login-message', id: 'login-message', role: 'alert' }, reason ?? '');
  const button = h('button', { type: 'submit', id: 'login-button' }, 'Log in');
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        replace(message, 'Checking…');
        message.className = 'login-message';
        try {
          await login(key.value.trim());
          const next = param('next');
          navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
        } catch (err) {
          message.className = 'login-message error';
          if (err instanceof ApiError && err.status === 401) {
            replace(message, 'Wrong read key: the server did not accept it. Use a read key of this server (playhead serve and playhead demo print it as “read key: …”).');
          } else if (err instanceof ApiError && err.status === 0) {
            replace(message, `Could not reach the Playhead server: ${err.message}.`);
          } else {
            replace(message, `Login failed: ${err instanceof Error ? err.message : String(err)}.`);
          }
          button.disabled = false;
        }
      },
    },
    h('h1', {}, 'Playhead'),
    h('p', {}, 'Video playback analytics. Log in with a read key of this server.'),
    h('label', { for: 'read-key' }, 'Read key'),
    key,
    button,
    message,
  );
  if (reason) message.className = 'login-message error';
  replace(root, h('div', { class: 'login-wrap' }, form));
  key.focus();
}
