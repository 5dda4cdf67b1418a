// The queue page: every record of this key still on the phone, its status and last error,
// "send now", and a ZIP of a record that cannot be sent.

import { config, el, formatClock, formatTime, start, t } from './common.js';
import { getRecord, listRecords, recordZip, removeRecord, sync } from './outbox.js';

const STATUS = { pending: 'statusPending', sending: 'statusSending', failed: 'statusError',
                 sent: 'statusSent' };

function download(record) {
  const { blob, filename } = recordZip(record);
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function row(record) {
  const status = record.status === 'sent' && record.duplicate ? t('duplicate')
    : t(STATUS[record.status] || 'statusPending');
  const details = [];
  if (record.status !== 'sent' && record.attempts) details.push(t('attempts', { n: record.attempts }));
  if (record.status === 'pending' && record.nextAttemptAt > Date.now()) {
    details.push(t('statusRetry', { time: formatClock(record.nextAttemptAt) }));
  }
  let error = null;
  if (record.status !== 'sent' && (record.error || record.lastStatus !== undefined)) {
    const reason = record.lastStatus === 0 ? t('networkError')
      : record.lastStatus >= 500 ? t('serverError', { status: record.lastStatus })
        : record.lastStatus ? t('refused', { status: record.lastStatus }) : '';
    const text = [reason, record.error].filter(Boolean).join(': ');
    if (text) error = el('p', { class: 'wf-error', 'data-wf-error': '', text });
  }
  const actions = [];
  if (record.status !== 'sent') {
    actions.push(el('button', { type: 'button', 'data-wf-send': '', text: t('sendNow'),
      disabled: record.status === 'sending', onclick: () => {
        sync({ force: true, only: record.id }).catch(() => {});
      } }));
  }
  if (record.status === 'failed' || (record.status === 'pending' && record.attempts)) {
    actions.push(el('button', { type: 'button', class: 'wf-secondary', 'data-wf-zip': '',
      text: t('downloadZip'), onclick: async () => download(await getRecord(record.id)) }));
  }
  if (record.status === 'failed') {
    actions.push(el('button', { type: 'button', class: 'wf-link', text: t('remove'),
      onclick: async () => {
        if (window.confirm(t('confirmRemove'))) await removeRecord(record.id);
      } }));
  }
  const size = (record.xml ? record.xml.byteLength : 0) +
    (record.files || []).reduce((n, f) => n + f.data.byteLength, 0);
  return el('li', { class: 'wf-record', 'data-wf-record': record.id, 'data-status': record.status },
    el('div', { class: 'wf-record-head' },
      el('strong', { text: record.formTitle || record.formId }),
      el('span', { class: `wf-status wf-status-${record.status}`, 'data-wf-status': '',
                   text: status })),
    el('p', { class: 'wf-muted', text: [record.instanceName, formatTime(record.createdAt),
      size ? `${Math.ceil(size / 1024)} KB` : '', ...details].filter(Boolean).join(' · ') }),
    error,
    actions.length ? el('div', { class: 'wf-actions' }, actions) : null);
}

async function render() {
  const records = await listRecords(config.key).catch(() => []);
  const waiting = records.filter((r) => r.status !== 'sent');
  const sent = records.filter((r) => r.status === 'sent').reverse();
  const pendingBox = document.querySelector('[data-wf-pending]');
  const sentBox = document.querySelector('[data-wf-sent]');
  pendingBox.replaceChildren(...(waiting.length ? waiting.map(row)
    : [el('li', { class: 'wf-muted', text: t('nothingQueued') })]));
  sentBox.replaceChildren(...sent.map(row));
  document.querySelector('[data-wf-sent-section]').hidden = !sent.length;
  const all = document.querySelector('[data-wf-send-all]');
  if (all) all.hidden = !waiting.length;
}

let again = null;
function soon() {
  if (again) return;
  again = setTimeout(() => { again = null; render(); }, 50);
}

async function main() {
  start();
  document.querySelector('[data-wf-send-all]')?.addEventListener('click', () => {
    sync({ force: true }).catch(() => {});
  });
  window.addEventListener('wf-outbox', soon);
  setInterval(render, 15000);  // the retry times move on
  render();
}

main();
