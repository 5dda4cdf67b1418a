// What every officer page shares: its configuration (a JSON island the server wrote), the
// interface strings, the service worker, the network badge, the banner and the queue count.

import { pendingCount, startAutoSync } from './outbox.js';

export const config = JSON.parse(document.getElementById('wf-config').textContent);
export const FORMS_CACHE = 'jebol-forms';  // the service worker uses the same name

export function t(name, values = {}) {
  let text = (config.text && config.text[name]) || name;
  for (const [key, value] of Object.entries(values)) text = text.split(`%(${key})s`).join(String(value));
  return text;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

let bannerTimer = null;
export function banner(text, kind = 'info', ms = 0) {
  const node = document.querySelector('[data-wf-banner]');
  if (!node) return;
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
  if (bannerTimer) clearTimeout(bannerTimer);
  if (ms) bannerTimer = setTimeout(() => { node.hidden = true; }, ms);
}

export function formatTime(ms) {
  try {
    return new Date(ms).toLocaleString(document.documentElement.lang || 'id',
                                       { dateStyle: 'short', timeStyle: 'short' });
  } catch (_) {
    return new Date(ms).toISOString();
  }
}

export function formatClock(ms) {
  try {
    return new Date(ms).toLocaleTimeString(document.documentElement.lang || 'id');
  } catch (_) {
    return new Date(ms).toISOString().slice(11, 19);
  }
}

export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    await navigator.serviceWorker.register('/f/sw.js', { scope: '/f/' });
    return await navigator.serviceWorker.ready;
  } catch (error) {
    return null;
  }
}

function showNetwork() {
  const node = document.querySelector('[data-wf-net]');
  const update = () => {
    if (!node) return;
    node.dataset.online = navigator.onLine ? 'yes' : 'no';
    node.textContent = navigator.onLine ? '' : t('youAreOffline');
    node.hidden = navigator.onLine;
  };
  window.addEventListener('online', update);
  window.addEventListener('offline', update);
  update();
}

export async function updateCount() {
  const node = document.querySelector('[data-wf-count]');
  if (!node) return;
  const n = await pendingCount(config.key).catch(() => 0);
  node.textContent = n ? String(n) : '';
  node.hidden = !n;
}

export function start() {
  showNetwork();
  updateCount();
  window.addEventListener('wf-outbox', () => updateCount());
  startAutoSync();
  return registerServiceWorker();
}
